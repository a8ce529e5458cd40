"""Phi-4-mini calls: `functools[{"name": ..., "arguments": {...}}, ...]` where the answer begins.

Phi-4-mini-instruct declares tools between `<|tool|>` and `<|/tool|>` in the system message and
answers a call with the word `functools` and a JSON list of call objects::

    functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]

`functools` is no special token: it is also Python's module. So it opens calls only where the
answer begins (after optional spaces), and there a `functools` not followed by a readable call
list (`functools.partial(...)`) stays the answer's text. `<|end|>` ends the turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._calls import call_list_json, calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, JsonValue

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "phi4_mini"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|end|>",)
# Right after `functools`, a list opening a call object is a call, even one cut off or unreadable.
CALLS = (CallSyntax("functools", JsonValue(), at_start=True, markup_if_holds=('[{"name"',)),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|/tool|>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls after `functools`: a JSON list of call objects."""
    return calls_from_json(body.strip(), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text Phi-4-mini writes for `calls`."""
    return "functools" + call_list_json(calls)
