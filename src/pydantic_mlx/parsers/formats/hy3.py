"""Tencent Hunyuan Hy3 calls: a `<tool_calls>` section of `<tool_call>NAME<tool_sep>` blocks of
`<arg_key>`/`<arg_value>` pairs.

The chat template writes all of a turn's calls in one section, a newline after each tag::

    <tool_calls>
    <tool_call>get_weather<tool_sep>
    <arg_key>city</arg_key>
    <arg_value>Paris</arg_value>
    </tool_call>
    </tool_calls>

Hy3's released checkpoints spell every structural token with an `:opensource` suffix
(`<tool_calls:opensource>`, `<arg_key:opensource>`, `<think:opensource>`,
`<｜hy_eos:opensource｜>`); Hy3-preview's have none. Both are read. Values are typed by the
tool's schema, as for GLM (the template writes a string as is and anything else as JSON).
Reasoning is `<think>...</think>`, opened by the generation prompt in the `low`/`high` reasoning
modes (a call written there ends it); the end-of-sentence token ends the turn. The unsuffixed
`<tool_calls>` is also Hunyuan-A13B's and Jamba's list tag: under `auto` each reads its own body.
"""

from __future__ import annotations

from .._tools import ToolSet
from .._types import ToolCall
from ._arg_pairs import ArgPairCalls
from ._syntax import CallSyntax

NAME = "hy3"


def _tokens(suffix: str) -> ArgPairCalls:
    """The call tags of a checkpoint whose structural tokens end with `suffix`."""

    def tag(word: str) -> tuple[str, str]:
        return f"<{word}{suffix}>", f"</{word}{suffix}>"

    return ArgPairCalls(
        tag("tool_call"),
        tag("arg_key"),
        tag("arg_value"),
        sep=f"<tool_sep{suffix}>",
        section=tag("tool_calls"),
    )


_RELEASED, _PREVIEW = _tokens(":opensource"), _tokens("")
REASONING = (("<think:opensource>", "</think:opensource>"), ("<think>", "</think>"))
DROP = ("<｜hy_eos:opensource｜>", "<｜hy_eos｜>")
# The unsuffixed section tag is also ordinary markup in answers (and another family's tag): one
# that cannot be read is the answer's text unless it holds Hy3's own separator.
CALLS = (
    _RELEASED.syntax(ends_prompt_reasoning=True),
    _PREVIEW.syntax(ends_prompt_reasoning=True, plain_tag=True, markup_if_holds=(_PREVIEW.sep,)),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<tool_sep",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in one section, in the spelling of the section's opener."""
    return (_RELEASED if syntax.opener == CALLS[0].opener else _PREVIEW).parse_region(syntax, body, tools)


render = _RELEASED.render
render_preview = _PREVIEW.render
