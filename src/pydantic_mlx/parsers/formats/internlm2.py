"""InternLM2 / 2.5 / 3 and Intern-S1 calls: one JSON call object per `<|action_start|><|plugin|>`.

InternLM's chat format declares tools in a `<|im_start|>system name=<|plugin|>` message and
writes each call as an action to the plugin, after any text::

    I'll look it up.<|action_start|><|plugin|>
    {"name": "get_weather", "parameters": {"city": "Shanghai"}}<|action_end|>

`"arguments"` is read as well as `"parameters"` (vLLM's template writes it), and a space between
the two opening tokens too (SGLang writes one). An action to `<|interpreter|>`, InternLM's
built-in code interpreter, is no function call: it is reported, not read. Intern-S1 (and -mini)
writes the same actions after reasoning in `<think>...</think>` (its default thinking mode, read
as vLLM's and LMDeploy's intern-s1 parsers read it). `<|im_end|>` ends the turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._tools import ToolSet
from .._types import ToolCall
from ._marked_json import MarkedJson
from ._syntax import CallSyntax, Closers

NAME = "internlm2"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>",)
_START, _END = "<|action_start|>", "<|action_end|>"
_PLUGIN = tuple(MarkedJson(f"{_START}{space}<|plugin|>", _END) for space in ("", " "))
# The interpreter's body is code, where a `"` opens no JSON string.
_INTERPRETER = tuple(CallSyntax(f"{_START}{space}<|interpreter|>", Closers((_END,))) for space in ("", " "))
CALLS = (*(action.syntax() for action in _PLUGIN), *_INTERPRETER)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|action_start|>", "name=<|plugin|>")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The call in one plugin action; none in an action to the code interpreter."""
    if syntax in _INTERPRETER:
        return []
    return MarkedJson.parse_region(syntax, body, tools)


def render(calls: Sequence[ToolCall]) -> str:
    """One plugin action per call, as InternLM's chat format writes them."""
    actions = (json.dumps({"name": c.name, "parameters": c.arguments}, ensure_ascii=False) for c in calls)
    return "".join(f"{_PLUGIN[0].opener}\n{action}{_END}" for action in actions)
