"""Salesforce xLAM-2 calls: a bare JSON list of `{"name", "arguments"}` objects, the whole answer.

xLAM-2's chat template asks for calls as the answer's only text::

    [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]

There is no marker, so the list is read under the untagged-JSON rules every JSON format shares
(`parsers/_untagged.py`): it must name declared tools and stand alone (a ```json fence around it
is read too). `<think>...</think>` reasoning may come first.
"""

from __future__ import annotations

from ._json_list import JsonCallList
from ._syntax import CallSyntax

__all__ = ["CALLS", "DROP", "NAME", "REASONING", "TEMPLATE_HINTS", "UNTAGGED", "parse_region", "render"]

NAME = "xlam"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eot_id|>", "<|im_end|>")
_LIST = JsonCallList("")
CALLS: tuple[CallSyntax, ...] = ()
UNTAGGED = frozenset({"json"})
# xLAM-2's template (Llama- and Qwen-based alike) shows the list it expects in its instructions.
TEMPLATE_HINTS = ('[{"name": "func_name1", "arguments": {"argument1": "value1"',)

parse_region = _LIST.parse_region
render = _LIST.render
