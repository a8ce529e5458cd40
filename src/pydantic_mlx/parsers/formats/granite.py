"""IBM Granite 3.x calls: `<|tool_call|>` then a JSON list of `{"name", "arguments"}` objects.

The Granite 3.0-3.3 chat templates write every call of a turn after one `<|tool_call|>`::

    <|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]

The list ends where its JSON value ends; `<|end_of_text|>` ends the turn. Granite 4 writes
hermes' `<tool_call>{...}</tool_call>` instead, which `detect_format` reads as `hermes`.
"""

from __future__ import annotations

from ._json_list import JsonCallList
from ._syntax import CallSyntax, JsonValue

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "granite"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|end_of_text|>",)
_LIST = JsonCallList("<|tool_call|>")
CALLS = (CallSyntax("<|tool_call|>", JsonValue()),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|tool_call|>",)

parse_region = _LIST.parse_region
render = _LIST.render
