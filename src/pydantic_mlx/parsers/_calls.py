"""Turning a decoded JSON object into a `ToolCall`, whatever shape the model chose.

Models write `{"name", "arguments"}`, `{"name", "parameters"}`, `{"name", "args"}`,
`{"function": NAME, ...}`, OpenAI's `{"type": "function", "function": {"name", "arguments"}}`,
and give arguments as a JSON *string*. All of these are one call. Untagged objects (no markers
around them) are held to a stricter shape, because a JSON example in an answer must stay text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._json import loads_lenient
from ._tools import ToolSet
from ._types import CallSyntaxError, ToolCall

__all__ = [
    "UNTAGGED_FIRST_KEYS",
    "arguments_from_json",
    "call_from_object",
    "call_list_json",
    "calls_from_json",
    "calls_from_value",
]

_NAME_KEYS = ("name", "function", "tool", "tool_name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_ID_KEYS = ("id", "tool_call_id")  # Cohere's Command models write `tool_call_id`
_ENVELOPE_KEYS = frozenset({*_ID_KEYS, "type", "call_id"})
UNTAGGED_FIRST_KEYS = frozenset({*_NAME_KEYS, *_ENVELOPE_KEYS})
"""Keys an untagged call object may start with (the engine's early look-ahead uses these)."""


def calls_from_value(value: Any, tools: ToolSet, *, untagged: bool) -> list[ToolCall]:
    """The calls in a decoded JSON value: one call object or a non-empty list of them."""
    if isinstance(value, list):
        if not value:
            raise CallSyntaxError("an empty list is not a call")
        return [call_from_object(item, tools, untagged=untagged) for item in value]
    return [call_from_object(value, tools, untagged=untagged)]


def calls_from_json(text: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in `text`, one JSON call object or a non-empty list of them, that a format's
    markers delimit. Raises `CallSyntaxError` when `text` is not that."""
    try:
        value = loads_lenient(text)
    except ValueError as exc:
        raise CallSyntaxError(f"not a JSON call list: {exc}") from None
    return calls_from_value(value, tools, untagged=False)


def call_list_json(calls: Sequence[ToolCall]) -> str:
    """`calls` as the JSON list `[{"name": ..., "arguments": {...}}, ...]` templates write."""
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


def arguments_from_json(text: str, name: str) -> dict[str, Any]:
    """A call's arguments written as one JSON object (`name` says whose, in the error). Raises
    `CallSyntaxError` for text that is not one."""
    try:
        value = loads_lenient(text)
    except ValueError as exc:
        raise CallSyntaxError(f"arguments of {name[:60]!r} are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CallSyntaxError(f"arguments of {name[:60]!r} must be a JSON object")
    return value


def call_from_object(obj: Any, tools: ToolSet, *, untagged: bool) -> ToolCall:
    """Read one call object. Raises `CallSyntaxError` when `obj` is not a call.

    With `untagged=True` the object must contain only call keys (name, arguments and envelope
    keys such as `id`/`type`) and name a tool that `tools` allows.
    """
    if not isinstance(obj, Mapping):
        raise CallSyntaxError(f"a call must be a JSON object, got {type(obj).__name__}")
    fields: Mapping[str, Any] = obj
    call_id = _call_id(fields)
    inner = fields.get("function")
    if isinstance(inner, Mapping):
        # OpenAI shape: {"type": "function", "id": ..., "function": {"name", "arguments"}}
        extra = set(fields) - {"function"} - _ENVELOPE_KEYS
        if untagged and extra:
            raise CallSyntaxError(f"unexpected keys {sorted(extra)} around an OpenAI-shaped call")
        fields = inner
        call_id = call_id or _call_id(fields)

    name_key = next((k for k in _NAME_KEYS if isinstance(fields.get(k), str)), None)
    if name_key is None:
        raise CallSyntaxError("a call needs a string 'name'")
    name: str = fields[name_key]
    if not name:
        raise CallSyntaxError("a call needs a non-empty 'name'")

    arg_keys = [k for k in _ARGUMENT_KEYS if k in fields]
    if len(arg_keys) > 1:
        raise CallSyntaxError(f"ambiguous arguments: both {arg_keys[0]!r} and {arg_keys[1]!r} given")
    rest = set(fields) - {name_key} - set(arg_keys) - _ENVELOPE_KEYS
    if untagged:
        if rest:
            raise CallSyntaxError(f"unexpected keys {sorted(rest)} in an untagged call object")
        if not tools.allows(name):
            raise CallSyntaxError(f"{name!r} is not a declared tool")
    if arg_keys:
        # Keys beside the arguments (a copied "required" list, a "reasoning" note) are not
        # arguments; in a tagged call they don't stop the call either.
        arguments = _arguments(fields[arg_keys[0]])
    else:
        # A tagged call with its arguments written at the top level: {"name": "f", "path": "a"}.
        arguments = {k: v for k, v in fields.items() if k in rest}
    return ToolCall(name=name, arguments=arguments, id=call_id)


def _call_id(fields: Mapping[str, Any]) -> str | None:
    return next((value for key in _ID_KEYS if isinstance(value := fields.get(key), str)), None)


def _arguments(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = loads_lenient(value)
        except ValueError as exc:
            raise CallSyntaxError(f"arguments string is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise CallSyntaxError(f"arguments must be a JSON object, got {type(value).__name__}")
    return dict(value)
