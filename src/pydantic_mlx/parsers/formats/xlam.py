"""Salesforce xLAM-2 calls: a bare JSON list of `{"name", "arguments"}` objects, the whole answer.

xLAM-2's chat template asks for calls as the answer's only text::

    [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]

There is no marker, so the list is read under the untagged-JSON rules every JSON format shares
(`parsers/_untagged.py`): it must name declared tools and stand alone (a ```json fence around it
is read too). `<think>...</think>` reasoning may come first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._calls import call_list_json, calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "xlam"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eot_id|>", "<|im_end|>")
CALLS: tuple[CallSyntax, ...] = ()
UNTAGGED = frozenset({"json"})
# xLAM-2's template (Llama- and Qwen-based alike) shows the list it expects in its instructions.
TEMPLATE_HINTS = ('[{"name": "func_name1", "arguments": {"argument1": "value1"',)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """Never called for markers (xLAM has none); reads a JSON call list all the same."""
    return calls_from_json(body.strip(), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The answer xLAM-2 writes for `calls`."""
    return call_list_json(calls)
