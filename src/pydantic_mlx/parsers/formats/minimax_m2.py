"""MiniMax-M2 / M2.1 / M2.5 calls: `<minimax:tool_call>` around `<invoke name="NAME">` elements.

The chat template writes every call of a turn in one block, a value as is when it is a string
and as JSON otherwise (typed back by the tool's schema)::

    <minimax:tool_call>
    <invoke name="get_weather">
    <parameter name="city">Paris</parameter>
    <parameter name="days">3</parameter>
    </invoke>
    </minimax:tool_call>

Reasoning is `<think>...</think>`; the generation prompt may open it (`in_reasoning`), and a
call written there ends it. `[e~[` ends the turn. A value may mention `</minimax:tool_call>`:
only its own `</parameter>` ends it.
"""

from __future__ import annotations

from ._tagged import TaggedCalls

NAME = "minimax_m2"
REASONING = (("<think>", "</think>"),)
DROP = ("[e~[",)
_CALLS = TaggedCalls(
    block=("<minimax:tool_call>", "</minimax:tool_call>"),
    function=('<invoke name="', '">'),
    function_close="</invoke>",
    parameter=('<parameter name="', '">'),
)
CALLS = (_CALLS.syntax(),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (CALLS[0].opener,)

parse_region = _CALLS.parse_region
render = _CALLS.render
