"""Sber GigaChat calls: GigaChat 3's `function call` message, GigaChat 3.5's GCML invokes.

GigaChat 3 ends its answer's message and writes the call as a message of the `function call`
role, one JSON object (one call a turn); GigaChat 3.1 writes the object after one
`<|function_call|>` token instead::

    Let me look.<|message_sep|>

    function call<|role_sep|>
    {"name": "get_weather", "arguments": {"city": "Paris"}}

    Let me look.<|function_call|>{"name": "get_weather", "arguments": {"city": "Paris"}}

GigaChat 3.5 writes every call of a turn in one GCML block, DeepSeek's DSML shape in its own
namespace (`_invokes.py`; `string="true"` values are text, others JSON)::

    <｜GCML｜tool_calls>
    <｜GCML｜invoke name="get_weather">
    <｜GCML｜parameter name="city" string="true">Paris</｜GCML｜parameter>
    </｜GCML｜invoke>
    </｜GCML｜tool_calls>

Reasoning (3.5) is `<think>...</think>`; the generation prompt may open it, and a GCML block
written there ends it. `<|message_sep|>` ends a message: it is markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import calls_from_json
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._invokes import MarkupInvokes, at_least_one_call
from ._syntax import CallSyntax, Closers, JsonValue

NAME = "gigachat"
REASONING = (("<think>", "</think>"),)
# `</s>`, the end of the turn, is not dropped here: it is HTML's strikethrough too (the model's
# end-of-sequence token never reaches the text; `MLXModel` drops the tokenizer's control tokens).
DROP = ("<|message_sep|>",)
_FUNCTION_CALL = "function call<|role_sep|>"
_FUNCTION_CALL_31 = "<|function_call|>"
_INVOKES = MarkupInvokes(("｜GCML｜",))
_BLOCK = ("<｜GCML｜tool_calls>", "</｜GCML｜tool_calls>")
CALLS = (
    CallSyntax(_FUNCTION_CALL, JsonValue()),
    CallSyntax(_FUNCTION_CALL_31, JsonValue()),
    CallSyntax(
        _BLOCK[0],
        Closers((_BLOCK[1],), quotes=_INVOKES.value_quotes, complete_at=_INVOKES.tags("invoke")[1]),
        ends_prompt_reasoning=True,
    ),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|role_sep|>", _FUNCTION_CALL_31)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The call of a `function call` message or after `<|function_call|>` (one JSON call object),
    or the invokes of a GCML block (a bad one returned in its place)."""
    if syntax.opener != _BLOCK[0]:
        return list(calls_from_json(body.strip(), tools))
    return at_least_one_call(_INVOKES.read_block(body, tools))


def render(calls: Sequence[ToolCall]) -> str:
    """The GCML block GigaChat 3.5's chat template writes for `calls`."""
    return _INVOKES.render(calls, "tool_calls")


def render_function_calls(calls: Sequence[ToolCall]) -> str:
    """GigaChat 3's `function call` message for each of `calls` (its template writes one)."""
    return "".join(
        f"{_FUNCTION_CALL}\n" + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        for c in calls
    )
