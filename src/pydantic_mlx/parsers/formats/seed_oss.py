"""ByteDance Seed-OSS calls: `<seed:tool_call>` around `<function=NAME>` elements.

The chat template writes each call in its own block, a value inline (as is when it is a string,
as JSON otherwise, typed back by the tool's schema)::

    <seed:tool_call>
    <function=get_weather>
    <parameter=city>Paris</parameter>
    <parameter=days>3</parameter>
    </function>
    </seed:tool_call>

The system prompt shows a multi-line value between newlines (`<parameter=k>\\nline 1\\nline 2\\n
</parameter>`); those two newlines are layout. A block may hold several functions. Reasoning is
`<seed:think>...</seed:think>` (with `<seed:cot_budget_reflect>` notes inside it, kept as
reasoning); `<seed:eos>` ends the turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, Closers
from ._tagged import TaggedCalls, render_blocks

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "seed_oss"
REASONING = (("<seed:think>", "</seed:think>"),)
DROP = ("<seed:eos>",)
_TAGS = TaggedCalls(
    function=("<function=", ">"), function_close="</function>", parameter=("<parameter=", ">")
)
_BLOCK = ("<seed:tool_call>", "</seed:tool_call>")
CALLS = (CallSyntax(_BLOCK[0], Closers((_BLOCK[1],), quotes=(_TAGS.value,)), ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<seed:tool_call>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The `<function=...>` elements of one `<seed:tool_call>` block."""
    return _TAGS.read(body, tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text Seed-OSS's chat template writes for `calls`: one block per call."""
    return "\n".join(render_blocks([call], _TAGS, _BLOCK) for call in calls)
