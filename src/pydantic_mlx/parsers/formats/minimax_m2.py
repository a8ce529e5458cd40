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

from collections.abc import Sequence

from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, Closers
from ._tagged import TaggedCalls, render_blocks

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "minimax_m2"
REASONING = (("<think>", "</think>"),)
DROP = ("[e~[",)
_TAGS = TaggedCalls(
    function=('<invoke name="', '">'), function_close="</invoke>", parameter=('<parameter name="', '">')
)
_BLOCK = ("<minimax:tool_call>", "</minimax:tool_call>")
CALLS = (CallSyntax(_BLOCK[0], Closers((_BLOCK[1],), quotes=(_TAGS.value,)), ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<minimax:tool_call>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The `<invoke>` elements of one `<minimax:tool_call>` block."""
    return _TAGS.read(body, tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text MiniMax-M2's chat template writes for `calls`."""
    return render_blocks(calls, _TAGS, _BLOCK)
