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

from ._tagged import TaggedBlock, TaggedCalls

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "seed_oss"
REASONING = (("<seed:think>", "</seed:think>"),)
DROP = ("<seed:eos>",)
_FUNCTION = TaggedCalls(("<function=", ">"), "</function>", ("<parameter=", ">"))
_CALLS = TaggedBlock(_FUNCTION, ("<seed:tool_call>", "</seed:tool_call>"), block_per_call=True)
CALLS = (_CALLS.syntax(),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<seed:tool_call>",)

parse_region = _CALLS.parse_region
render = _CALLS.render
