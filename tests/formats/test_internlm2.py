"""InternLM2 calls: `<|action_start|><|plugin|>\\n{"name": ..., "parameters": {...}}<|action_end|>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, UnknownTool, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import internlm2

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_current_weather", location={"type": "string"}), tool("get_time")]
SHANGHAI = ToolCall("get_current_weather", {"location": "Shanghai"})


@pytest.mark.parametrize("format", ["internlm2", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (  # InternLM's chat-format guide
            "Sure, I will search for the weather of Shanghai.<|action_start|><|plugin|>\n"
            '{"name": "get_current_weather", "parameters": {"location": "Shanghai"}}<|action_end|><|im_end|>',
            "Sure, I will search for the weather of Shanghai.",
            [SHANGHAI],
        ),
        (  # vLLM's template writes `arguments`
            '<|action_start|><|plugin|>\n{"name": "get_current_weather", "arguments": {"location": "Shanghai"}}'
            "<|action_end|>",
            None,
            [SHANGHAI],
        ),
        (  # SGLang writes a space between the opening tokens
            '<|action_start|> <|plugin|>\n{"name": "get_time", "parameters": {}}<|action_end|>',
            None,
            [ToolCall("get_time", {})],
        ),
        (  # several actions in one turn, each its own block
            '<|action_start|><|plugin|>\n{"name": "get_time", "parameters": {}}<|action_end|>'
            '<|action_start|><|plugin|>\n{"name": "get_current_weather", "parameters": {"location": "Shanghai"}}'
            "<|action_end|>",
            None,
            [ToolCall("get_time", {}), SHANGHAI],
        ),
        (  # the closer inside a string is part of the value
            '<|action_start|><|plugin|>\n{"name": "get_current_weather", "parameters": '
            '{"location": "<|action_end|>"}}<|action_end|>',
            None,
            [ToolCall("get_current_weather", {"location": "<|action_end|>"})],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize("format", ["internlm2", "auto"])
def test_the_code_interpreter_is_reported_not_read(format: str) -> None:
    text = 'Let me compute.<|action_start|><|interpreter|>\nprint("a" * 3)<|action_end|>'
    result = parse(text, format=format, tools=TOOLS)
    assert (result.content, result.calls) == ("Let me compute.", [])
    assert [type(e) for e in result.errors] == [UnknownTool]


@pytest.mark.parametrize("body", ["", "get_time()", '{"parameters": {}}', '[{"name": "f"}] x', "{"])
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        internlm2.parse_region(internlm2.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    text = '<|action_start|><|plugin|>\n{"name": "get_time", "parameters": {}<|action_end|>'
    assert_unread(text, "internlm2", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    ['<|action_start|><|plugin|>\n{"name": "get_time", "parameters": {}}', "<|action_start|><|plugin|>\n{"],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "internlm2", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # vLLM's InternLM2 tool template (excerpt).
    template = (
        '{{- "<|im_start|>system name=<|plugin|>\\n[" }}{%- for tool_call in message.tool_calls %}'
        '{{- "<|action_start|><|plugin|>\\n" }}'
    )
    assert detect_format(template) == "internlm2"


@pytest.mark.parametrize("format", ["internlm2", "auto"])
def test_intern_s1_reasons_in_think_then_acts(format: str) -> None:
    # Intern-S1's thinking mode (vLLM's and LMDeploy's intern-s1 parsers): `<think>` reasoning, then
    # actions as InternLM2 writes them; vLLM's tests show the spaced opener and text after the actions.
    text = (
        "<think>\nThe user wants Tokyo's weather, then the time.\n</think>\n\n"
        '<|action_start|> <|plugin|>\n{"name": "get_current_weather", "parameters": {"location": "Tokyo"}}\n'
        '<|action_end|>\n<|action_start|><|plugin|>{"name": "get_time", "parameters": {}}<|action_end|>\n'
        "Visible answer.<|im_end|>"
    )
    calls = [ToolCall("get_current_weather", {"location": "Tokyo"}), ToolCall("get_time", {})]
    reasoning = "\nThe user wants Tokyo's weather, then the time.\n"
    assert_reads(text, format, TOOLS, "\n\n\n\nVisible answer.", reasoning, calls)


CASE = FormatCase(
    name="internlm2",
    soup=marked(
        [
            "<|action_start|>",
            "<|plugin|>",
            "<|interpreter|>",
            "<|action_end|>",
            "<|im_end|>",
            "<think>",
            "</think>",
            '{"name": "f", "parameters": {}}',
            " ",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(internlm2.render)},
    read_without_tools=("template",),
    round_trips=100,
    regions_without_calls=True,  # an action to the code interpreter
)
