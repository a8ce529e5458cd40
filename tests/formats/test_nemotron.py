"""Llama-Nemotron calls: `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import nemotron

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_weather", city={"type": "string"}), tool("get_time")]
PARIS = ToolCall("get_weather", {"city": "Paris"})


@pytest.mark.parametrize("format", ["nemotron", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (
            '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>',
            None,
            None,
            [PARIS],
        ),
        (
            '<think>Weather.</think>\n<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
            '{"name": "get_time", "arguments": {}}]</TOOLCALL><|eot_id|>',
            None,
            "Weather.",
            [PARIS, ToolCall("get_time", {})],
        ),
        (  # `parameters` for `arguments`, as vLLM's llama_nemotron_json tests write it
            'Sure. <TOOLCALL>[{"name": "get_weather", "parameters": {"city": "Paris"}}]</TOOLCALL>',
            "Sure. ",
            None,
            [PARIS],
        ),
        (  # the closer inside a JSON string stays part of the value
            '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "</TOOLCALL>"}}]</TOOLCALL>',
            None,
            None,
            [ToolCall("get_weather", {"city": "</TOOLCALL>"})],
        ),
        (  # the model stopped before </TOOLCALL>, the list complete
            '<TOOLCALL>[{"name": "get_time", "arguments": {}}]',
            None,
            None,
            [ToolCall("get_time", {})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize(
    "body", ["", "[{}]", "get_time()", '[{"arguments": {}}]', '[{"name": "f"}] trailing']
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        nemotron.parse_region(nemotron.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize("format", ["nemotron", "auto"])
@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("<TOOLCALL>[]</TOOLCALL>", None),
        ("No tool fits.<TOOLCALL>[ ]</TOOLCALL><|eot_id|>", "No tool fits."),
        ("<TOOLCALL>[]", None),  # the model stopped before </TOOLCALL>
    ],
)
def test_an_empty_list_is_no_call_and_no_problem(format: str, text: str, content: str | None) -> None:
    # The model saying it calls nothing: not a malformed call, and no call is made up.
    assert_reads(text, format, TOOLS, content, None, [])


def test_malformed_stays_unread() -> None:
    assert_unread("<TOOLCALL>[get_time()]</TOOLCALL>", "nemotron", TOOLS, MalformedCall)


@pytest.mark.parametrize("text", ['<TOOLCALL>[{"name": "get_time", "arguments": {}}]', "<TOOLCALL>[{"])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "nemotron", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # Llama-Nemotron's template (excerpt).
    template = (
        "{%- if message.get('tool_calls') is not none -%}<TOOLCALL>[{%- for call in message.tool_calls -%}"
    )
    assert detect_format(template) == "nemotron"


CASE = FormatCase(
    name="nemotron",
    soup=marked(
        ["<TOOLCALL>", "</TOOLCALL>", "<think>", "</think>", '{"name": "f", "arguments": {}}', "[", "]"]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(nemotron.render)},
    read_without_tools=("template",),
    round_trips=100,
    regions_without_calls=True,  # `[]`: no call
)
