"""Tencent Hunyuan-A13B calls: `<tool_calls>` around a JSON list of `{"name", "arguments"}` objects.

With tools, the chat template's system prompt asks for every call of a turn in one list, and
writes past calls the same way::

    <tool_calls>[{"name": "get_weather", "arguments": {"city": "Beijing"}}]</tool_calls>

The model reasons in `<think>...</think>` and wraps its answer in `<answer>...</answer>`
(`<think>\\n\\n</think>\\n` in the prompt turns reasoning off); `<|eos|>` ends the turn. Where
the format is named, `<answer>` and `</answer>` are dropped; under `auto` they are ordinary
text, since other models' answers use such tags too. So is a `<tool_calls>` whose body is no
call list ("the <tool_calls> tag"), unless it holds a call object's `"name"` (then it is a call
that could not be read). The template also asks for prose answers to begin with `助手：`
("Assistant:"); that word stays in the answer, as Hunyuan wrote it.
"""

from __future__ import annotations

from ._marked_json import MarkedJson

NAME = "hunyuan"
REASONING = (("<think>", "</think>"),)
DROP = ("<|eos|>",)
DROP_WHEN_NAMED = ("<answer>", "</answer>")
_CALLS = MarkedJson("<tool_calls>", "</tool_calls>")
CALLS = (_CALLS.syntax(plain_tag=True, markup_if_holds=('"name"',)),)
UNTAGGED: frozenset[str] = frozenset()
# The template's own instruction, which writes the list it expects (Jamba's has no such line).
TEMPLATE_HINTS = ('<tool_calls>[{"name": "func_name1"',)

parse_region = _CALLS.parse_region
render = _CALLS.render
