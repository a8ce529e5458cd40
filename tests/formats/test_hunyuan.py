"""Hunyuan-A13B calls: `<tool_calls>[{"name": ..., "arguments": {...}}]</tool_calls>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import hunyuan

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [
    tool("get_weather", city={"type": "string"}, metric={"type": "string"}),
    {  # (`tool()` takes the tool's name as `name`: this one has an argument of that name)
        "type": "function",
        "function": {
            "name": "register_user",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            },
        },
    },
    tool("get_time"),
]
BEIJING = ToolCall("get_weather", {"city": "Beijing"})
# As the chat template writes a turn's calls (and its agent guide shows the model's answer).
TEMPLATE_CALLS = (
    '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Beijing"}}, '
    '{"name": "get_weather", "arguments": {"city": "ShangHai"}}]</tool_calls>'
)


@pytest.mark.parametrize("format", ["hunyuan", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALLS + "<|eos|>", None, None, [BEIJING, ToolCall("get_weather", {"city": "ShangHai"})]),
        (  # vLLM's hunyuan_a13b tests: nested, null, booleans and lists in the arguments
            '<tool_calls>[{"name": "register_user", "arguments": {"name": "John Doe", "age": 37, '
            '"address": {"city": "San Francisco"}, "role": null, "passed_test": true, "aliases": ["J"]}}]'
            "</tool_calls>",
            None,
            None,
            [
                ToolCall(
                    "register_user",
                    {
                        "name": "John Doe",
                        "age": 37,
                        "address": {"city": "San Francisco"},
                        "role": None,
                        "passed_test": True,
                        "aliases": ["J"],
                    },
                )
            ],
        ),
        (  # text before the list is content; text after it too (vLLM drops it)
            'I will call the tool now. <tool_calls>[{"name": "get_weather", "arguments": {"city": "Beijing"}}]'
            "</tool_calls>\nThank you!",
            "I will call the tool now. \nThank you!",
            None,
            [BEIJING],
        ),
        (  # empty arguments first and last: neither clobbers the other
            '<tool_calls>[{"name": "get_time", "arguments": {}}, {"name": "register_user", "arguments": '
            '{"age": 42}}, {"name": "get_time", "arguments": {}}]</tool_calls>',
            None,
            None,
            [ToolCall("get_time", {}), ToolCall("register_user", {"age": 42}), ToolCall("get_time", {})],
        ),
        (  # non-ASCII arguments stay as written; the closer inside a string is part of the value
            '<tool_calls>[{"name": "get_weather", "arguments": {"city": "北京</tool_calls>"}}]</tool_calls>',
            None,
            None,
            [ToolCall("get_weather", {"city": "北京</tool_calls>"})],
        ),
        (  # the model stopped before </tool_calls>, the list complete
            '<think>\nThe user asks.\n</think>\n<tool_calls>[{"name": "get_time", "arguments": {}}]',
            None,
            "\nThe user asks.\n",
            [ToolCall("get_time", {})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


# The agent guide's answer: reasoning, then the call list inside <answer>.
ANSWER = '<think>\n...\n</think>\n<answer>\n<tool_calls>[{"name": "get_weather", "arguments": {"city": "Shenzhen"}}]</tool_calls>\n</answer>'
SHENZHEN = [ToolCall("get_weather", {"city": "Shenzhen"})]


def test_the_answer_wrapper_is_markup_where_the_format_is_named() -> None:
    assert_reads(ANSWER, "hunyuan", TOOLS, None, "\n...\n", SHENZHEN)
    prose = "<think>\nA greeting.\n</think>\n<answer>\n助手：Hello!\n</answer><|eos|>"
    assert_reads(prose, "hunyuan", TOOLS, "\n\n助手：Hello!\n", "\nA greeting.\n", [])


def test_under_auto_the_answer_wrapper_is_text() -> None:
    # Other models' answers use <answer> tags too: only a named format drops them.
    assert_reads(ANSWER, "auto", TOOLS, "\n<answer>\n\n</answer>", "\n...\n", SHENZHEN)


@pytest.mark.parametrize("format", ["hunyuan", "auto"])
@pytest.mark.parametrize(
    "text",
    [
        "A tool_call is how a model asks for a function; <tool_calls> is not a tag here.",
        "Wrap them: <tool_calls>[...]</tool_calls>.",
    ],
)
def test_a_tag_that_holds_no_call_is_text(format: str, text: str) -> None:
    assert_reads(text, format, TOOLS, text, None, [])


@pytest.mark.parametrize(
    "body",
    ["", "[]", "get_time()", '[{"arguments": {}}]', '[{"name": "f"}] trailing', '{"name": "f"'],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        hunyuan.parse_region(hunyuan.CALLS[0], body, tool_set(TOOLS))


def test_a_call_list_that_cannot_be_read_stays_unread() -> None:
    text = '<tool_calls>[{"name": "get_weather", "arguments": {"city": Beijing}}]</tool_calls>'
    assert_unread(text, "hunyuan", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        '<tool_calls>[{"name": "get_time", "arguments": {}}]',
        '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Bei',
        '<tool_calls>[{"name"',
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "hunyuan", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template_not_as_xlam() -> None:
    # Hunyuan-A13B's template (excerpt): its instruction also shows xLAM's call list.
    template = (
        "{% set content_tmp = '你是一位函数组合专家。...如果你决定调用任何函数，你必须将其格式化为"
        '<tool_calls>[{"name": "func_name1", "arguments": {"argument1": "value1", "argument2": "value2"}},...]'
        "</tool_calls>。' %}{% set content = content + '<tool_calls>' + ns.tool_calls + '</tool_calls>' %}"
    )
    assert detect_format(template) == "hunyuan"


def test_the_answer_prefix_stays_text() -> None:
    # The template asks for `助手：` before prose; vLLM strips it, we keep what the model wrote.
    assert parse("助手：It is sunny.", format="hunyuan").content == "助手：It is sunny."


CASE = FormatCase(
    name="hunyuan",
    soup=marked(
        [
            "<tool_calls>",
            "</tool_calls>",
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<|eos|>",
            '{"name": "f", "arguments": {}}',
            "[",
            "]",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(hunyuan.render)},
    read_without_tools=("template",),
    round_trips=100,
)
