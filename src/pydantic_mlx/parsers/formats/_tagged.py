"""Calls that write every argument in its own tags, the shape MiniMax-M2 and Seed-OSS share:

    <invoke name="get_weather">                      <function=get_weather>
    <parameter name="city">Paris</parameter>         <parameter=city>Paris</parameter>
    </invoke>                                        </function>

A function element holds parameter elements and nothing else but spaces; a call region holds
function elements and spaces. A value is bare text that ends at its own `</parameter>` (so it may
mention the region's closer); one newline on each side of it is the layout multi-line values are
written in, not part of the value. Values are typed by the tool's schema (`parsers/_schema.py`):
the templates write a string as is and anything else as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import Quote

__all__ = ["TaggedCalls", "render_blocks", "skip_space", "strip_layout_newlines"]

# Characters no function or parameter name written inside a tag holds.
_NOT_IN_NAME = frozenset("<>\"'{}\n\r\t ")


@dataclass(frozen=True)
class TaggedCalls:
    """One family's tags: each pair is the text before and after a name."""

    function: tuple[str, str]
    function_close: str
    parameter: tuple[str, str]
    parameter_close: str = "</parameter>"

    @property
    def value(self) -> Quote:
        """Where a region's closer written inside a value does not end the region."""
        return Quote(self.parameter[0], (self.parameter_close,))

    def read(self, body: str, tools: ToolSet) -> list[ToolCall]:
        """The calls in a region's `body`: one or more function elements. Raises
        `CallSyntaxError` for anything else (text between them, a tag left open)."""
        calls: list[ToolCall] = []
        pos = skip_space(body, 0)
        while pos < len(body):
            call, pos = self._function(body, pos, tools)
            calls.append(call)
            pos = skip_space(body, pos)
        if not calls:
            raise CallSyntaxError(f"a call block without {self.function[0]}")
        return calls

    def render(self, call: ToolCall) -> str:
        """One function element, tags one per line, as the templates write them. A string value
        that starts or ends with a newline is written between newlines, which reading removes."""
        lines = [f"{self.function[0]}{call.name}{self.function[1]}"]
        for key, value in call.arguments.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if text.startswith("\n") or text.endswith("\n"):
                text = f"\n{text}\n"
            lines.append(f"{self.parameter[0]}{key}{self.parameter[1]}{text}{self.parameter_close}")
        lines.append(self.function_close)
        return "\n".join(lines)

    def _function(self, body: str, pos: int, tools: ToolSet) -> tuple[ToolCall, int]:
        """The function element at `pos`, and the offset after it."""
        if not body.startswith(self.function[0], pos):
            raise CallSyntaxError(
                f"expected {self.function[0]} in a call block, got {body[pos : pos + 20]!r}"
            )
        name, pos = _name(body, pos + len(self.function[0]), self.function[1])
        raw: dict[str, str] = {}
        while True:
            pos = skip_space(body, pos)
            if body.startswith(self.function_close, pos):
                return ToolCall(name, coerce_arguments(name, raw, tools)), pos + len(self.function_close)
            if not body.startswith(self.parameter[0], pos):
                raise CallSyntaxError(f"expected {self.parameter[0]} or {self.function_close} in {name!r}")
            key, pos = _name(body, pos + len(self.parameter[0]), self.parameter[1])
            end = body.find(self.parameter_close, pos)
            if end < 0:
                raise CallSyntaxError(f"parameter {key!r} of {name!r} never closed")
            if key in raw:  # which value did the model mean? It must say again
                raise CallSyntaxError(f"parameter {key!r} given twice")
            raw[key] = strip_layout_newlines(body[pos:end])
            pos = end + len(self.parameter_close)


def _name(body: str, pos: int, end_marker: str) -> tuple[str, int]:
    """The name from `pos` to `end_marker`, and the offset after that marker."""
    end = body.find(end_marker, pos)
    if end < 0:
        raise CallSyntaxError(f"a name without its closing {end_marker!r}")
    name = body[pos:end].strip(" ")
    if not name or any(c in _NOT_IN_NAME for c in name):
        raise CallSyntaxError(f"not a name: {name[:40]!r}")
    return name, end + len(end_marker)


def strip_layout_newlines(value: str) -> str:
    """Remove one newline on each side of a value (the layout the templates write), and only that."""
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def skip_space(text: str, pos: int) -> int:
    """The offset of the first non-space character of `text` from `pos` (or its end)."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def render_blocks(calls: Sequence[ToolCall], tags: TaggedCalls, block: tuple[str, str]) -> str:
    """Every call in one block, `block` being its opener and closer."""
    return "\n".join([block[0], *(tags.render(c) for c in calls), block[1]])
