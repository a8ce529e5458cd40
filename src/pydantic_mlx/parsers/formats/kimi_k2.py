"""Moonshot Kimi calls: Kimi-K2 (K2-Instruct, K2-Thinking, K2.5) sections, and Kimi-K3's XTML.

Kimi-K2 writes a section of calls, each with an id `functions.NAME:INDEX`::

    <|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>
    {"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>

(one line in reality).
The id is kept in `ToolCall.id` (agents send it back with the result); the name is the id
without its `functions.` prefix and `:INDEX` suffix. An id that is a bare counter (`0`, when a
client's history used such ids) names no tool: the call is read only when exactly one declared
tool takes these arguments (as vLLM does), and is malformed otherwise. Some checkpoints spell
the section markers in the singular (`<|tool_call_section_begin|>`); both are read. Arguments
are JSON, types kept.
Reasoning is `<think>...</think>`; `<|im_end|>` ends the turn and is dropped.

Kimi-K3 writes XTML channels out of `<|open|>`, `<|sep|>` and `<|close|>` tokens::

    <|open|>think<|sep|>...<|close|>think<|sep|>
    <|open|>response<|sep|>Let me look.<|close|>response<|sep|>
    <|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|>
    <|open|>argument key="city" type="string"<|sep|>Paris<|close|>argument<|sep|>
    <|close|>call<|sep|><|close|>tools<|sep|><|close|>message<|sep|>

(all on one line in reality). `think` is reasoning, the `response` channel's markers and the message
end are dropped, and a `tools` channel holds the calls. Each `argument` carries its JSON type:
`string` values are raw text, the others JSON (the tool's schema, when it has types, has the
last word, as for DeepSeek's DSML); a call may instead carry all its arguments as
one `<|open|>json type="object"<|sep|>{...}<|close|>json<|sep|>` block. Attribute values
escape `&` and `"` as `&amp;` and `&quot;`. K3 calls carry no id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import regex

from .._json import ValueScanner, loads_lenient
from .._schema import coerce_argument, unwrap_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote, SpacedTags

__all__ = [
    "ANSWER",
    "CALLS",
    "DROP",
    "NAME",
    "REASONING",
    "SPACED_TAGS",
    "TEMPLATE_HINTS",
    "UNTAGGED",
    "parse_region",
    "render",
]

NAME = "kimi_k2"

_SECTION_BEGIN, _SECTION_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
_SINGULAR_BEGIN, _SINGULAR_END = "<|tool_call_section_begin|>", "<|tool_call_section_end|>"
_CALL_BEGIN, _CALL_END = "<|tool_call_begin|>", "<|tool_call_end|>"
_ARGUMENT_BEGIN = "<|tool_call_argument_begin|>"
_SECTION_ENDS = (_SECTION_END, _SINGULAR_END)

_OPEN, _SEP, _CLOSE = "<|open|>", "<|sep|>", "<|close|>"
_K3_CALL = f"{_OPEN}call"


def _xtml_close(tag: str) -> str:
    return f"{_CLOSE}{tag}{_SEP}"


# End markers written inside an argument (a JSON string, a K3 value) do not end the region.
# Calls that have their own end marker stand even when the section's end was cut off, and the
# openers (special tokens) also end a `<think>` block left open: K2-Thinking starts its calls
# inside it.
_JSON_STRING = Quote('"', ('"',), backslash=True)
_SECTION_END_RULE = Closers(_SECTION_ENDS, quotes=(_JSON_STRING,), complete_at=(_CALL_END,))
_K3_VALUES = (
    Quote(f"{_OPEN}argument", (_xtml_close("argument"),)),
    Quote(f"{_OPEN}json", (_xtml_close("json"),)),
)
_K3_TOOLS = CallSyntax(
    f"{_OPEN}tools{_SEP}",
    Closers((_xtml_close("tools"),), quotes=_K3_VALUES, complete_at=(_xtml_close("call"),)),
    ends_reasoning=True,
)

# A K3 completion may skip its think channel (the prompt opened it) and answer at once: the
# response channel's opener ends the thinking too.
REASONING = (
    ("<think>", "</think>"),
    (f"{_OPEN}think{_SEP}", _xtml_close("think")),
    (f"{_OPEN}think{_SEP}", f"{_OPEN}response{_SEP}"),
)
# A section's inner markers outside any section (the model lost its opener) are markup, not an
# answer: dropped like a stray section end.
DROP = (
    "<|im_end|>",
    *_SECTION_ENDS,
    _CALL_END,
    _ARGUMENT_BEGIN,
    f"{_OPEN}response{_SEP}",
    _xtml_close("response"),
    _xtml_close("message"),
    "<|end_of_msg|>",
)
CALLS = (
    CallSyntax(_SECTION_BEGIN, _SECTION_END_RULE, ends_reasoning=True),
    CallSyntax(_SINGULAR_BEGIN, _SECTION_END_RULE, ends_reasoning=True),
    _K3_TOOLS,
    # A lone call without the section markers around it.
    CallSyntax(_CALL_BEGIN, Closers((_CALL_END,), quotes=(_JSON_STRING,)), ends_reasoning=True),
)
UNTAGGED: frozenset[str] = frozenset()
# K3's response channel is the explicit answer: no untagged call is read in it (`format="auto"`).
ANSWER = ((f"{_OPEN}response{_SEP}",), (_xtml_close("response"), _xtml_close("message"), "<|end_of_msg|>"))
# Degraded K3 outputs put spaces around a marker's word (`<|open|> response <|sep|>`, vLLM's tests):
# read as the marker.
SPACED_TAGS = (SpacedTags((_OPEN, _CLOSE), _SEP),)
TEMPLATE_HINTS = (_SECTION_BEGIN, _CALL_BEGIN, "tool_declare<|im_middle|>", _OPEN)

# `functions.NAME:INDEX`; vLLM, SGLang and llama.cpp all require the index (`functions.x.0` is
# not an id).
_CALL_ID = regex.compile(r"(?:functions\.)?(.+?):\d+")
_ATTRIBUTE = regex.compile(r'\s*([A-Za-z_][\w-]*)="([^"]*)"')
_ENTITY = regex.compile(r"&(quot|amp);")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in a K2 section, a lone K2 call, or a K3 `tools` channel.

    In a section or channel of several calls, a bad call comes back as a `CallSyntaxError`
    carrying its own text, in its place, and the good ones are kept. Raises `CallSyntaxError`
    when the region holds no readable call at all (an empty section is not an answer either)."""
    if syntax.opener == _K3_TOOLS.opener:
        items = _k3_tools(body, tools)
    elif syntax.opener == _CALL_BEGIN:
        return [_k2_call(body, tools)]
    else:
        items = _k2_section(body, tools)
    if not items:
        raise CallSyntaxError("an empty tool-calls section")
    if not any(isinstance(item, ToolCall) for item in items):
        first = items[0]
        assert isinstance(first, CallSyntaxError)
        raise CallSyntaxError(str(first), name=first.name)  # the whole region is the problem
    return items


