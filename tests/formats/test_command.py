"""Cohere Command calls: `<|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}]<|END_ACTION|>`."""

from __future__ import annotations

import dataclasses

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import command

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, tool

TOOLS = [tool("foo", query={"type": "string"}), tool("bar", x={"type": "integer"})]
FOO = ToolCall("foo", {"query": "query1"}, id="0")
# As Command A's chat template writes an action.
ACTION = (
    '<|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "foo", "parameters": {"query": "query1"}}\n'
    "]<|END_ACTION|>"
)


@pytest.mark.parametrize("format", ["command", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (  # vLLM's cmd3 single_tool_call
            "<|START_THINKING|> i will call foo with query1<|END_THINKING|>" + ACTION,
            None,
            " i will call foo with query1",
            [FOO],
        ),
        (  # vLLM's multiple_tool_calls
            "<|START_THINKING|>first I think about foo<|END_THINKING|><|START_ACTION|>\n[\n"
            '    {"tool_call_id": "0", "tool_name": "foo", "parameters": {"query": "query1"}},\n'
            '    {"tool_call_id": "1", "tool_name": "bar", "parameters": {"x": 42}}\n]\n<|END_ACTION|>'
            "<|END_OF_TURN_TOKEN|>",
            None,
            "first I think about foo",
            [FOO, ToolCall("bar", {"x": 42}, id="1")],
        ),
        (  # the answer in its response block; grounding spans are kept as written
            "<|START_THINKING|>This is a rainbow<|END_THINKING|>\n"
            "<|START_RESPONSE|>foo <co>bar</co: 0:[1,2],1:[3,4]><|END_RESPONSE|><|END_OF_TURN_TOKEN|>",
            "\nfoo <co>bar</co: 0:[1,2],1:[3,4]>",
            "This is a rainbow",
            [],
        ),
        ("<|START_THINKING|>just think, no response<|END_THINKING|>", None, "just think, no response", []),
        (  # one object without the list around it (the SMG Cohere parser's example)
            '<|START_ACTION|>\n{"tool_name": "bar", "parameters": {"x": 1}}\n<|END_ACTION|>',
            None,
            None,
            [ToolCall("bar", {"x": 1})],
        ),
        (  # the block's closer inside a JSON string stays in the value
            '<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "foo", "parameters": '
            '{"query": "<|END_ACTION|>"}}]<|END_ACTION|>',
            None,
            None,
            [ToolCall("foo", {"query": "<|END_ACTION|>"}, id="0")],
        ),
        (  # Command R's tool-use answer
            'Action: ```json\n[\n    {\n        "tool_name": "foo",\n        "parameters": {\n'
            '            "query": "penguins"\n        }\n    }\n]\n```',
            None,
            None,
            [ToolCall("foo", {"query": "penguins"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["command", "auto"])
def test_the_prompt_opened_plan_ends_at_the_action(format: str) -> None:
    # The generation prompt may end with `<|START_THINKING|>` (llama.cpp: thinking forced open).
    text = "I will look it up." + ACTION
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("I will look it up.", None, [FOO])
    text = "I will look it up.<|END_THINKING|>" + ACTION
    assert parse(text, format=format, tools=TOOLS, in_reasoning=True).calls == [FOO]


def test_no_untagged_call_is_read_inside_the_response() -> None:
    text = '<|START_RESPONSE|>Write {"name": "foo", "arguments": {"query": "x"}} to call it.<|END_RESPONSE|>'
    result = parse(text, format="auto", tools=TOOLS)
    assert (result.content, result.calls) == (
        'Write {"name": "foo", "arguments": {"query": "x"}} to call it.',
        [],
    )


@pytest.mark.parametrize(
    "text",
    [
        "I'd say: Action: ```json is how Command R starts a call.",
        "Action: ```json is how Command R starts a call.",
    ],
)
def test_action_prose_is_text(text: str) -> None:
    result = parse(text, format="command", tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (text, [], [])


@pytest.mark.parametrize(
    "body", ["", "[]", "foo(query='x')", '[{"parameters": {}}]', '[{"tool_name": "foo"}] x']
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        command.parse_region(command.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread("<|START_ACTION|>[foo(query='x')]<|END_ACTION|>", "command", TOOLS, MalformedCall)


@pytest.mark.parametrize("text", [ACTION.removesuffix("<|END_ACTION|>"), ACTION[:40]])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "command", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    "template",
    [
        # Command R7B / Command A (excerpt).
        "1. Action: write <|START_ACTION|> followed by a list of JSON-formatted tool calls",
        # Command R's tool-use template (excerpt).
        "Write 'Action:' followed by a json-formatted list of actions that you want to perform",
    ],
)
def test_detected_from_the_chat_template(template: str) -> None:
    assert detect_format(template) == "command"


def _numbered(calls: list[ToolCall]) -> tuple[str, list[ToolCall]]:
    """The template numbers calls from 0; parsing reads those ids back."""
    return command.render(calls), [dataclasses.replace(c, id=str(i)) for i, c in enumerate(calls)]


CASE = FormatCase(
    name="command",
    soup=marked(
        [
            "<|START_ACTION|>",
            "<|END_ACTION|>",
            "<|START_THINKING|>",
            "<|END_THINKING|>",
            "<|START_RESPONSE|>",
            "<|END_RESPONSE|>",
            "Action: ```json",
            "```",
            '{"tool_name": "foo", "parameters": {}}',
            "[",
            "]",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": _numbered},
    read_without_tools=("template",),
    round_trips=100,
)
