"""Calls written as one JSON list of `{"name", "arguments"}` objects after a marker, the shape
Granite 3.x (`<|tool_call|>[...]`), Llama-Nemotron (`<TOOLCALL>[...]</TOOLCALL>`), Phi-4-mini
(`functools[...]`) and xLAM-2 (the bare list) share. The list is read in any of the object
shapes every JSON format reads (`parsers/_calls.py`); one object alone counts as a list of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._calls import call_list_json, calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax

__all__ = ["JsonCallList"]


@dataclass(frozen=True)
class JsonCallList:
    """The list after `opener` (and before `closer`, if the family writes one). With
    `may_be_empty`, an empty list is the model saying it calls nothing (no call, no problem; its
    syntax declares `may_hold_no_call`)."""

    opener: str
    closer: str = ""
    may_be_empty: bool = False

    def parse_region(self, syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
        """The calls of one list (or one call object). Raises `CallSyntaxError` for anything else."""
        if self.may_be_empty and "".join(body.split()) == "[]":
            return []
        return calls_from_json(body.strip(), tools)

    def render(self, calls: Sequence[ToolCall]) -> str:
        """The text the family's chat template writes for `calls`."""
        return f"{self.opener}{call_list_json(calls)}{self.closer}"
