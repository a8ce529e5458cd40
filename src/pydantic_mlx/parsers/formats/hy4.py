"""Tencent HY4 (Hy4-preview) calls: Hy3's `<tool_calls>` section of `<tool_call>` blocks of
`<arg_key>`/`<arg_value>` pairs, without Hy3's `<tool_sep>`: the name runs to the first key::

    <tool_calls:6124c78e>
    <tool_call:6124c78e>get_weather
    <arg_key:6124c78e>city</arg_key:6124c78e>
    <arg_value:6124c78e>Paris</arg_value:6124c78e>
    </tool_call:6124c78e>
    </tool_calls:6124c78e>

Every structural token carries the checkpoint's suffix, which the chat template declares once
(`HYTK = ':6124c78e'`) and builds its tags from (`'<arg_key{}>'.format(HYTK)`); Hy4-preview's
is `:6124c78e`. The unsuffixed spelling is GLM's markup (read by `glm`), and `:opensource` with
a `<tool_sep>` is Hy3's. Values are typed by the tool's schema, as for GLM. Reasoning is
`<think:6124c78e>...</think:6124c78e>`, opened by the generation prompt unless the reasoning
effort is `no_think` (a call written there ends it).
"""

from __future__ import annotations

from ._arg_pairs import ArgPairCalls

NAME = "hy4"
SUFFIX = ":6124c78e"


def _tag(word: str) -> tuple[str, str]:
    return f"<{word}{SUFFIX}>", f"</{word}{SUFFIX}>"


_CALLS = ArgPairCalls(_tag("tool_call"), _tag("arg_key"), _tag("arg_value"), section=_tag("tool_calls"))
REASONING = (_tag("think"),)
DROP: tuple[str, ...] = ()
CALLS = (_CALLS.syntax(ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
# The template's suffix constant, or a tag already spelled with it.
TEMPLATE_HINTS = (SUFFIX,)
parse_region = _CALLS.parse_region
render = _CALLS.render
