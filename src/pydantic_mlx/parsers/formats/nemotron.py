"""NVIDIA Llama-Nemotron calls: `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>`.

The Llama-3.1/3.3-Nemotron (Nano, Super, Ultra) chat templates write every call of a turn as
one JSON list between the tags::

    <TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>

Reasoning is `<think>...</think>`; `<|eot_id|>` ends the turn. `</TOOLCALL>` written inside a
JSON string (an argument about this format) does not end the list. An empty list,
`<TOOLCALL>[]</TOOLCALL>`, is the model saying it calls nothing: no call, and no problem either.
"""

from __future__ import annotations

import dataclasses

from .._tools import ToolSet
from .._types import ToolCall
from ._marked_json import MarkedJson
from ._syntax import CallSyntax

NAME = "nemotron"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eot_id|>",)
_CALLS = MarkedJson("<TOOLCALL>", "</TOOLCALL>")
CALLS = (dataclasses.replace(_CALLS.syntax(), may_hold_no_call=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<TOOLCALL>",)

render = _CALLS.render


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls between `<TOOLCALL>` and `</TOOLCALL>`, or none for an empty list."""
    if "".join(body.split()) == "[]":
        return []
    return _CALLS.parse_region(syntax, body, tools)
