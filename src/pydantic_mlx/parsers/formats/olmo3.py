"""AllenAI OLMo 3 calls: Python-style calls, one a line, between `<function_calls>` tags.

OLMo 3's chat template lists the functions in `<functions>` and asks for calls like this (a
string value between single quotes, `null`/`true`/`false` and JSON for the rest)::

    <function_calls>
    get_weather(city='New York', units='celsius')
    get_time()
    </function_calls>

Values are read with `ast` like `pythonic`'s, never evaluated. Only a newline outside brackets
and strings separates two calls, so a value may span lines or mention `</function_calls>`; a
line that is no call is reported in its place, and the calls beside it are kept.
Reasoning (OLMo 3 Think) is `<think>...</think>`; `<|im_end|>` ends the turn. A
`<function_calls>` whose body is no call (and holds no `(`) is the answer's text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._pythonic import parse_pythonic_calls
from .._scan import split_outside
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "olmo3"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>", "<|endoftext|>")
_OPEN, _CLOSE = "<function_calls>", "</function_calls>"
_STRINGS = (Quote("'", ("'",), backslash=True), Quote('"', ('"',), backslash=True))
CALLS = (CallSyntax(_OPEN, Closers((_CLOSE,), quotes=_STRINGS), plain_tag=True, markup_if_holds=("(",)),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_OPEN,)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in one block, one a line (or already a `[f(), g()]` list). A line that is no
    call comes back as a `CallSyntaxError` in its place; a block with no call at all raises."""
    lines = [line for line in split_outside(body, "\n") if line]
    items: list[ToolCall | CallSyntaxError] = []
    for line in lines:
        try:
            items += [ToolCall(name, arguments) for name, arguments in parse_pythonic_calls(line)]
        except CallSyntaxError as exc:
            items.append(CallSyntaxError(str(exc), text=line))
    if not any(isinstance(item, ToolCall) for item in items):
        raise CallSyntaxError("a <function_calls> block without a readable call")
    return items


def render(calls: Sequence[ToolCall]) -> str:
    """The block OLMo 3's chat template writes for `calls`."""
    lines = (f"{c.name}({', '.join(f'{k}={_value(v)}' for k, v in c.arguments.items())})" for c in calls)
    return f"{_OPEN}\n" + "\n".join(lines) + f"\n{_CLOSE}"


def _value(value: Any) -> str:
    """A value as the template writes it: a string quoted, anything else JSON (`null`, `true`)."""
    return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
