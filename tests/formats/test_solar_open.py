"""Upstage Solar Open calls: `<|tool_call:start|>NAME` then `<|tool_arg:start|>K<|tool_arg:value|>V<|tool_arg:end|>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import solar_open

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}, options={"type": "object"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As the chat template's instruction lays a call out, one argument a line.
TEMPLATE_CALL = (
    "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_arg:value|>Paris<|tool_arg:end|>\n"
    "<|tool_arg:start|>days<|tool_arg:value|>3<|tool_arg:end|>\n<|tool_call:end|>"
)


@pytest.mark.parametrize("format", ["solar_open", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL + "<|im:end|>", None, None, [PARIS]),
        ("<|think:start|>Weather.<|think:end|>" + TEMPLATE_CALL, None, "Weather.", [PARIS]),
        ("Let me check.\n" + TEMPLATE_CALL, "Let me check.\n", None, [PARIS]),
        (  # calls one after another; a call without arguments
            TEMPLATE_CALL + "\n<|tool_call:start|>get_time\n<|tool_call:end|>",
            None,
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        (  # a value keeps its spaces and may hold the call's closer; JSON typed by the schema
            "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_arg:value|>  a <|tool_call:end|> b"
            '<|tool_arg:end|>\n<|tool_arg:start|>options<|tool_arg:value|>{"unit": "c"}<|tool_arg:end|>\n'
            "<|tool_call:end|>",
            None,
            None,
            [ToolCall("get_weather", {"city": "  a <|tool_call:end|> b", "options": {"unit": "c"}})],
        ),
        (  # a string of digits stays a string where the schema says so
            "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_arg:value|>10115<|tool_arg:end|>\n"
            "<|tool_call:end|>",
            None,
            None,
            [ToolCall("get_weather", {"city": "10115"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["solar_open", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # At the `medium` and `high` efforts the generation prompt ends with `<|think:start|>`.
    text = "The user wants weather.\n" + TEMPLATE_CALL
    assert_reads(text, format, TOOLS, None, "The user wants weather.\n", [PARIS], in_reasoning=True)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get weather\n<|tool_call:end|>",
        "get_weather\n<|tool_arg:start|>city<|tool_call:end|>",  # a key without its value
        "get_weather\n<|tool_arg:start|>city<|tool_arg:value|>a<|tool_arg:start|>days<|tool_arg:value|>3"
        "<|tool_arg:end|>\n<|tool_call:end|>",  # a value left open before the next key
        "get_weather\n<|tool_arg:start|><|tool_arg:value|>Paris<|tool_arg:end|>\n<|tool_call:end|>",
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        solar_open.parse_region(solar_open.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    text = "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_call:end|>"
    assert_unread(text, "solar_open", TOOLS, MalformedCall)


@pytest.mark.parametrize("text", [TEMPLATE_CALL[:-20], TEMPLATE_CALL[:60], "<|tool_call:start|>get_wea"])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "solar_open", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # Solar Open2's tool instruction, as the ds4 server's renderer of its template writes it.
    template = (
        "## Tools\n- You may invoke one or more tools to assist with the user's query.\n\n### Available Tools\n"
        "<|tool:start|>{...}<|tool:end|>\n\n### Tool Call Instruction\n- If using a tool, any reasoning must "
        "strictly precede the call. Do not append any text after the tool call.\n- Each tool call MUST use this "
        "following format: <|tool_call:start|>{example-tool-name}\n<|tool_arg:start|>{example-key-name-1}"
        "<|tool_arg:value|>{example-value-1}<|tool_arg:end|>\n<|tool_call:end|>\n"
    )
    assert detect_format(template) == "solar_open"


CASE = FormatCase(
    name="solar_open",
    soup=soup(
        [
            "<|tool_call:start|>",
            "<|tool_call:end|>",
            "<|tool_arg:start|>",
            "<|tool_arg:value|>",
            "<|tool_arg:end|>",
            "<|think:start|>",
            "<|think:end|>",
            "<|im:end|>",
            "get_weather",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(solar_open.render)},
    joiner="\n",
)
