"""Apertus calls: `<|tools_prefix|>[{"NAME": {...}}]<|tools_suffix|>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import apertus

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [
    tool("get_weather", location={"type": "string"}),
    tool("get_time", location={"type": "string"}),
    tool("complex_function", nested={"type": "object"}, list={"type": "array"}),
]
LONDON = ToolCall("get_weather", {"location": "London"})


@pytest.mark.parametrize("format", ["apertus", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        ('<|tools_prefix|>[{"get_weather": {"location": "London"}}]<|tools_suffix|>', None, None, [LONDON]),
        (  # vLLM's test_text_before_tool_call
            'Let me check the weather for you. <|tools_prefix|>[{"get_weather": {"location": "Paris"}}]'
            "<|tools_suffix|>",
            "Let me check the weather for you. ",
            None,
            [ToolCall("get_weather", {"location": "Paris"})],
        ),
        (  # vLLM's test_multiple_tool_calls; SGLang keeps the text after the list
            '<|tools_prefix|>[{"get_weather": {"location": "London"}}, {"get_time": {"location": "London"}}]'
            "<|tools_suffix|>after",
            "after",
            None,
            [LONDON, ToolCall("get_time", {"location": "London"})],
        ),
        (  # vLLM's test_nested_arguments
            '<|tools_prefix|>[{"complex_function": {"nested": {"inner": "value"}, "list": ["a", "b"]}}]'
            "<|tools_suffix|>",
            None,
            None,
            [ToolCall("complex_function", {"nested": {"inner": "value"}, "list": ["a", "b"]})],
        ),
        (  # vLLM's test_missing_tool_suffix: a complete list still counts
            '<|tools_prefix|>[{"get_weather": {"location": "San Francisco"}}]',
            None,
            None,
            [ToolCall("get_weather", {"location": "San Francisco"})],
        ),
        (  # thinking, arguments left null (mlx-lm's parser), the end-of-turn token
            '<|inner_prefix|>Weather.<|inner_suffix|><|tools_prefix|>[{"get_time": null}]<|tools_suffix|>'
            "<|assistant_end|>",
            None,
            "Weather.",
            [ToolCall("get_time", {})],
        ),
        (  # the closer inside a JSON string stays in the value
            '<|tools_prefix|>[{"get_weather": {"location": "<|tools_suffix|>"}}]<|tools_suffix|>',
            None,
            None,
            [ToolCall("get_weather", {"location": "<|tools_suffix|>"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize(
    "body",
    ["", "[]", '[{"get_weather": {"location": "x"}, "get_time": {}}]', '[{"get_weather": "x"}]', "[1]"],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        apertus.parse_region(apertus.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread("<|tools_prefix|>[get_time()]<|tools_suffix|>", "apertus", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        '<|tools_prefix|>[{"get_weather": {"location": "London"}',  # vLLM repairs this one; never here
        '<|tools_prefix|>[{"get_weather": {"location": "London"}}]',
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "apertus", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    template = "{{- '<|tools_prefix|>' + tool_calls | tojson + '<|tools_suffix|>' }}"
    assert detect_format(template) == "apertus"


def test_a_cut_off_list_without_truncation_is_malformed() -> None:
    text = '<|tools_prefix|>[{"get_weather": {"location": "London"}'
    assert parse(text, format="apertus", tools=TOOLS).calls == []


CASE = FormatCase(
    name="apertus",
    soup=marked(
        [
            "<|tools_prefix|>",
            "<|tools_suffix|>",
            "<|inner_prefix|>",
            "<|inner_suffix|>",
            '{"f": {}}',
            '{"name": "f", "arguments": {}}',
            "[",
            "]",
            "null",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(apertus.render)},
    read_without_tools=("template",),
    round_trips=100,
)
