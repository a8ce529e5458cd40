"""Mistral tool calls, every tokenizer generation.

- Before v11 (Mistral 7B v0.3, Nemo, Small 2409, Mixtral): `[TOOL_CALLS][{"name": ...,
  "arguments": {...}, "id": "a1b2c3d4e"}, ...]` — one JSON list (or object) of calls.
- v11 and later (Small 3.x, Devstral, Magistral, Ministral 3): `[TOOL_CALLS]name[ARGS]{...}`,
  one `[TOOL_CALLS]` per call; Mistral Small 3.2 adds an id: `name[CALL_ID]a1b2c3d4e[ARGS]{...}`.

Magistral reasons in `[THINK]` … `[/THINK]` (the 2506 release wrote `<think>` … `</think>`).
`</s>` is not dropped: it is HTML strikethrough too. Ids are returned when the model wrote them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import regex

from .._calls import call_from_object, calls_from_value
from .._json import loads_lenient
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, JsonValue
from .llama3_json import split_values

__all__ = [
    "CALLS",
    "DROP",
    "NAME",
    "REASONING",
    "TEMPLATE_HINTS",
    "UNTAGGED",
    "parse_region",
    "render",
]

NAME = "mistral"
REASONING = (("[THINK]", "[/THINK]"), ("<think>", "</think>"))
DROP: tuple[str, ...] = ()
# `after_name`: decoded without control tokens, v11 calls lose their [ARGS] (`[TOOL_CALLS]add{...}`).
# `separator`: pre-v11 objects are sometimes written one after another, comma-joined, unbracketed.
CALLS = (CallSyntax("[TOOL_CALLS]", JsonValue(after=("[ARGS]",), after_name=True, separator=",")),)
UNTAGGED = frozenset({"json"})
TEMPLATE_HINTS = ("[TOOL_CALLS]", "[AVAILABLE_TOOLS]")

_ARGS = "[ARGS]"
_CALL_ID = "[CALL_ID]"
_NAME = regex.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_CALL_ID_VALUE = regex.compile(r"[A-Za-z0-9_\-]+")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls after one `[TOOL_CALLS]`: a JSON call list/object (pre-v11) or
    `name[ARGS]{...}` / `name[CALL_ID]id[ARGS]{...}` (v11+). Raises `CallSyntaxError` otherwise."""
    text = body.strip()
    if text.startswith(("{", "[")) and not text.startswith(_ARGS):
        if text.startswith("{") and len(_comma_joined(text)) > 1:
            text = f"[{text}]"  # `{a}, {b}`: the objects of a list whose brackets were left out
        return _json_calls(text, tools)
    if _ARGS in body:
        return [_named_call(body)]
    # Decoded without control tokens, v11 calls lose their [ARGS]: `[TOOL_CALLS]name{...}`.
    return [_named_call_without_args(body)]


def _json_calls(text: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """A pre-v11 call object or list. In a list, an entry that is not a call is returned as a
    `CallSyntaxError` carrying its raw text, so the calls beside it are kept."""
    try:
        value = loads_lenient(text)
    except ValueError as exc:
        raise CallSyntaxError(f"not a JSON call list: {exc}") from None
    if not isinstance(value, list) or not value:
        return [_with_id(calls_from_value(value, tools, untagged=False)[0], value)]
    entries: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
    texts = _entry_texts(text, len(entries))
    items: list[ToolCall | CallSyntaxError] = []
    for entry, raw in zip(entries, texts, strict=True):
        try:
            items.append(_with_id(call_from_object(entry, tools, untagged=False), entry))
        except CallSyntaxError as exc:
            items.append(CallSyntaxError(str(exc), raw))
    if not any(isinstance(item, ToolCall) for item in items):
        raise CallSyntaxError(str(items[0]))
    return items


def _comma_joined(text: str) -> list[str]:
    """The values of `text` cut at the commas outside strings and brackets (one if it is one)."""
    try:
        return split_values(text, ",")
    except CallSyntaxError:
        return [text]


def _with_id(call: ToolCall, entry: Any) -> ToolCall:
    """Mistral ids sit beside "name"; keep them when the shared reader did not."""
    call_id = entry.get("id") if isinstance(entry, dict) else None
    if call.id is None and isinstance(call_id, str):
        return dataclasses.replace(call, id=call_id)
    return call


def _entry_texts(text: str, count: int) -> list[str]:
    """The raw text of each of the `count` entries of the JSON list `text` (cut at the commas
    outside strings and brackets), or each entry re-encoded when the cut does not agree."""
    inner = text.strip()[1:-1]
    try:
        pieces = split_values(inner, ",")
    except CallSyntaxError:
        pieces = []
    if len(pieces) == count:
        return pieces
    return [json.dumps(entry, ensure_ascii=False) for entry in loads_lenient(text)]


def _named_call(body: str) -> ToolCall:
    head, args_marker, arguments_text = body.partition(_ARGS)
    if not args_marker:
        raise CallSyntaxError("expected name[ARGS]{...} after [TOOL_CALLS]")
    name_text, id_marker, id_text = head.partition(_CALL_ID)
    name = name_text.strip()
    if not _NAME.fullmatch(name):
        raise CallSyntaxError(f"not a tool name: {name[:80]!r}")
    call_id: str | None = None
    if id_marker:
        call_id = id_text.strip()
        if not _CALL_ID_VALUE.fullmatch(call_id):
            raise CallSyntaxError(f"not a call id: {call_id[:80]!r}")
    try:
        arguments = loads_lenient(arguments_text)
    except ValueError as exc:
        raise CallSyntaxError(f"{name}: arguments are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError(f"{name}: arguments must be a JSON object")
    return ToolCall(name=name, arguments=arguments, id=call_id)


def _named_call_without_args(text: str) -> ToolCall:
    name_match = _NAME.match(text.lstrip())
    if name_match is None:
        raise CallSyntaxError("expected a tool name after [TOOL_CALLS]")
    name = name_match.group()
    arguments_text = text.lstrip()[name_match.end() :]
    if not arguments_text.lstrip().startswith("{"):
        raise CallSyntaxError(f"{name}: expected name{{...}} or name[ARGS]{{...}}")
    try:
        arguments = loads_lenient(arguments_text)
    except ValueError as exc:
        raise CallSyntaxError(f"{name}: arguments are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError(f"{name}: arguments must be a JSON object")
    return ToolCall(name=name, arguments=arguments)


def render(calls: Sequence[ToolCall]) -> str:
    """v11+ style, one `[TOOL_CALLS]name[ARGS]{...}` per call (`[CALL_ID]` when a call has an id)."""
    parts: list[str] = []
    for call in calls:
        call_id = f"{_CALL_ID}{call.id}" if call.id is not None else ""
        parts.append(
            f"[TOOL_CALLS]{call.name}{call_id}{_ARGS}{json.dumps(call.arguments, ensure_ascii=False)}"
        )
    return "".join(parts)
