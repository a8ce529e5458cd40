"""Tencent HY4 calls: Hy3's sections and key/value pairs, no `<tool_sep>`, `:6124c78e` tokens."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import hy4

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}, options={"type": "object"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As Hy4-preview's chat template writes a call: a newline after each tag.
TEMPLATE_CALL = (
    "<tool_calls:6124c78e>\n<tool_call:6124c78e>get_weather\n"
    "<arg_key:6124c78e>city</arg_key:6124c78e>\n<arg_value:6124c78e>Paris</arg_value:6124c78e>\n"
    "<arg_key:6124c78e>days</arg_key:6124c78e>\n<arg_value:6124c78e>3</arg_value:6124c78e>\n"
    "</tool_call:6124c78e>\n</tool_calls:6124c78e>"
)


def spelled(text: str) -> str:
    """`text` written with bare tags, in Hy4-preview's spelling."""
    for word in ("tool_calls", "tool_call", "arg_key", "arg_value", "think"):
        text = text.replace(f"<{word}>", f"<{word}:6124c78e>").replace(f"</{word}>", f"</{word}:6124c78e>")
    return text


@pytest.mark.parametrize("format", ["hy4", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL, None, None, [PARIS]),
        (
            spelled("<think>The user wants weather.</think>") + TEMPLATE_CALL,
            None,
            "The user wants weather.",
            [PARIS],
        ),
        ("Let me check.\n" + TEMPLATE_CALL + "\nDone.", "Let me check.\n\nDone.", None, [PARIS]),
        (  # two blocks in one section, one without arguments
            spelled(
                "<tool_calls>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n"
                "</tool_call>\n<tool_call>get_time\n</tool_call>\n</tool_calls>"
            ),
            None,
            None,
            [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_time", {})],
        ),
        (  # values typed by the schema; a value may hold the block's and the section's closers
            spelled(
                "<tool_calls>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
                "<arg_value>a </tool_call></tool_calls> b</arg_value>\n<arg_key>options</arg_key>\n"
                '<arg_value>{"unit": "c"}</arg_value>\n</tool_call>\n</tool_calls>'
            ),
            None,
            None,
            [
                ToolCall(
                    "get_weather",
                    {"city": "a </tool_call:6124c78e></tool_calls:6124c78e> b", "options": {"unit": "c"}},
                )
            ],
        ),
        (  # the compact layout of vLLM's tests (no newlines between tags)
            spelled(
                "<tool_calls><tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
                "<arg_key>days</arg_key><arg_value>3</arg_value></tool_call></tool_calls>"
            ),
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


@pytest.mark.parametrize("format", ["hy4", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # Unless the reasoning effort is `no_think`, the generation prompt ends with `<think>`.
    text = "The user wants weather.\n" + TEMPLATE_CALL
    assert_reads(text, format, TOOLS, None, "The user wants weather.\n", [PARIS], in_reasoning=True)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get_weather",
        spelled(
            "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
        ),  # never closed
        spelled("<tool_call>get_weather<arg_key>city</arg_key></tool_call>"),  # key without value
        spelled("<tool_call></tool_call>"),  # no name
        spelled("<tool_call>get weather</tool_call>"),
        spelled("<tool_call>get_weather<arg_key>city</arg_key><arg_value>X</arg_value>JUNK</tool_call>"),
        spelled("<tool_call>get_time</tool_call> trailing words"),
    ],
)
def test_rejects_sections_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        hy4.parse_region(hy4.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    text = spelled(
        "<tool_calls>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n</tool_call>\n</tool_calls>"
    )
    assert_unread(text, "hy4", TOOLS, MalformedCall)


@pytest.mark.parametrize("text", [TEMPLATE_CALL[:-30], TEMPLATE_CALL[:70], "<tool_calls:6124c78e>\n<tool_ca"])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "hy4", TOOLS, TruncatedCall, truncated=True)


def test_hy3_and_glm_spellings_stay_theirs_under_auto() -> None:
    # Hy3's `:opensource` tokens (with `<tool_sep>`) and GLM's bare tags are not HY4's.
    hy3 = TEMPLATE_CALL.replace(":6124c78e", ":opensource").replace(
        "get_weather\n", "get_weather<tool_sep:opensource>\n"
    )
    glm = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>"
    assert parse(hy3, tools=TOOLS).calls == [PARIS]
    assert parse(glm, tools=TOOLS).calls == [ToolCall("get_weather", {"city": "Paris"})]
    assert parse(hy3, format="hy4", tools=TOOLS).calls == []


def test_detected_from_the_chat_template() -> None:
    # Hy4-preview's template (excerpt, as the gmlx hy_v4 port quotes it): the suffix is declared
    # once and every tag is built from it, so the rendered tags never appear in the template.
    template = "{% set HYTK = ':6124c78e' %}{% set ak = '<arg_key{}>'.format(HYTK) %}"
    assert detect_format(template) == "hy4"
    # A template with the tags already spelled out.
    assert detect_format("{{- '<tool_calls:6124c78e>\\n' }}") == "hy4"
    # Hy3's template builds the same tags from its own suffix, with a `<tool_sep>`.
    hy3_template = "{% set HYTK = ':opensource' %}{% set sep = '<tool_sep{}>'.format(HYTK) %}"
    assert detect_format(hy3_template + "{% set ak = '<arg_key{}>'.format(HYTK) %}") == "hy3"


SOUP = soup(
    [
        "<tool_calls:6124c78e>",
        "</tool_calls:6124c78e>",
        "<tool_call:6124c78e>",
        "</tool_call:6124c78e>",
        "<arg_key:6124c78e>",
        "</arg_key:6124c78e>",
        "<arg_value:6124c78e>",
        "</arg_value:6124c78e>",
        "<think:6124c78e>",
        "</think:6124c78e>",
        "<tool_sep:opensource>",
        "<arg_key>",
        "get_weather",
    ]
)

CASE = FormatCase(
    name="hy4",
    soup=SOUP,
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(hy4.render)},
)
