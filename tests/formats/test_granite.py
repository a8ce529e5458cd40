"""Granite 3.x calls: `<|tool_call|>[{"name": ..., "arguments": {...}}]`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import granite

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_current_weather", city={"type": "string"}), tool("get_time")]
WEATHER = ToolCall("get_current_weather", {"city": "Dallas"})


@pytest.mark.parametrize("format", ["granite", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        # As Granite 3.x's template writes calls (vLLM's granite parser tests use this shape).
        ('<|tool_call|>[{"name": "get_current_weather", "arguments": {"city": "Dallas"}}]', None, [WEATHER]),
        (
            '<|tool_call|>[{"name": "get_current_weather", "arguments": {"city": "Dallas"}}, '
            '{"name": "get_time", "arguments": {}}]<|end_of_text|>',
            None,
            [WEATHER, ToolCall("get_time", {})],
        ),
        (  # one object instead of a list, and text before the tag
            'Let me check.<|tool_call|>{"name": "get_current_weather", "arguments": {"city": "Dallas"}}',
            "Let me check.",
            [WEATHER],
        ),
        (  # text after the list is content
            '<|tool_call|>[{"name": "get_time", "arguments": {}}]\nDone.',
            "\nDone.",
            [ToolCall("get_time", {})],
        ),
        (  # arguments as a JSON string, as some outputs write them
            '<|tool_call|>[{"name": "get_current_weather", "arguments": "{\\"city\\": \\"Dallas\\"}"}]',
            None,
            [WEATHER],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize(
    "body", ["", "[]", "get_time()", '[{"arguments": {}}]', '["get_time"]', '{"name": "f"']
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        granite.parse_region(granite.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread('<|tool_call|>[{"arguments": {}}]', "granite", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text", ['<|tool_call|>[{"name": "get_time", "arguments": {}}', '<|tool_call|>[{"name": "get_ti']
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "granite", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # Granite 3.x's template (excerpt).
    template = (
        "{%- elif message['role'] == 'assistant_tool_call' %}{{- '<|start_of_role|>assistant<|end_of_role|>"
        "<|tool_call|>' + message['content'] + '<|end_of_text|>\n' }}"
    )
    assert detect_format(template) == "granite"


CASE = FormatCase(
    name="granite",
    soup=marked(["<|tool_call|>", "<|end_of_text|>", '[{"name": "f", "arguments": {}}]', "[", "{", "]"]),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(granite.render)},
    read_without_tools=("template",),
    round_trips=100,
)
