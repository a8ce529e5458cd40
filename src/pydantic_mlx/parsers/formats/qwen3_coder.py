"""Qwen3-Coder (and Qwen3.5) XML calls: `<function=NAME><parameter=KEY>VALUE</parameter></function>`.

The chat template writes each call as::

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    <parameter=days>
    3
    </parameter>
    </function>
    </tool_call>

Values are bare text, one newline after `<parameter=KEY>` and one before `</parameter>`; exactly
those two newlines are removed and the rest is typed by the tool's schema (`parsers/_schema.py`).
Models also drop the opening `<tool_call>` (then the call opens at `<function=` and the
`</tool_call>` after it belongs to the call), put several functions in one block, leave out a
`</function>` or a `</tool_call>` between blocks, and now and then a `</parameter>`: a value
ends at its own `</parameter>` (so it may contain `<parameter=x>` or `</function>` text, e.g.
code that writes this format), and a value without one ends at the next marker, or at a
`<parameter=KEY>` that starts a line and names a parameter still to come (one the tool
declares, when its schema is known) even though a `</parameter>` follows later. The region's
closer is kept at the end of the body (`closer_in_body`), so a last value left open before
`</function>` or `</tool_call>` ends there, while one cut off by the end of the output does not.
`<function=NAME>{"k": 1}</function>` (JSON inside, Llama 3.1's custom-tool format) is read too,
with the JSON types kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .._json import ValueScanner, loads_lenient
from .._scan import ForwardFinder, skip_space
from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote
from ._tagged import strip_layout_newlines

NAME = "qwen3_coder"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>", "<|endoftext|>")
# A value may mention the closers (a file about tool calls). A value missing its own closer
# hides them until the output ends; then the first closer counts after all.
_VALUE = Quote("<parameter=", ("</parameter>",))
# A `<tool_call>` inside a reasoning block the prompt opened ends it (Qwen3.5/3.6 templates).
_TOOL_CALL = CallSyntax(
    "<tool_call>",
    Closers(("</tool_call>",), quotes=(_VALUE,)),
    closer_in_body=True,
    ends_prompt_reasoning=True,
)
# Without the opening <tool_call>, the template's closing </tool_call> still follows.
_BARE_FUNCTION = CallSyntax(
    "<function=", Closers(("</function>",), quotes=(_VALUE,)), trailer="</tool_call>", closer_in_body=True
)
CALLS = (_TOOL_CALL, _BARE_FUNCTION)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<parameter=",)

_BLOCK_OPEN, _BLOCK_CLOSE = "<tool_call>", "</tool_call>"
_FUNCTION_OPEN = "<function="
_FUNCTION_CLOSE = "</function>"
_PARAMETER_OPEN = "<parameter="
_PARAMETER_CLOSE = "</parameter>"


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in a `<tool_call>` block (one or more `<function=...>`), or in a bare
    `<function=...>` region (whose body starts right after that `<function=`)."""
    if syntax.opener == _FUNCTION_OPEN:
        return _functions(body, 0, tools)
    pos = skip_space(body, 0)
    if not body.startswith(_FUNCTION_OPEN, pos):
        raise CallSyntaxError("expected <function=NAME> in a <tool_call> block")
    return _functions(body, pos + len(_FUNCTION_OPEN), tools)


def _functions(body: str, start: int, tools: ToolSet) -> list[ToolCall]:
    """The functions from `start` (just after a `<function=`) to the end of `body`.

    A function ends at its `</function>`; one that lacks it ends where the next function or
    block begins, or at the end of the body. A `</tool_call>` / `<tool_call>` between functions
    is a block boundary (a model that left out a closer or an opener between two blocks).
    """
    markers = _Markers(body)
    calls: list[ToolCall] = []
    pos = start
    while True:
        call, pos = _function_at(body, pos, tools, markers)
        calls.append(call)
        pos = skip_space(body, pos)
        for boundary in (_BLOCK_CLOSE, _BLOCK_OPEN):
            if body.startswith(boundary, pos):
                pos = skip_space(body, pos + len(boundary))
        if pos == len(body):
            return calls
        if not body.startswith(_FUNCTION_OPEN, pos):
            raise CallSyntaxError("text after a function in a <tool_call> block")
        pos += len(_FUNCTION_OPEN)


