"""NVIDIA Llama-Nemotron calls: `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>`.

The Llama-3.1/3.3-Nemotron (Nano, Super, Ultra) chat templates write every call of a turn as
one JSON list between the tags::

    <TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>

Reasoning is `<think>...</think>`; `<|eot_id|>` ends the turn. `</TOOLCALL>` written inside a
JSON string (an argument about this format) does not end the list. An empty list,
`<TOOLCALL>[]</TOOLCALL>`, is the model saying it calls nothing: no call, and no problem either.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._calls import call_list_json, calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "nemotron"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eot_id|>",)
_LIST_END = Closers(("</TOOLCALL>",), quotes=(Quote('"', ('"',), backslash=True),))
CALLS = (CallSyntax("<TOOLCALL>", _LIST_END, may_hold_no_call=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<TOOLCALL>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls between `<TOOLCALL>` and `</TOOLCALL>`: a JSON list of call objects (or one), or
    none for an empty list."""
    if "".join(body.split()) == "[]":
        return []
    return calls_from_json(body.strip(), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The text Llama-Nemotron's chat template writes for `calls`."""
    return f"<TOOLCALL>{call_list_json(calls)}</TOOLCALL>"
