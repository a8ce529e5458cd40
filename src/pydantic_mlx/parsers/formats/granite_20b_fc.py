"""IBM Granite-20B-FunctionCalling calls: `<function_call>` before each JSON call object.

The chat template lists the tools after `<|function_call_library|>` and writes each call of a
turn after its own marker, a space, then the object, calls back to back::

    <function_call> {"name": "get_weather", "arguments": {"city": "Paris"}}<function_call> {...}

A region ends where its JSON value does; `<|endoftext|>` ends the turn. The system prompt tells
the model to answer `<function_call> {"name": "no_function", "arguments": {}}` when no function
fits: unless a tool of that name is declared, that is the model calling nothing (no call, no
problem). `<function_call>` is spelled like an ordinary XML tag, so one whose body is no call
object is the answer's text, unless it holds a call object's `"name"`.
"""

from __future__ import annotations

import dataclasses

from .._tools import ToolSet
from .._types import ToolCall
from ._marked_json import MarkedJson
from ._syntax import CallSyntax

NAME = "granite_20b_fc"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|endoftext|>",)
_CALLS = MarkedJson("<function_call>", layout=(" ", "", ""))
CALLS = (
    dataclasses.replace(_CALLS.syntax(plain_tag=True, markup_if_holds=('"name"',)), may_hold_no_call=True),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|function_call_library|>",)
_NO_FUNCTION = "no_function"


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The call object after one `<function_call>`, or none for the `no_function` answer."""
    calls = _CALLS.parse_region(syntax, body, tools)
    return [c for c in calls if c.name != _NO_FUNCTION or _NO_FUNCTION in tools.schemas]


def render(calls: list[ToolCall]) -> str:
    """Each call after its own marker, back to back, as the template writes them."""
    return "".join(_CALLS.render([call]) for call in calls)
