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
Models also drop the opening `<tool_call>` (then the call opens at `<function=` and a stray
`</tool_call>` after it is markup), put several functions in one block, and now and then leave
out the `</parameter>` of the last parameters: a value ends at its `</parameter>`, and only when
none is left in the function does the next `<parameter=` or the `</function>` end it (so a
value may itself contain `<parameter=x>` text, e.g. code that writes this format).
`<function=NAME>{"k": 1}</function>` (JSON inside, Llama 3.1's custom-tool format) is read too,
with the JSON types kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._json import loads_lenient
from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "qwen3_coder"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>", "<|endoftext|>")
# A value may mention the closers (a file about tool calls). A value missing its own closer
# hides them until the output ends; then the first closer counts after all.
_VALUE = Quote("<parameter=", ("</parameter>",))
_TOOL_CALL = CallSyntax("<tool_call>", Closers(("</tool_call>",), quotes=(_VALUE,)))
# Without the opening <tool_call>, the template's closing </tool_call> still follows.
_BARE_FUNCTION = CallSyntax("<function=", Closers(("</function>",), quotes=(_VALUE,)), trailer="</tool_call>")
CALLS = (_TOOL_CALL, _BARE_FUNCTION)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<parameter=",)

_BLOCK_OPEN = "<tool_call>"
_FUNCTION_OPEN = "<function="
_FUNCTION_CLOSE = "</function>"
_PARAMETER_OPEN = "<parameter="
_PARAMETER_CLOSE = "</parameter>"


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in a `<tool_call>` block (one or more `<function=...>`), or in a bare
    `<function=...>` region (whose body starts right after that `<function=`)."""
    if syntax.opener == _FUNCTION_OPEN:
        return _functions(body, 0, tools)
    pos = _skip_space(body, 0)
    if not body.startswith(_FUNCTION_OPEN, pos):
        raise CallSyntaxError("expected <function=NAME> in a <tool_call> block")
    return _functions(body, pos + len(_FUNCTION_OPEN), tools)


def _functions(body: str, start: int, tools: ToolSet) -> list[ToolCall]:
    """The functions from `start` (just after a `<function=`) to the end of `body`.

    A function ends at its `</function>`. One that lacks it ends at the next `<function=` or at
    the end of the body, and then its last parameter must have its `</parameter>`: without
    either closing marker, a value may have been cut off. A `<tool_call>` between functions is
    the next block of a model that left out a `</tool_call>`.
    """
    calls: list[ToolCall] = []
    closes, opens = _Finder(body, _FUNCTION_CLOSE), _Finder(body, _FUNCTION_OPEN)
    while True:
        close, following = closes.next(start), opens.next(start)
        if close >= 0 and (following < 0 or close < following):
            calls.append(_function(body[start:close], tools, closed=True))
            pos = _skip_space(body, close + len(_FUNCTION_CLOSE))
        else:
            end = following if following >= 0 else len(body)
            segment = body[start:end]
            if following >= 0 and segment.rstrip().endswith(_BLOCK_OPEN):
                segment = segment.rstrip()[: -len(_BLOCK_OPEN)]
            calls.append(_function(segment, tools, closed=False))
            pos = end
        if body.startswith(_BLOCK_OPEN, pos):
            pos = _skip_space(body, pos + len(_BLOCK_OPEN))
        if pos == len(body):
            return calls
        if not body.startswith(_FUNCTION_OPEN, pos):
            raise CallSyntaxError("text after a function in a <tool_call> block")
        start = pos + len(_FUNCTION_OPEN)


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


def _function(text: str, tools: ToolSet, *, closed: bool) -> ToolCall:
    """One function from `NAME>...` (the text between `<function=` and `</function>`)."""
    gt = text.find(">")
    if gt < 0:
        raise CallSyntaxError("<function= without a closing '>' after the name")
    name = text[:gt].strip()
    if not name or any(c.isspace() or c in "<>{}\"'" for c in name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
    content = text[gt + 1 :]
    stripped = content.strip()
    if stripped.startswith("{"):
        try:
            arguments = loads_lenient(stripped)
        except ValueError as exc:
            raise CallSyntaxError(f"JSON arguments of {name!r} are not JSON: {exc}") from None
        if not isinstance(arguments, dict):
            raise CallSyntaxError("JSON arguments must be an object")
        return ToolCall(name=name, arguments=arguments)
    return ToolCall(name=name, arguments=coerce_arguments(name, _parameters(content, closed=closed), tools))


def _parameters(content: str, *, closed: bool) -> dict[str, str]:
    """Raw `<parameter=KEY>VALUE</parameter>` pairs; anything else between them is an error."""
    raw: dict[str, str] = {}
    closes, opens = _Finder(content, _PARAMETER_CLOSE), _Finder(content, _PARAMETER_OPEN)
    pos = _skip_space(content, 0)
    while pos < len(content):
        if not content.startswith(_PARAMETER_OPEN, pos):
            raise CallSyntaxError("expected <parameter=KEY> inside a function")
        key_start = pos + len(_PARAMETER_OPEN)
        gt = content.find(">", key_start)
        if gt < 0:
            raise CallSyntaxError("<parameter= without a closing '>' after the key")
        key = content[key_start:gt].strip()
        if not key or "\n" in key or "<" in key:
            raise CallSyntaxError(f"not a parameter name: {key[:40]!r}")
        value_start = gt + 1
        close = closes.next(value_start)
        if close >= 0:
            value_end, pos = close, close + len(_PARAMETER_CLOSE)
        elif (following := opens.next(value_start)) >= 0:
            value_end = pos = following  # `</parameter>` left out before the next parameter
        elif closed:
            value_end = pos = len(content)  # `</parameter>` left out before `</function>`
        else:
            raise CallSyntaxError(f"parameter {key!r} never closed")
        raw[key] = _strip_template_newlines(content[value_start:value_end])
        pos = _skip_space(content, pos)
    return raw


def _strip_template_newlines(value: str) -> str:
    """Remove the one newline the template writes on each side of a value, and only that."""
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


class _Finder:
    """Finds the next `marker` at or after a position that only moves forward, rescanning
    only when the position has passed the last hit (linear overall)."""

    def __init__(self, text: str, marker: str) -> None:
        self.text, self.marker, self.hit = text, marker, -2

    def next(self, pos: int) -> int:
        if self.hit == -2 or (self.hit != -1 and self.hit < pos):
            self.hit = self.text.find(self.marker, pos)
        return self.hit
