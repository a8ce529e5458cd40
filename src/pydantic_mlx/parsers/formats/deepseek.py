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

  DeepSeek-V4.1 writes the same with a space after the bar and names the block `calls`
  (`<｜DSML｜ calls>`, `<｜DSML｜ invoke name="...">`, `<｜DSML｜ parameter ...>`); both spellings are
  read for every tag. Also read: a self-closing invoke (`<｜DSML｜invoke name="x"/>`, no
  arguments), an invoke whose body is one JSON object of arguments instead of parameters (as
  SGLang's V3.2 reader accepts), and invokes written without their block (the stray block
  closer after them is dropped).

JSON arguments keep their types. Reasoning is `<think>...</think>`; `<｜end▁of▁sentence｜>` ends
the turn and is dropped. Each call's own end marker must be there: a body whose last call lacks
`<｜tool▁call▁end｜>` or `</｜DSML｜invoke>` may have been cut off and is not read as a call. In a
section or block of several calls, a bad call is reported on its own (its raw text on its
problem) and the well-formed calls beside it are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from .._calls import arguments_from_json
from .._json import ValueScanner
from .._scan import read_attributes, skip_space
from .._schema import coerce_argument, unwrap_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "deepseek"

_CALLS_BEGIN, _CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
_CALL_BEGIN, _CALL_END = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>"
_SEP = "<｜tool▁sep｜>"
_DSML = "｜DSML｜"
# V4.1 writes a space after the bar: every DSML tag comes in both spellings.
_SPELLINGS = (_DSML, _DSML + " ")
_INVOKE_OPENS = tuple(f"<{d}invoke" for d in _SPELLINGS)
_INVOKE_CLOSES = tuple(f"</{d}invoke>" for d in _SPELLINGS)
_PARAMETER_OPENS = tuple(f"<{d}parameter" for d in _SPELLINGS)
_PARAMETER_CLOSES = tuple(f"</{d}parameter>" for d in _SPELLINGS)
_BLOCK_NAMES = ("function_calls", "tool_calls", "calls")  # V3.2, V4, V4.1
_BLOCK_CLOSES = tuple(f"</{d}{name}>" for name in _BLOCK_NAMES for d in _SPELLINGS)

# End markers written inside an argument (a JSON string, a DSML value) do not end the region.
_JSON_STRING = Quote('"', ('"',), backslash=True)
_DSML_VALUES = tuple(Quote(opener, _PARAMETER_CLOSES) for opener in _PARAMETER_OPENS)
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
_DSML_BLOCKS = tuple(
    CallSyntax(
        f"<{d}{name}>",
        Closers(tuple(f"</{e}{name}>" for e in _SPELLINGS), quotes=_DSML_VALUES, complete_at=_INVOKE_CLOSES),
        ends_reasoning=True,
    )
    for name in _BLOCK_NAMES
    for d in _SPELLINGS
)
# An invoke without its block: it ends at its own closer, or at the `/>` of a self-closing
# tag (outside values and JSON strings). The closer stays in the body to tell the two apart.
_LONE_INVOKES = tuple(
    CallSyntax(
        opener,
        Closers((*_INVOKE_CLOSES, "/>"), quotes=(*_DSML_VALUES, _JSON_STRING)),
        ends_reasoning=True,
        closer_in_body=True,
    )
    for opener in _INVOKE_OPENS
)

REASONING = (("<think>", "</think>"),)
DROP = ("<｜end▁of▁sentence｜>", _CALLS_END, *_BLOCK_CLOSES)
CALLS = (_SECTION, *_DSML_BLOCKS, _LONE_CALL, *_LONE_INVOKES)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_CALLS_BEGIN, _CALL_BEGIN, _DSML)

