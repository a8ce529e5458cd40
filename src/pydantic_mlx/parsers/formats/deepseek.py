"""DeepSeek calls: V3 / R1, V3.1, and the DSML of V3.2 and V4.

The markers are special tokens spelled with full-width bars `｜` (U+FF5C) and `▁` (U+2581):

- V3 and R1 (`function` is the call type, arguments in a fenced JSON block)::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
    ```json
    {"city": "Paris"}
    ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>

- V3.1 (and later non-DSML releases: V3.1-Terminus, V3.2-Exp's chat mode)::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜>
    <｜tool▁calls▁end｜>

  (one line in reality).

- DSML, V3.2 (`function_calls`) and V4 (`tool_calls`), several invokes in one block::

    <｜DSML｜function_calls>
    <｜DSML｜invoke name="get_weather">
    <｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>
    <｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>
    </｜DSML｜invoke>
    </｜DSML｜function_calls>

  `string="true"` values are text, kept byte for byte, and `string="false"` values are JSON,
  unless the tool's schema says otherwise (a number the model marked as a string is still a
  number when the schema allows no string); a parameter without the attribute is typed by
  the schema (`parsers/_schema.py`).

JSON arguments keep their types. Reasoning is `<think>...</think>`; `<｜end▁of▁sentence｜>` ends
the turn and is dropped. Each call's own end marker must be there: a body whose last call lacks
`<｜tool▁call▁end｜>` or `</｜DSML｜invoke>` may have been cut off and is not read as a call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import regex

from .._json import ValueScanner, loads_lenient
from .._schema import coerce_argument, unwrap_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "deepseek"

_CALLS_BEGIN, _CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
_CALL_BEGIN, _CALL_END = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>"
_SEP = "<｜tool▁sep｜>"
_DSML = "｜DSML｜"
_INVOKE_OPEN, _INVOKE_CLOSE = f"<{_DSML}invoke", f"</{_DSML}invoke>"
_PARAMETER_OPEN, _PARAMETER_CLOSE = f"<{_DSML}parameter", f"</{_DSML}parameter>"

# End markers written inside an argument (a JSON string, a DSML value) do not end the region.
_JSON_STRING = Quote('"', ('"',), backslash=True)
_DSML_VALUE = Quote(_PARAMETER_OPEN, (_PARAMETER_CLOSE,))
# All openers are special tokens, so they also end a `<think>` block left open (V4 starts its
# calls right after reasoning). Calls that have their own end marker stand even when the
# section's end was cut off.
_SECTION = CallSyntax(
    _CALLS_BEGIN,
    Closers((_CALLS_END,), quotes=(_JSON_STRING,), complete_at=(_CALL_END,)),
    ends_reasoning=True,
)
# A lone call without the section markers around it (the section end then is stray markup).
_LONE_CALL = CallSyntax(_CALL_BEGIN, Closers((_CALL_END,), quotes=(_JSON_STRING,)), ends_reasoning=True)
_DSML_V32 = CallSyntax(
    f"<{_DSML}function_calls>",
    Closers((f"</{_DSML}function_calls>",), quotes=(_DSML_VALUE,), complete_at=(_INVOKE_CLOSE,)),
    ends_reasoning=True,
)
_DSML_V4 = CallSyntax(
    f"<{_DSML}tool_calls>",
    Closers((f"</{_DSML}tool_calls>",), quotes=(_DSML_VALUE,), complete_at=(_INVOKE_CLOSE,)),
    ends_reasoning=True,
)

REASONING = (("<think>", "</think>"),)
DROP = ("<｜end▁of▁sentence｜>", _CALLS_END)
CALLS = (_SECTION, _DSML_V32, _DSML_V4, _LONE_CALL)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_CALLS_BEGIN, _CALL_BEGIN, _DSML)

_WRITTEN_AS: dict[str, Literal["string", "json"]] = {"true": "string", "false": "json"}
_ATTRIBUTE = regex.compile(r"""\s*([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in one region: a `<｜tool▁calls▁begin｜>` section, a lone call, or a DSML block."""
    if syntax.opener == _CALL_BEGIN:
        return [_call(body)]
    if syntax.opener == _CALLS_BEGIN:
        return _section(body)
    return _dsml(body, tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text DeepSeek-V3.1's chat template writes for `calls`."""
    parts = [
        f"{_CALL_BEGIN}{call.name}{_SEP}{json.dumps(call.arguments, ensure_ascii=False)}{_CALL_END}"
        for call in calls
    ]
    return _CALLS_BEGIN + "".join(parts) + _CALLS_END


def _section(body: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    pos = _skip_space(body, 0)
    while pos < len(body):
        if not body.startswith(_CALL_BEGIN, pos):
            raise CallSyntaxError(f"expected {_CALL_BEGIN} in a tool-calls section")
        start = pos + len(_CALL_BEGIN)
        end = _call_end(body, start)
        if end < 0:
            raise CallSyntaxError(f"a call without its {_CALL_END}")
        calls.append(_call(body[start:end]))
        pos = _skip_space(body, end + len(_CALL_END))
    if not calls:
        raise CallSyntaxError("an empty tool-calls section")
    return calls


def _call_end(body: str, start: int) -> int:
    """Where the call starting at `start` ends: the first `<｜tool▁call▁end｜>` after its JSON
    arguments (one written inside a JSON string is part of the arguments), or -1."""
    end = body.find(_CALL_END, start)
    sep = body.find(_SEP, start)
    if sep < 0 or 0 <= end < sep:
        return end
    value = body.find("{", sep)  # V3.1: right after the separator; V3: inside the ``` fence
    if value < 0 or 0 <= end < value:
        return end
    closed = ValueScanner(value).scan(body)
    return end if closed is None else body.find(_CALL_END, closed)


def _call(text: str) -> ToolCall:
    """One call between `<｜tool▁call▁begin｜>` and `<｜tool▁call▁end｜>`, V3 or V3.1 style."""
    head, sep, tail = text.partition(_SEP)
    if not sep:
        raise CallSyntaxError(f"a call without {_SEP}")
    name, arguments_text = head.strip(), tail
    first_line, newline, rest = tail.partition("\n")
    if name == "function" and newline and _is_name(first_line.strip()):
        # V3 / R1: the call type before the separator, then NAME, and the arguments on the next
        # line (in a ```json fence, as the template writes them, or bare).
        name, arguments_text = first_line.strip(), rest
    _check_name(name)
    return ToolCall(name=name, arguments=_json_arguments(_unfence(arguments_text.strip())))


def _unfence(text: str) -> str:
    if not text.startswith("```"):
        return text
    if len(text) < 6 or not text.endswith("```"):
        raise CallSyntaxError("an unclosed ``` fence around the arguments")
    inner = text[3:-3]
    if inner.startswith("json"):
        inner = inner[4:]
    return inner


def _json_arguments(text: str) -> dict[str, Any]:
    try:
        arguments = loads_lenient(text)
    except ValueError as exc:
        raise CallSyntaxError(f"arguments are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError("arguments must be a JSON object")
    return arguments


def _dsml(body: str, tools: ToolSet) -> list[ToolCall]:
    calls: list[ToolCall] = []
    pos = _skip_space(body, 0)
    while pos < len(body):
        attributes, pos = _tag(body, pos, _INVOKE_OPEN)
        name = attributes.get("name", "")
        _check_name(name)
        raw_arguments, pos = _dsml_parameters(body, pos, name, tools)
        calls.append(ToolCall(name=name, arguments=unwrap_arguments(name, raw_arguments, tools)))
        pos = _skip_space(body, pos)
    if not calls:
        raise CallSyntaxError("an empty DSML block")
    return calls


def _dsml_parameters(body: str, pos: int, name: str, tools: ToolSet) -> tuple[dict[str, Any], int]:
    """The parameters of the invoke whose body starts at `pos`, read one after the other (so an
    end marker inside a value stays in it), and the offset after `</｜DSML｜invoke>`."""
    arguments: dict[str, Any] = {}
    while True:
        pos = _skip_space(body, pos)
        if body.startswith(_INVOKE_CLOSE, pos):
            return arguments, pos + len(_INVOKE_CLOSE)
        if pos == len(body):
            raise CallSyntaxError(f"an invoke without its {_INVOKE_CLOSE}")
        attributes, pos = _tag(body, pos, _PARAMETER_OPEN)
        key = attributes.get("name", "")
        if not key:
            raise CallSyntaxError("a DSML parameter without a name")
        end = body.find(_PARAMETER_CLOSE, pos)
        if end < 0:
            raise CallSyntaxError(f"a parameter without its {_PARAMETER_CLOSE}")
        value = body[pos:end]
        if _PARAMETER_OPEN in value:
            raise CallSyntaxError("a DSML parameter opened inside another")
        if key in arguments:  # which value did the model mean? It must say again
            raise CallSyntaxError(f"parameter {key!r} given twice")
        written_as = _WRITTEN_AS.get(attributes.get("string", ""))
        arguments[key] = coerce_argument(name, key, value, tools, written_as=written_as)
        pos = end + len(_PARAMETER_CLOSE)


def _tag(text: str, pos: int, opener: str) -> tuple[dict[str, str], int]:
    """Read `<｜DSML｜invoke name="...">`-style tag at `pos`: its attributes and the end offset."""
    if not text.startswith(opener, pos):
        raise CallSyntaxError(f"expected {opener} in a DSML block")
    start = pos + len(opener)
    gt = text.find(">", start)
    if gt < 0:
        raise CallSyntaxError(f"{opener} without its closing '>'")
    inside = text[start:gt]
    attributes: dict[str, str] = {}
    at = 0
    while at < len(inside):
        match = _ATTRIBUTE.match(inside, at)
        if match is None:
            if inside[at:].strip():
                raise CallSyntaxError(f"unreadable attributes in {opener}: {inside[:60]!r}")
            break
        value = match.group(2)
        attributes[match.group(1)] = value if value is not None else match.group(3)
        at = match.end()
    return attributes, gt + 1


def _is_name(text: str) -> bool:
    return bool(text) and not any(c.isspace() or c in "<>{}[]\"'`" for c in text)


def _check_name(name: str) -> None:
    if not _is_name(name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
