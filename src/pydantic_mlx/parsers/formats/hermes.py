"""Hermes / Qwen2.5 / Qwen3: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

Also read inside the tags: a JSON list of calls, several objects in one block, a ```json fence
around the JSON, and the object shapes small models use (`"parameters"`, `"args"`,
`{"function": ...}`, arguments as a JSON string). Untagged fenced or bare JSON calls are
accepted too (`UNTAGGED`), under the stricter untagged rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import calls_from_value
from .._json import ValueScanner, loads_lenient
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "hermes"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>", "<|endoftext|>")
# `</tool_call>` inside a JSON string (a file about tool calls) does not end the block.
# A `<tool_call>` inside a reasoning block the prompt opened ends it (Qwen3.5/3.6 templates).
CALLS = (
    CallSyntax(
        "<tool_call>",
        Closers(("</tool_call>",), quotes=(Quote('"', ('"',), backslash=True),)),
        ends_prompt_reasoning=True,
    ),
)
UNTAGGED = frozenset({"json"})
TEMPLATE_HINTS = ("<tool_call>",)

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in one `<tool_call>` body. A body that repeats the opener (the model forgot a
    closer between two calls) holds several calls."""
    try:
        values = _json_values(_unfence(body.strip()))
    except CallSyntaxError:
        if _OPEN not in body and _CLOSE not in body:
            raise
        values = None
    if values:
        return [call for value in values for call in calls_from_value(value, tools, untagged=False)]
    calls: list[ToolCall] = []
    for piece in body.replace(_CLOSE, _OPEN).split(_OPEN):
        if piece.strip():
            for value in _json_values(_unfence(piece.strip())):
                calls.extend(calls_from_value(value, tools, untagged=False))
    if not calls:
        raise CallSyntaxError("empty <tool_call> block")
    return calls


def render(calls: Sequence[ToolCall]) -> str:
    """`<tool_call>` blocks, one per call, the way Qwen2.5's chat template writes them."""
    return "\n".join(
        f"{_OPEN}\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n{_CLOSE}"
        for c in calls
    )


def _unfence(text: str) -> str:
    """The inside of a ``` fence written inside the tags, or `text` unchanged."""
    if not text.startswith("```"):
        return text
    newline = text.find("\n")
    if newline < 0:
        raise CallSyntaxError("a ``` fence inside <tool_call> holds nothing")
    inner = text[newline + 1 :]
    # The closing fence may be missing, like the closing tag; the JSON must still be complete.
    return (inner[:-3] if inner.endswith("```") else inner).strip()


def _json_values(text: str) -> list[object]:
    """Every JSON value in `text`, which must hold nothing else (values may be separated by
    whitespace, commas or semicolons)."""
    values: list[object] = []
    i = 0
    while i < len(text):
        if text[i] in " \t\r\n,;":
            i += 1
            continue
        if text[i] not in "{[":
            raise CallSyntaxError(f"expected a JSON call object, got {text[i : i + 20]!r}")
        scanner = ValueScanner(i)
        end = scanner.scan(text)
        if end is None:
            raise CallSyntaxError("unbalanced brackets in the call JSON")
        try:
            values.append(loads_lenient(text[i:end]))
        except ValueError as exc:
            raise CallSyntaxError(f"invalid call JSON: {exc}") from None
        i = end
    return values
