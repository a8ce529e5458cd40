"""Calls that write every argument in its own tags, the shape MiniMax-M2, Seed-OSS and MiniCPM5
share:

    <invoke name="get_weather">                      <function=get_weather>
    <parameter name="city">Paris</parameter>         <parameter=city>Paris</parameter>
    </invoke>                                        </function>

    <function name="get_weather"><param name="city">Paris</param></function>

A function element holds parameter elements and nothing else but spaces; a call region holds
function elements and spaces, or is one function element itself (MiniCPM5 writes no block). A
value is bare text that ends at its own `</parameter>` (so it may mention the region's closer);
one newline on each side of it is the layout multi-line values are written in, not part of the
value. A family may write a value as a CDATA section instead (`<![CDATA[...]]>`), read verbatim.
Values are typed by the tool's schema (`parsers/_schema.py`): the templates write a string as is
and anything else as JSON (or as Python writes it, which the schema reading accepts too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._scan import skip_space
from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = ["TaggedCalls", "json_text", "strip_layout_newlines"]

# Characters no function or parameter name written inside a tag holds.
_NOT_IN_NAME = frozenset("<>\"'{}\n\r\t ")
_CDATA = ("<![CDATA[", "]]>")


def json_text(value: Any) -> str:
    """A value as the templates write it: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class TaggedCalls:
    """One family's tags: `block` opens and closes a call region (`None`: each function element
    is a region); each other pair is the text before and after a name."""

    block: tuple[str, str] | None
    function: tuple[str, str]
    function_close: str
    parameter: tuple[str, str]
    parameter_close: str = "</parameter>"
    block_per_call: bool = False
    """The template writes each call in a block of its own (else all of a turn's in one)."""
    cdata: bool = False
    """A value may be a CDATA section, which the template writes around a value holding `<`,
    `&` or a newline (and only there: a region's closer inside a value is inside one)."""
    layout: str = "\n"
    """What the template writes between two tags of a call."""
    write_value: Callable[[Any], str] = json_text
    """A non-string value's text, as the template writes it."""

    def syntax(self, **options: Any) -> CallSyntax:
        """The region a block (or a function element) opens. The generation prompt may have
        opened reasoning, which a call written there ends (`CallSyntax.ends_prompt_reasoning`);
        `options` are more `CallSyntax` fields."""
        opener, closer = self.block or (self.function[0], self.function_close)
        end = Closers((closer,), quotes=(self.value,))
        return CallSyntax(opener, end, ends_prompt_reasoning=True, **options)

    @property
    def value(self) -> Quote:
        """Where a region's closer written inside a value does not end the region."""
        if self.cdata:
            return Quote(_CDATA[0], (_CDATA[1] + self.parameter_close,))
        return Quote(self.parameter[0], (self.parameter_close,))

    def parse_region(self, syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
        """The calls in a block's `body`: one or more function elements (or the one element
        whose opener and closer were the region's). Raises `CallSyntaxError` for anything else
        (text between them, a tag left open)."""
        if self.block is None:
            element = self.function[0] + body + self.function_close
            call, end = self._function(element, 0, tools)
            if end != len(element):
                raise CallSyntaxError(f"text after a call's {self.function_close!r}")
            return [call]
        calls: list[ToolCall] = []
        pos = skip_space(body, 0)
        while pos < len(body):
            call, pos = self._function(body, pos, tools)
            calls.append(call)
            pos = skip_space(body, pos)
        if not calls:
            raise CallSyntaxError(f"a call block without {self.function[0]}")
        return calls

    def render(self, calls: Sequence[ToolCall]) -> str:
        """The blocks (or bare function elements) the template writes for `calls`, one a line."""
        if self.block is None:
            return "\n".join(map(self._element, calls))
        block = self.block
        groups = [[call] for call in calls] if self.block_per_call else [list(calls)]
        return "\n".join("\n".join([block[0], *map(self._element, group), block[1]]) for group in groups)

    def _element(self, call: ToolCall) -> str:
        """One function element, laid out as the template writes it. A string value that starts
        or ends with a newline is written between newlines, which reading removes; where values
        may be CDATA, one holding `<`, `&` or a newline is written as CDATA instead."""
        tags = [f"{self.function[0]}{call.name}{self.function[1]}"]
        for key, value in call.arguments.items():
            text = value if isinstance(value, str) else self.write_value(value)
            if self.cdata and any(c in text for c in "<&\n"):
                text = f"{_CDATA[0]}{text}{_CDATA[1]}"
            elif text.startswith("\n") or text.endswith("\n"):
                text = f"\n{text}\n"
            tags.append(f"{self.parameter[0]}{key}{self.parameter[1]}{text}{self.parameter_close}")
        tags.append(self.function_close)
        return self.layout.join(tags)

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
            if key in raw:  # which value did the model mean? It must say again
                raise CallSyntaxError(f"parameter {key!r} given twice")
            raw[key], pos = self._value(body, pos)
            if pos < 0:
                raise CallSyntaxError(f"parameter {key!r} of {name!r} never closed")

    def _value(self, body: str, pos: int) -> tuple[str, int]:
        """The value that starts at `pos`, and the offset after its closer (-1: never closed)."""
        if self.cdata and body.startswith(_CDATA[0], pos):
            start, closer = pos + len(_CDATA[0]), _CDATA[1] + self.parameter_close
            end = body.find(closer, start)
            return body[start:end], (end + len(closer) if end >= 0 else -1)
        end = body.find(self.parameter_close, pos)
        return strip_layout_newlines(body[pos:end]), (end + len(self.parameter_close) if end >= 0 else -1)


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
