"""Hunyuan Hy3 calls: `<tool_calls>` around `<tool_call>NAME<tool_sep>` blocks of key/value pairs."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import hy3

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}, options={"type": "object"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As Hy3's chat template writes a call (released checkpoints: `:opensource` tokens).
TEMPLATE_CALL = (
    "<tool_calls:opensource>\n<tool_call:opensource>get_weather<tool_sep:opensource>\n"
    "<arg_key:opensource>city</arg_key:opensource>\n<arg_value:opensource>Paris</arg_value:opensource>\n"
    "<arg_key:opensource>days</arg_key:opensource>\n<arg_value:opensource>3</arg_value:opensource>\n"
    "</tool_call:opensource>\n</tool_calls:opensource>"
)
# Hy3-preview writes the same without the suffix.
PREVIEW_CALL = TEMPLATE_CALL.replace(":opensource", "")


@pytest.mark.parametrize("format", ["hy3", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL, None, None, [PARIS]),
        (PREVIEW_CALL, None, None, [PARIS]),
        (
            "<think:opensource>The user wants weather.</think:opensource>"
            + TEMPLATE_CALL
            + "<｜hy_eos:opensource｜>",
            None,
            "The user wants weather.",
            [PARIS],
        ),
        ("<think>Weather.</think>" + PREVIEW_CALL + "<｜hy_eos｜>", None, "Weather.", [PARIS]),
        ("Let me check.\n" + PREVIEW_CALL + "\nDone.", "Let me check.\n\nDone.", None, [PARIS]),
        (  # two blocks in one section, one without arguments
            "<tool_calls>\n<tool_call>get_weather<tool_sep>\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n"
            "</tool_call>\n<tool_call>get_time<tool_sep>\n</tool_call>\n</tool_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_time", {})],
        ),
        (  # values typed by the schema; a value may hold the block's and the section's closers
            "<tool_calls>\n<tool_call>get_weather<tool_sep>\n<arg_key>city</arg_key>\n"
            "<arg_value>a </tool_call></tool_calls> b</arg_value>\n<arg_key>options</arg_key>\n"
            '<arg_value>{"unit": "c"}</arg_value>\n</tool_call>\n</tool_calls>',
            None,
            None,
            [ToolCall("get_weather", {"city": "a </tool_call></tool_calls> b", "options": {"unit": "c"}})],
        ),
        (  # the compact layout (no newlines between tags)
            "<tool_calls><tool_call>get_weather<tool_sep><arg_key>city</arg_key><arg_value>Paris</arg_value>"
            "<arg_key>days</arg_key><arg_value>3</arg_value></tool_call></tool_calls>",
            None,
            None,
            [PARIS],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["hy3", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # In the `low`/`high` reasoning modes the generation prompt ends with `<think>`.
    text = "The user wants weather.\n" + PREVIEW_CALL
    assert_reads(text, format, TOOLS, None, "The user wants weather.\n", [PARIS], in_reasoning=True)


def test_hunyuan_a13b_lists_in_the_same_tag_stay_hunyuan_under_auto() -> None:
    text = '<tool_calls>[{"name": "get_time", "arguments": {}}]</tool_calls>'
    assert parse(text, format="auto", tools=TOOLS).calls == [ToolCall("get_time", {})]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "get_weather",
        "<tool_call>get_weather<tool_sep>\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n",  # never closed
        "<tool_call>get_weather<tool_sep><arg_key>city</arg_key></tool_call>",  # key without value
        "<tool_call>get weather<tool_sep></tool_call>",
        "<tool_call>get_time<tool_sep></tool_call> trailing words",
        '{"name": "get_time", "arguments": {}}',
    ],
)
def test_rejects_sections_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        hy3.parse_region(hy3.CALLS[1], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    text = (
        "<tool_calls>\n<tool_call>get_weather<tool_sep>\n<arg_key>city</arg_key>\n</tool_call>\n</tool_calls>"
    )
    assert_unread(text, "hy3", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text", [TEMPLATE_CALL[:-30], PREVIEW_CALL[:70], "<tool_calls:opensource>\n<tool_ca"]
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "hy3", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize("format", ["hy3", "auto"])
def test_the_tag_in_prose_stays_the_answer(format: str) -> None:
    text = "Wrap the calls in a <tool_calls> tag."
    result = parse(text, format=format, tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (text, [], [])


def test_detected_from_the_chat_template() -> None:
    # Hy3's template (excerpt): its tool instruction, tokens built with the checkpoint's suffix.
    template = (
        "{%- set tool_call_tk = '<tool_call{}>'.format(hy_tk) -%}{%- set tool_sep_tk = '<tool_sep{}>'.format(hy_tk) -%}"
        "{{- 'For function call returns, you should first print ' + tool_calls_tk + '\\n' }}"
        "{{- tool_call_tk + '{function-name}' + tool_sep_tk + '\\n' + arg_key_tk + '{arg-key-1}' }}"
    )
    assert detect_format(template) == "hy3"


SOUP = soup(
    [
        "<tool_calls>",
        "</tool_calls>",
        "<tool_call>",
        "</tool_call>",
        "<tool_sep>",
        "<arg_key>",
        "</arg_key>",
        "<arg_value>",
        "</arg_value>",
        "<tool_calls:opensource>",
        "<tool_call:opensource>",
        "<tool_sep:opensource>",
        "<arg_value:opensource>",
        "</tool_calls:opensource>",
        "<think>",
        "</think>",
        "<｜hy_eos｜>",
        "get_weather",
    ]
)

CASE = FormatCase(
    name="hy3",
    soup=SOUP,
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(hy3.render), "preview": reads_back(hy3.render_preview)},
)
