"""Jamba calls: `<tool_calls>[\\n    {"name": ..., "arguments": {...}}\\n]</tool_calls>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import jamba

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [
    tool("get_current_weather", city={"type": "string"}, state={"type": "string"}, unit={"type": "string"}),
    tool("get_time"),
]
DALLAS = ToolCall("get_current_weather", {"city": "Dallas", "state": "TX", "unit": "fahrenheit"})
ORLANDO = ToolCall("get_current_weather", {"city": "Orlando", "state": "FL", "unit": "fahrenheit"})
# As Jamba Mini 1.7's template writes a turn's calls after `<|bom|><|assistant|> ` and the content.
TEMPLATE_CALLS = (
    '<tool_calls>[\n    {"name": "get_current_weather", "arguments": {"city": "Dallas", "state": "TX", '
    '"unit": "fahrenheit"}},\n    {"name": "get_current_weather", "arguments": {"city": "Orlando", '
    '"state": "FL", "unit": "fahrenheit"}}\n]</tool_calls>'
)


@pytest.mark.parametrize("format", ["jamba", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (" " + TEMPLATE_CALLS + "<|eom|>", None, [DALLAS, ORLANDO]),
        (  # vLLM's jamba tests: content before the list
            ' Sure! let me call the tool for you.<tool_calls>[\n    {"name": "get_current_weather", '
            '"arguments": {"city": "Dallas", "state": "TX", "unit": "fahrenheit"}}\n]</tool_calls>',
            " Sure! let me call the tool for you.",
            [DALLAS],
        ),
        (  # compact, as vLLM's single-delta test streams it
            '<tool_calls>[{"name": "get_time", "arguments": {}}]</tool_calls>',
            None,
            [ToolCall("get_time", {})],
        ),
        (  # the closer inside a string is part of the value
            '<tool_calls>[{"name": "get_current_weather", "arguments": {"city": "]</tool_calls>"}}]</tool_calls>',
            None,
            [ToolCall("get_current_weather", {"city": "]</tool_calls>"})],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize("format", ["jamba", "auto"])
def test_a_tag_that_holds_no_call_is_text(format: str) -> None:
    text = "Jamba lists its calls in <tool_calls> tags."
    assert_reads(text, format, TOOLS, text, None, [])


@pytest.mark.parametrize("body", ["", "[]", "[\n]", '[\n    {"arguments": {}}\n]', '{"name": "f"} x'])
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        jamba.parse_region(jamba.CALLS[0], body, tool_set(TOOLS))


def test_a_call_list_that_cannot_be_read_stays_unread() -> None:
    text = '<tool_calls>[\n    {"name": "get_time", "arguments": {}\n]</tool_calls>'
    assert_unread(text, "jamba", TOOLS, MalformedCall)


@pytest.mark.parametrize("text", [TEMPLATE_CALLS.removesuffix("</tool_calls>"), TEMPLATE_CALLS[:40]])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "jamba", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template_not_as_hunyuan() -> None:
    # Jamba Mini 1.7's template (excerpt).
    template = (
        '{% set tool_definitions_prefix = "<tool_definitions>" %}\n'
        '{% set tool_calls_prefix = "<tool_calls>" %}\n{% set tool_calls_suffix = "</tool_calls>" %}'
    )
    assert detect_format(template) == "jamba"


CASE = FormatCase(
    name="jamba",
    soup=marked(
        ["<tool_calls>", "</tool_calls>", "<|eom|>", '{"name": "f", "arguments": {}}', "[\n    ", ",\n", "]"]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(jamba.render)},
    read_without_tools=("template",),
    round_trips=100,
)