def _k2_section(body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """Each `<|tool_call_begin|>…<|tool_call_end|>` of a section in order. Text between calls
    is not a call and not an answer (vLLM and SGLang skip it too): it is left out."""
    items: list[ToolCall | CallSyntaxError] = []
    pos = body.find(_CALL_BEGIN)
    while pos >= 0:
        start = pos + len(_CALL_BEGIN)
        end, lost_end = _call_end(body, start)
        if end < 0:
            text = body[pos:]
            items.append(CallSyntaxError(f"a call without its {_CALL_END}", text=text))
            break
        if lost_end:  # the next call began before this one's end marker
            items.append(CallSyntaxError(f"a call without its {_CALL_END}", text=body[pos:end]))
            pos = end
            continue
        try:
            items.append(_k2_call(body[start:end], tools))
        except CallSyntaxError as exc:
            items.append(CallSyntaxError(str(exc), text=body[pos : end + len(_CALL_END)], name=exc.name))
        pos = body.find(_CALL_BEGIN, end + len(_CALL_END))
    return items


def render(calls: Sequence[ToolCall]) -> str:
    """The text Kimi-K2's chat template writes for `calls` (ids default to `functions.NAME:i`)."""
    parts = [
        f"{_CALL_BEGIN}{call.id or f'functions.{call.name}:{index}'}{_ARGUMENT_BEGIN}"
        f"{json.dumps(call.arguments, ensure_ascii=False)}{_CALL_END}"
        for index, call in enumerate(calls)
    ]
    return _SECTION_BEGIN + "".join(parts) + _SECTION_END


def _call_end(body: str, start: int) -> tuple[int, bool]:
    """Where the call starting at `start` ends: the first `<|tool_call_end|>` after its JSON
    arguments (one written inside a JSON string is part of the arguments), or -1. With True,
    the call lost its end marker: the offset is where the next call begins."""
    end = body.find(_CALL_END, start)
    arguments = body.find(_ARGUMENT_BEGIN, start)
    following = body.find(_CALL_BEGIN, start)
    search_from = start
    if arguments >= 0 and not (0 <= end < arguments) and not (0 <= following < arguments):
        value = _skip_space(body, arguments + len(_ARGUMENT_BEGIN))
        if value < len(body) and body[value] in "{[":
            closed = ValueScanner(value).scan(body)
            if closed is not None:
                search_from = closed
    end = body.find(_CALL_END, search_from)
    following = body.find(_CALL_BEGIN, search_from)
    if following >= 0 and (end < 0 or following < end):
        return following, True
    return end, False


def _k2_call(text: str, tools: ToolSet) -> ToolCall:
    """`functions.NAME:INDEX<|tool_call_argument_begin|>{...}` (the text between the call markers)."""
    call_id, found, arguments_text = text.partition(_ARGUMENT_BEGIN)
    if not found:
        raise CallSyntaxError(f"a call without {_ARGUMENT_BEGIN}")
    call_id = call_id.strip()
    try:
        arguments = loads_lenient(arguments_text)
    except ValueError as exc:
        raise CallSyntaxError(f"arguments of {call_id[:60]!r} are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError("arguments must be a JSON object")
    if call_id.isdigit():
        name = _only_tool_taking(arguments, tools)
    else:
        match = _CALL_ID.fullmatch(call_id)
        name = match.group(1) if match else ""
    if not name or any(c.isspace() or c in "<>{}\"'`" for c in name):
        raise CallSyntaxError(f"not a Kimi call id: {call_id[:60]!r}")
    return ToolCall(name=name, arguments=arguments, id=call_id)


def _only_tool_taking(arguments: dict[str, Any], tools: ToolSet) -> str:
    """The name for a call whose id is a bare counter (`<|tool_call_begin|>0<|tool_call_argument_begin|>`,
    when a client's history used such ids): the one declared tool whose parameters cover these
    arguments, required ones included. None or several such tools: no name (the call is malformed)."""
    fitting: list[str] = []
    for name, schema in tools.schemas.items():
        properties = schema.get("properties")
        declared = set(properties) if isinstance(properties, Mapping) else set()
        required = schema.get("required")
        needed = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        if set(arguments) <= declared and needed <= set(arguments):
            fitting.append(name)
    return fitting[0] if len(fitting) == 1 else ""


def _k3_tools(body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """Each `<|open|>call …<|close|>call<|sep|>` of a tools channel in order. A bad call runs to
    where the next call opens (an `<|open|>` never stands inside a value); text between calls is
    left out, as in a K2 section."""
    items: list[ToolCall | CallSyntaxError] = []
    pos = body.find(_K3_CALL)
    while pos >= 0:
        start = pos
        try:
            attributes, pos = _xtml_open(body, pos, "call")
            name = attributes.get("tool", "")
            if not name:
                raise CallSyntaxError("a Kimi-K3 call without its tool name")
            arguments, pos = _k3_arguments(body, pos, name, tools)
            items.append(ToolCall(name=name, arguments=unwrap_arguments(name, arguments, tools)))
        except CallSyntaxError as exc:
            pos = body.find(_K3_CALL, start + len(_K3_CALL))
            items.append(CallSyntaxError(str(exc), text=body[start : pos if pos >= 0 else len(body)]))
            continue
        pos = body.find(_K3_CALL, pos)
    return items


def _k3_arguments(body: str, pos: int, name: str, tools: ToolSet) -> tuple[dict[str, Any], int]:
    """The arguments of the call whose body starts at `pos`, read one block after the other (so
    an end marker inside a value stays in it), and the offset after `<|close|>call<|sep|>`."""
    call_close = _xtml_close("call")
    pos = _skip_space(body, pos)
    if body.startswith(f"{_OPEN}json", pos):
        _, pos = _xtml_open(body, pos, "json")
        value, pos = _xtml_value(body, pos, "json")
        pos = _skip_space(body, pos)
        if not body.startswith(call_close, pos):
            raise CallSyntaxError(f"a Kimi-K3 json block not followed by {call_close}")
        try:
            whole = loads_lenient(value)
        except ValueError as exc:
            raise CallSyntaxError(f"arguments of {name!r} are not JSON: {exc}") from None
        if not isinstance(whole, dict):
            raise CallSyntaxError("arguments must be a JSON object")
        return whole, pos + len(call_close)
    arguments: dict[str, Any] = {}
    while True:
        pos = _skip_space(body, pos)
        if body.startswith(call_close, pos):
            return arguments, pos + len(call_close)
        if pos == len(body):
            raise CallSyntaxError(f"a call without its {call_close}")
        attributes, pos = _xtml_open(body, pos, "argument")
        key = attributes.get("key")
        if not key:
            raise CallSyntaxError("a Kimi-K3 argument without its key")
        value, pos = _xtml_value(body, pos, "argument")
        if key in arguments:  # which value did the model mean? It must say again
            raise CallSyntaxError(f"argument {key!r} given twice")
        written_as = "string" if attributes.get("type", "string") == "string" else "json"
        arguments[key] = coerce_argument(name, key, value, tools, written_as=written_as)


def _xtml_open(text: str, pos: int, tag: str) -> tuple[dict[str, str], int]:
    """Read `<|open|>TAG a="1" b="2"<|sep|>` at `pos`: its attributes and the end offset."""
    opener = _OPEN + tag
    if not text.startswith(opener, pos):
        raise CallSyntaxError(f"expected {opener} in a Kimi-K3 tools channel")
    start = pos + len(opener)
    sep = text.find(_SEP, start)
    if sep < 0:
        raise CallSyntaxError(f"{opener} without its {_SEP}")
    inside = text[start:sep]
    attributes: dict[str, str] = {}
    at = 0
    while at < len(inside):
        match = _ATTRIBUTE.match(inside, at)
        if match is None:
            if inside[at:].strip():
                raise CallSyntaxError(f"unreadable attributes in {opener}: {inside[:60]!r}")
            break
        attributes[match.group(1)] = _ENTITY.sub(_unescape, match.group(2))
        at = match.end()
    return attributes, sep + len(_SEP)


def _unescape(entity: regex.Match[str]) -> str:
    return '"' if entity.group(1) == "quot" else "&"


def _xtml_value(text: str, pos: int, tag: str) -> tuple[str, int]:
    """The raw text from `pos` to `<|close|>TAG<|sep|>`, and the offset after that marker."""
    closer = _xtml_close(tag)
    end = text.find(closer, pos)
    if end < 0:
        raise CallSyntaxError(f"{_OPEN}{tag} without its {closer}")
    value = text[pos:end]
    if _OPEN in value:
        raise CallSyntaxError(f"{_OPEN} inside a Kimi-K3 {tag} value")
    return value, end + len(closer)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
