"""Llama 3.1 / 3.2 / 3.3 JSON tool calls.

The model writes `{"name": "get_weather", "parameters": {"city": "Paris"}}` (some write
`"arguments"`), bare or after `<|python_tag|>`, several calls separated by `;`, and ends its turn
with `<|eot_id|>` (or `<|eom_id|>` when it expects a tool result). The bare object is the
engine's untagged-JSON habit (counted only for declared tools); this module reads what follows
`<|python_tag|>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import calls_from_value
from .._json import loads_lenient
from .._pythonic import parse_pythonic_calls
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, JsonValue

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

NAME = "llama3_json"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|eot_id|>", "<|eom_id|>")
CALLS = (CallSyntax("<|python_tag|>", JsonValue(separator=";", after_name=True)),)
UNTAGGED = frozenset({"json"})
# The Llama 3.1-3.3 templates: the tag, and the JSON call instruction of the 3.2 template.
_BUILTIN_SUFFIX = ".call"
TEMPLATE_HINTS = ("<|python_tag|>", "<|eom_id|>", "dictionary of argument name and its value")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls after `<|python_tag|>`: one JSON call object, a list of them, or several
    separated by `;`; a pythonic list `[f(a=1)]` (Llama 3.2's pythonic template writes it after
    the same tag); or Llama 3.1's built-in tool call `brave_search.call(query="...")`, which is
    the tool `brave_search` (a single `f(a=1)` is read too). Raises `CallSyntaxError` for
    anything else: code that is not a keyword call with literal arguments stays text."""
    calls: list[ToolCall] = []
    for piece in split_values(body, ";"):
        if not piece.startswith(("{", "[")):
            calls.append(_builtin_call(piece))
            continue
        try:
            value = loads_lenient(piece)
        except ValueError as exc:
            if piece.startswith("["):
                # Llama 3.2's pythonic template uses the same tag: `<|python_tag|>[f(a=1)]`.
                calls.extend(ToolCall(name, arguments) for name, arguments in parse_pythonic_calls(piece))
                continue
            raise CallSyntaxError(f"not a JSON call: {exc}") from None
        calls.extend(calls_from_value(value, tools, untagged=False))
    return calls


def _builtin_call(piece: str) -> ToolCall:
    """`NAME.call(key="value", ...)`, how Llama 3.1's template writes a built-in tool's call (the
    tool is NAME), or a single pythonic `NAME(key=value)` call."""
    (name, arguments), *more = parse_pythonic_calls(piece)
    if more:
        raise CallSyntaxError("expected JSON calls or one NAME.call(...)")
    return ToolCall(name.removesuffix(_BUILTIN_SUFFIX), arguments)


def split_values(body: str, separator: str) -> list[str]:
    """`body` cut at each `separator` outside strings and brackets (quotes of both kinds).

    Raises `CallSyntaxError` when a piece is empty: `a;;b` or a dangling `;` is not a call list.
    """
    pieces: list[str] = []
    depth = 0
    quote = ""
    escaped = False
    start = 0
    for i, ch in enumerate(body):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == separator and depth == 0:
            pieces.append(body[start:i])
            start = i + 1
    pieces.append(body[start:])
    stripped = [piece.strip() for piece in pieces]
    if not all(stripped):
        raise CallSyntaxError("empty call between separators")
    return stripped


def render(calls: Sequence[ToolCall]) -> str:
    """`<|python_tag|>` then the calls as `{"name": ..., "parameters": ...}` joined by `; `."""
    objects = (
        json.dumps({"name": call.name, "parameters": call.arguments}, ensure_ascii=False) for call in calls
    )
    return "<|python_tag|>" + "; ".join(objects)
