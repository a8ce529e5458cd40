"""Meituan LongCat-Flash calls: `<longcat_tool_call>` around a JSON call object or GLM-style pairs.

LongCat-Flash-Chat's template writes a JSON call object in each block; LongCat-Flash-Thinking
and -Lite write the name, then each argument in key and value tags, as GLM does::

    <longcat_tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </longcat_tool_call>

    <longcat_tool_call>get_weather
    <longcat_arg_key>city</longcat_arg_key>
    <longcat_arg_value>Paris</longcat_arg_value>
    </longcat_tool_call>

Both are read as `_arg_pairs.py` says (pair values typed by the tool's schema). Reasoning is
`<longcat_think>...</longcat_think>`. A value may mention `</longcat_tool_call>`: only its own
closer ends it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._types import ToolCall
from ._arg_pairs import ArgPairCalls

NAME = "longcat"
REASONING = (("<longcat_think>", "</longcat_think>"),)
DROP: tuple[str, ...] = ()
_CALLS = ArgPairCalls(
    ("<longcat_tool_call>", "</longcat_tool_call>"),
    ("<longcat_arg_key>", "</longcat_arg_key>"),
    ("<longcat_arg_value>", "</longcat_arg_value>"),
)
CALLS = (_CALLS.syntax(),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<longcat_tool_call>",)
parse_region = _CALLS.parse_region
render = _CALLS.render  # LongCat-Flash-Thinking's pairs


def render_json(calls: Sequence[ToolCall]) -> str:
    """The blocks LongCat-Flash-Chat's template writes for `calls`: a JSON object in each."""
    return "\n".join(
        f"{_CALLS.block[0]}\n"
        + json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
        + f"\n{_CALLS.block[1]}"
        for call in calls
    )