_WRITTEN_AS: dict[str, Literal["string", "json"]] = {"true": "string", "false": "json"}
_ATTRIBUTE = re.compile(r"""\s*([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in one region: a `<｜tool▁calls▁begin｜>` section, a lone call, a DSML block, or
    a lone DSML invoke. A bad call among good ones comes back as a `CallSyntaxError` in its place."""
    if syntax.opener == _CALL_BEGIN:
        return [_call(body)]
    if syntax.opener == _CALLS_BEGIN:
        return _each_or_raise(_section(body))
    if syntax.opener in _INVOKE_OPENS:
        call, end = _invoke(syntax.opener + body, 0, tools)
        if end != len(syntax.opener + body):
            raise CallSyntaxError("text after a DSML invoke")
        return [call]
    return _each_or_raise(_dsml(body, tools))


def _each_or_raise(items: list[ToolCall | CallSyntaxError]) -> list[ToolCall | CallSyntaxError]:
    """The items of a region that holds at least one good call; otherwise the region as a whole
    is unreadable (its raw text, markers included, goes on one problem)."""
    if not any(isinstance(item, ToolCall) for item in items):
        errors = [item for item in items if isinstance(item, CallSyntaxError)]
        raise CallSyntaxError(str(errors[0]) if errors else "an empty call region")
    return items


def render(calls: Sequence[ToolCall]) -> str:
    """The text DeepSeek-V3.1's chat template writes for `calls`."""
    parts = [
        f"{_CALL_BEGIN}{call.name}{_SEP}{json.dumps(call.arguments, ensure_ascii=False)}{_CALL_END}"
        for call in calls
    ]
    return _CALLS_BEGIN + "".join(parts) + _CALLS_END


def _section(body: str) -> list[ToolCall | CallSyntaxError]:
    items: list[ToolCall | CallSyntaxError] = []
    pos = skip_space(body, 0)
    while pos < len(body):
        if not body.startswith(_CALL_BEGIN, pos):
            # Noise before the next call: a bad item of its own, not the call after it.
            end = body.find(_CALL_BEGIN, pos)
            end = len(body) if end < 0 else end
            items.append(CallSyntaxError(f"expected {_CALL_BEGIN} in a tool-calls section", body[pos:end]))
            pos = end
            continue
        start = pos + len(_CALL_BEGIN)
        end = _call_end(body, start)
        if end < 0:
            items.append(CallSyntaxError(f"a call without its {_CALL_END}", body[pos:]))
            break
        try:
            items.append(_call(body[start:end]))
        except CallSyntaxError as exc:
            items.append(CallSyntaxError(str(exc), body[pos : end + len(_CALL_END)], exc.name))
        pos = skip_space(body, end + len(_CALL_END))
    return items


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
    return ToolCall(name=name, arguments=arguments_from_json(_unfence(arguments_text.strip()), name))


def _unfence(text: str) -> str:
    if not text.startswith("```"):
        return text
    if len(text) < 6 or not text.endswith("```"):
        raise CallSyntaxError("an unclosed ``` fence around the arguments")
    inner = text[3:-3]
    if inner.startswith("json"):
        inner = inner[4:]
    return inner


def _dsml(body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    items: list[ToolCall | CallSyntaxError] = []
    pos = skip_space(body, 0)
    while pos < len(body):
        try:
            call, end = _invoke(body, pos, tools)
        except CallSyntaxError as exc:
            end = _bad_invoke_end(body, pos)
            items.append(CallSyntaxError(str(exc), body[pos:end], exc.name))
        else:
            items.append(call)
        pos = skip_space(body, end)
    return items


def _bad_invoke_end(body: str, pos: int) -> int:
    """Where an invoke at `pos` that could not be read ends: at the first `</｜DSML｜invoke>`
    followed by another invoke or by the end of the block (so a value holding that closer does
    not split it), or at the next invoke when `pos` is noise rather than an invoke."""
    if _opener_at(body, pos, _INVOKE_OPENS) < 0:
        found = [i for opener in _INVOKE_OPENS if (i := body.find(opener, pos)) >= 0]
        return min(found, default=len(body))
    at = pos
    while True:
        found = [(i, c) for c in _INVOKE_CLOSES if (i := body.find(c, at)) >= 0]
        if not found:
            return len(body)
        i, closer = min(found)
        after = skip_space(body, i + len(closer))
        if after == len(body) or _opener_at(body, after, _INVOKE_OPENS) >= 0:
            return i + len(closer)
        at = i + len(closer)


def _invoke(body: str, pos: int, tools: ToolSet) -> tuple[ToolCall, int]:
    """The invoke at `pos` (either spelling) and the offset after it: parameters, one JSON object
    of arguments (types kept), or nothing (`<｜DSML｜invoke name="x"/>`)."""
    attributes, pos, self_closing = _tag(body, pos, _INVOKE_OPENS)
    name = attributes.get("name", "")
    if not _is_name(name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
    if self_closing:
        return ToolCall(name=name, arguments={}), pos
    value = skip_space(body, pos)
    if body.startswith("{", value):
        return _json_invoke(body, value, name)
    try:
        raw_arguments, pos = _dsml_parameters(body, pos, name, tools)
    except CallSyntaxError as exc:
        raise CallSyntaxError(str(exc), name=name) from None
    return ToolCall(name=name, arguments=unwrap_arguments(name, raw_arguments, tools)), pos


def _json_invoke(body: str, start: int, name: str) -> tuple[ToolCall, int]:
    """`<｜DSML｜invoke name="x">{"k": 1}</｜DSML｜invoke>`: JSON arguments, types kept."""
    end = ValueScanner(start).scan(body)
    if end is None:
        raise CallSyntaxError(f"JSON arguments of {name!r} never closed", name=name)
    try:
        arguments = arguments_from_json(body[start:end], name)
    except CallSyntaxError as exc:
        raise CallSyntaxError(str(exc), name=name) from None
    close = skip_space(body, end)
    after = _opener_at(body, close, _INVOKE_CLOSES)
    if after < 0:
        raise CallSyntaxError("an invoke without its closer after its JSON arguments", name=name)
    return ToolCall(name=name, arguments=arguments), after


def _dsml_parameters(body: str, pos: int, name: str, tools: ToolSet) -> tuple[dict[str, Any], int]:
    """The parameters of the invoke whose body starts at `pos`, read one after the other (so an
    end marker inside a value stays in it), and the offset after `</｜DSML｜invoke>`."""
    arguments: dict[str, Any] = {}
    while True:
        pos = skip_space(body, pos)
        after = _opener_at(body, pos, _INVOKE_CLOSES)
        if after >= 0:
            return arguments, after
        if pos == len(body):
            raise CallSyntaxError("an invoke without its </｜DSML｜invoke>")
        attributes, pos, _ = _tag(body, pos, _PARAMETER_OPENS)
        key = attributes.get("name", "")
        if not key:
            raise CallSyntaxError("a DSML parameter without a name")
        found = [(i, c) for c in _PARAMETER_CLOSES if (i := body.find(c, pos)) >= 0]
        if not found:
            raise CallSyntaxError("a parameter without its </｜DSML｜parameter>")
        end, closer = min(found)
        value = body[pos:end]
        if any(opener in value for opener in _PARAMETER_OPENS):
            raise CallSyntaxError("a DSML parameter opened inside another")
        if key in arguments:  # which value did the model mean? It must say again
            raise CallSyntaxError(f"parameter {key!r} given twice")
        written_as = _WRITTEN_AS.get(attributes.get("string", ""))
        arguments[key] = coerce_argument(name, key, value, tools, written_as=written_as)
        pos = end + len(closer)


def _opener_at(text: str, pos: int, markers: tuple[str, ...]) -> int:
    """The offset after whichever of `markers` starts at `pos`, or -1."""
    for marker in markers:
        if text.startswith(marker, pos):
            return pos + len(marker)
    return -1


def _tag(text: str, pos: int, openers: tuple[str, ...]) -> tuple[dict[str, str], int, bool]:
    """Read a `<｜DSML｜invoke name="...">`-style tag at `pos` (any spelling in `openers`): its
    attributes, the end offset, and whether it closed itself (`/>`)."""
    start = _opener_at(text, pos, openers)
    if start < 0 or (start < len(text) and not (text[start].isspace() or text[start] in "/>")):
        raise CallSyntaxError(f"expected {openers[0]} in a DSML block")
    gt = text.find(">", start)
    if gt < 0:
        raise CallSyntaxError(f"{openers[0]} without its closing '>'")
    inside = text[start:gt]
    self_closing = inside.endswith("/")
    if self_closing:
        inside = inside[:-1]
    return read_attributes(inside, _ATTRIBUTE, openers[0]), gt + 1, self_closing


def _is_name(text: str) -> bool:
    return bool(text) and not any(c.isspace() or c in "<>{}[]\"'`" for c in text)


def _check_name(name: str) -> None:
    if not _is_name(name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
