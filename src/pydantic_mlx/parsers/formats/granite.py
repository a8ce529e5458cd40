"""IBM Granite 3.x calls: `<|tool_call|>` then a JSON list of `{"name", "arguments"}` objects.

The Granite 3.0-3.3 chat templates write every call of a turn after one `<|tool_call|>`::

    <|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]

The list ends where its JSON value ends; `<|end_of_text|>` ends the turn. Granite 4 writes
hermes' `<tool_call>{...}</tool_call>` instead, which `detect_format` reads as `hermes`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._calls import call_list_json, calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, JsonValue

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "granite"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|end_of_text|>",)
CALLS = (CallSyntax("<|tool_call|>", JsonValue()),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|tool_call|>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls after one `<|tool_call|>`: a JSON list of call objects (or one object)."""
    return calls_from_json(body.strip(), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text Granite 3.x's chat template writes for `calls`."""
    return "<|tool_call|>" + call_list_json(calls)
