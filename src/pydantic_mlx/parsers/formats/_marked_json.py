"""Calls written as JSON after a marker, the shape Granite, Nemotron, Phi-4-mini, Hunyuan, Jamba
and InternLM2 share:

    <TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>

The body is one call object or a list of them, in any of the shapes `parsers/_calls.py` reads
(`"arguments"` or `"parameters"`, arguments as a JSON string, ...). With a closer, the closer
written inside a JSON string (an argument about the format) does not end the region; without
one, the region ends where the JSON value does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .._calls import calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import JSON_STRING, CallSyntax, Closers, JsonValue

__all__ = ["MarkedJson"]


@dataclass(frozen=True)
class MarkedJson:
    """One family's markers around its JSON calls, and how its template lays out a call list."""

    opener: str
    closer: str | None = None
    layout: tuple[str, str, str] = ("[", ", ", "]")
    """The text that opens a call list, separates its calls and closes it."""

    def syntax(
        self, *, at_start: bool = False, plain_tag: bool = False, markup_if_holds: tuple[str, ...] = ()
    ) -> CallSyntax:
        """The `CallSyntax` of a region these markers open (see `CallSyntax` for the options)."""
        end = JsonValue() if self.closer is None else Closers((self.closer,), quotes=(JSON_STRING,))
        return CallSyntax(
            self.opener, end, at_start=at_start, plain_tag=plain_tag, markup_if_holds=markup_if_holds
        )

    @staticmethod
    def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
        """The calls in one region's body: a JSON call object or a list of them (the same for
        every family, so `auto` tries it once where two share an opener)."""
        return calls_from_json(body.strip(), tools)

    def render(self, calls: Sequence[ToolCall]) -> str:
        """Every call in one list between the markers, laid out as the template writes it."""
        objects = (json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) for c in calls)
        start, separator, end = self.layout
        return f"{self.opener}{start}{separator.join(objects)}{end}{self.closer or ''}"