def render(calls: Sequence[ToolCall]) -> str:
    """The text Qwen3-Coder's chat template writes for `calls`."""
    blocks: list[str] = []
    for call in calls:
        lines = ["<tool_call>", f"<function={call.name}>"]
        for key, value in call.arguments.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines += [f"<parameter={key}>", text, _PARAMETER_CLOSE]
        lines += [_FUNCTION_CLOSE, "</tool_call>"]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _function_at(body: str, pos: int, tools: ToolSet, markers: _Markers) -> tuple[ToolCall, int]:
    """The function whose `NAME>` starts at `pos`, and the offset after it."""
    gt = body.find(">", pos)
    if gt < 0:
        raise CallSyntaxError("<function= without a closing '>' after the name")
    name = body[pos:gt].strip()
    if not name or any(c.isspace() or c in "<>{}\"'" for c in name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
    i = skip_space(body, gt + 1)
    if body.startswith("{", i):
        return _json_function(body, name, i)
    raw: dict[str, str] = {}
    declared = _declared_parameters(name, tools)
    while True:
        i = skip_space(body, i)
        if body.startswith(_FUNCTION_CLOSE, i):
            i += len(_FUNCTION_CLOSE)
            break
        if i == len(body) or body.startswith((_FUNCTION_OPEN, _BLOCK_OPEN, _BLOCK_CLOSE), i):
            break  # the `</function>` was left out
        if not body.startswith(_PARAMETER_OPEN, i):
            raise CallSyntaxError("expected <parameter=KEY> inside a function")
        key_start = i + len(_PARAMETER_OPEN)
        gt = body.find(">", key_start)
        if gt < 0:
            raise CallSyntaxError("<parameter= without a closing '>' after the key")
        key = body[key_start:gt].strip()
        if not key or "\n" in key or "<" in key:
            raise CallSyntaxError(f"not a parameter name: {key[:40]!r}")
        value_end, i = _value_end(body, gt + 1, markers, _NextKeys(declared, given={*raw, key}))
        if value_end < 0:
            raise CallSyntaxError(f"parameter {key!r} never closed")
        if key in raw:  # which value did the model mean? It must say again
            raise CallSyntaxError(f"parameter {key!r} given twice")
        raw[key] = strip_layout_newlines(body[gt + 1 : value_end])
    return ToolCall(name=name, arguments=coerce_arguments(name, raw, tools)), i


def _value_end(body: str, start: int, markers: _Markers, next_keys: _NextKeys) -> tuple[int, int]:
    """Where the value starting at `start` ends, and where parsing goes on (-1, -1: never).

    A value ends at its `</parameter>`, even past a `</function>` written inside it (code that
    writes this format). A value without its own `</parameter>` ends at the next marker: the
    next `<parameter=`, `</function>`, `<function=` or block boundary. The `</parameter>` found
    first is not its own when a `</function>` comes before it and a new function or parameter
    opens in between, or when a `<parameter=KEY>` before it starts a line and KEY is one of
    `next_keys` (the model left out this value's `</parameter>`, as Qwen3-Coder now and then does).
    """
    close = markers.parameter_close.next(start)
    opener = markers.parameter_open.next(start)
    if 0 <= opener < close and _opens_parameter(body, opener, next_keys):
        return opener, opener
    following = [
        markers.parameter_open.next(start),
        function_close := markers.function_close.next(start),
        markers.function_open.next(start),
        markers.block_open.next(start),
        markers.block_close.next(start),
    ]
    if close >= 0 and not (0 <= function_close < close and _opens_between(body, function_close, close)):
        return close, close + len(_PARAMETER_CLOSE)
    ends = [m for m in following if m >= 0]
    if not ends:
        return -1, -1
    return min(ends), min(ends)


def _opens_parameter(body: str, at: int, next_keys: _NextKeys) -> bool:
    """Whether the `<parameter=` at `at` starts a line (as the template writes it) and names one
    of `next_keys`, so it opens a parameter rather than sitting in a value."""
    if at == 0 or body[at - 1] != "\n":
        return False
    gt = body.find(">", at)
    newline = body.find("\n", at)
    if gt < 0 or 0 <= newline < gt:
        return False
    return body[at + len(_PARAMETER_OPEN) : gt].strip() in next_keys


def _declared_parameters(name: str, tools: ToolSet) -> _AnyKey | frozenset[str]:
    """The parameter names tool `name` declares, or every name when its schema is unknown."""
    schema = tools.schema(name)
    properties = schema.get("properties") if schema is not None else None
    if not isinstance(properties, Mapping):
        return _AnyKey()
    return frozenset(str(k) for k in properties)  # pyright: ignore[reportUnknownVariableType]


class _AnyKey:
    """Stands for every parameter name (a tool whose schema is unknown)."""

    def __contains__(self, key: object) -> bool:
        return True


class _NextKeys:
    """The parameters that may still come in a function: declared ones not given yet."""

    def __init__(self, declared: _AnyKey | frozenset[str], given: set[str]) -> None:
        self.declared = declared
        self.given = given

    def __contains__(self, key: object) -> bool:
        return key in self.declared and key not in self.given


def _opens_between(body: str, start: int, end: int) -> bool:
    return body.find(_PARAMETER_OPEN, start, end) >= 0 or body.find(_FUNCTION_OPEN, start, end) >= 0


def _json_function(body: str, name: str, start: int) -> tuple[ToolCall, int]:
    """`<function=NAME>{"k": 1}</function>`: JSON arguments (types kept), Llama 3.1's shape."""
    end = ValueScanner(start).scan(body)
    if end is None:
        raise CallSyntaxError(f"JSON arguments of {name!r} never closed")
    try:
        arguments = loads_lenient(body[start:end])
    except ValueError as exc:
        raise CallSyntaxError(f"JSON arguments of {name!r} are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError("JSON arguments must be an object")
    after = skip_space(body, end)
    if body.startswith(_FUNCTION_CLOSE, after):
        return ToolCall(name=name, arguments=arguments), after + len(_FUNCTION_CLOSE)
    if after == len(body) or body.startswith((_FUNCTION_OPEN, _BLOCK_OPEN, _BLOCK_CLOSE), after):
        return ToolCall(name=name, arguments=arguments), after
    raise CallSyntaxError(f"text after the JSON arguments of {name!r}")


class _Markers:
    """One forward finder per marker a function body is read by."""

    def __init__(self, body: str) -> None:
        self.parameter_open = ForwardFinder(body, _PARAMETER_OPEN)
        self.parameter_close = ForwardFinder(body, _PARAMETER_CLOSE)
        self.function_open = ForwardFinder(body, _FUNCTION_OPEN)
        self.function_close = ForwardFinder(body, _FUNCTION_CLOSE)
        self.block_open = ForwardFinder(body, _BLOCK_OPEN)
        self.block_close = ForwardFinder(body, _BLOCK_CLOSE)
