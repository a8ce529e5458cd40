"""NVIDIA Llama-Nemotron calls: `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>`.

The Llama-3.1/3.3-Nemotron (Nano, Super, Ultra) chat templates write every call of a turn as
one JSON list between the tags::

    <TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>

Reasoning is `<think>...</think>`; `<|eot_id|>` ends the turn. `</TOOLCALL>` written inside a
JSON string (an argument about this format) does not end the list.
"""

from __future__ import annotations

from ._marked_json import MarkedJson

NAME = "nemotron"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eot_id|>",)
_CALLS = MarkedJson("<TOOLCALL>", "</TOOLCALL>")
CALLS = (_CALLS.syntax(),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<TOOLCALL>",)

parse_region = _CALLS.parse_region
render = _CALLS.render
