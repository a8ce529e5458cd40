"""Pythonic tool calls: `[get_weather(city="Paris"), get_time()]`.

Llama 3.2 (pythonic template), Llama 4 and LFM2 write a Python list of calls with literal
keyword arguments. Llama 4 wraps it in `<|python_start|>` … `<|python_end|>`, LFM2 in
`<|tool_call_start|>` … `<|tool_call_end|>`; Llama 3.2 writes it after `<|python_tag|>` or bare
(the engine's untagged habit, counted only for declared tools). Values are read with `ast`, never evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._pythonic import parse_pythonic_calls, render_pythonic_calls
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, Closers, JsonValue

__all__ = [
    "CALLS",
    "DROP",
    "NAME",
    "REASONING",
    "TEMPLATE_HINTS",
    "UNTAGGED",
    "parse_region",
    "render",
]

NAME = "pythonic"
REASONING: tuple[tuple[str, str], ...] = ()
# End-of-turn tokens of Llama 3.x (`<|eot_id|>`, `<|eom_id|>`) and Llama 4 (`<|eot|>`, `<|eom|>`).
DROP = ("<|eot_id|>", "<|eom_id|>", "<|eot|>", "<|eom|>")
CALLS = (
    CallSyntax("<|python_start|>", Closers(("<|python_end|>",))),
    CallSyntax("<|tool_call_start|>", Closers(("<|tool_call_end|>",))),
    # Llama 3.2's pythonic template writes `<|python_tag|>[f(a=1)]`; the region ends where the
    # list closes, as for llama3_json (whose end rule this must match: they share the opener).
    CallSyntax("<|python_tag|>", JsonValue(separator=";")),
)
UNTAGGED = frozenset({"pythonic"})
TEMPLATE_HINTS = ("[func_name1(", "<|python_start|>", "<|tool_call_start|>")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in a marked region: `[f(a=1), g()]` or a single `f(a=1)`.

    Raises `CallSyntaxError` for anything that is not literal-only keyword calls."""
    return [ToolCall(name, arguments) for name, arguments in parse_pythonic_calls(body)]


def render(calls: Sequence[ToolCall]) -> str:
    """Llama 4 style: `<|python_start|>[f(a=1), g()]<|python_end|>`."""
    pairs = [(call.name, call.arguments) for call in calls]
    return "<|python_start|>" + render_pythonic_calls(pairs) + "<|python_end|>"
