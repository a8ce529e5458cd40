"""Cohere Command calls: `<|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}]<|END_ACTION|>`.

Command A and Command R7B (and Cohere's later models) plan in a thinking block, then write every
call of a step as one JSON list in an action block, or answer in a response block::

    <|START_THINKING|>I will look up the weather.<|END_THINKING|><|START_ACTION|>[
        {"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"city": "Paris"}}
    ]<|END_ACTION|>

    <|START_RESPONSE|>It is sunny in Paris.<|END_RESPONSE|>

`tool_call_id` is the call's id. The response block (`<|START_TEXT|>` in Cohere's newest
models) is the answer: its markers are dropped and no untagged call is read inside it.
`<|END_OF_TURN_TOKEN|>` ends the turn.

The older Command R (and R+) answers a tool-use prompt where its answer begins with
`Action: ```json` and the same list (`"tool_name"`, `"parameters"`) in the fence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import calls_from_json
from .._tools import ToolSet
from .._types import ToolCall
from ._syntax import CallSyntax, Closers, JsonValue, Quote

NAME = "command"
REASONING = (("<|START_THINKING|>", "<|END_THINKING|>"),)
_ANSWER_OPENERS, _ANSWER_CLOSERS = (
    ("<|START_RESPONSE|>", "<|START_TEXT|>"),
    ("<|END_RESPONSE|>", "<|END_TEXT|>"),
)
DROP = ("<|END_OF_TURN_TOKEN|>", *_ANSWER_OPENERS, *_ANSWER_CLOSERS)
ANSWER = (_ANSWER_OPENERS, _ANSWER_CLOSERS)
_ACTION = ("<|START_ACTION|>", "<|END_ACTION|>")
_FENCE = "```"
CALLS = (
    # A prompt ending in `<|START_THINKING|>` opens the plan (llama.cpp's "thinking forced open");
    # an action written there ends it.
    CallSyntax(
        _ACTION[0],
        Closers((_ACTION[1],), quotes=(Quote('"', ('"',), backslash=True),)),
        ends_prompt_reasoning=True,
    ),
    # Command R: `Action: ```json` where the answer begins, the list, and the fence's end.
    CallSyntax(f"Action: {_FENCE}json", JsonValue(), at_start=True, trailer=_FENCE),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|START_ACTION|>", "Write 'Action:' followed by a json-formatted list")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in an action block (or after Command R's `Action:`): a JSON list of call objects
    (or one object), `tool_call_id` read as each call's id."""
    return calls_from_json(body.strip(), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The action block Command A's chat template writes for `calls` (ids numbered from 0 where a
    call has none)."""
    items = (
        json.dumps(
            {
                "tool_call_id": call.id if call.id is not None else str(index),
                "tool_name": call.name,
                "parameters": call.arguments,
            },
            ensure_ascii=False,
        )
        for index, call in enumerate(calls)
    )
    return f"{_ACTION[0]}[\n    " + ",\n    ".join(items) + f"\n]{_ACTION[1]}"
