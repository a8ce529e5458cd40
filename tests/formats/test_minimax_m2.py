"""MiniMax-M2 calls: `<minimax:tool_call><invoke name="f"><parameter name="k">v</parameter></invoke>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import minimax_m2

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool(
        "get_weather",
        city={"type": "string"},
        days={"type": "integer"},
        metric={"type": "boolean"},
        stops={"type": "array", "items": {"type": "string"}},
    ),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As MiniMax-M2's chat template writes a call.
TEMPLATE_CALL = (
    '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Paris</parameter>\n'
    '<parameter name="days">3</parameter>\n</invoke>\n</minimax:tool_call>'
)


@pytest.mark.parametrize("format", ["minimax_m2", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL, None, None, [PARIS]),
        (
            "<think>\nThe user wants weather.\n</think>\n\n" + TEMPLATE_CALL + "[e~[",
            None,
            "\nThe user wants weather.\n",
            [PARIS],
        ),
        ("Let me check.\n" + TEMPLATE_CALL + "\nDone.", "Let me check.\n\nDone.", None, [PARIS]),
        (  # several invokes in one block, one without parameters
            '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Oslo</parameter>\n'
            '</invoke>\n<invoke name="get_time">\n</invoke>\n</minimax:tool_call>',
            None,
            None,
            [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_time", {})],
        ),
        (  # values typed by the schema: a string "123" stays a string; others are JSON
            '<minimax:tool_call><invoke name="get_weather"><parameter name="city">123</parameter>'
            '<parameter name="metric">true</parameter><parameter name="stops">["a", "b"]</parameter>'
            "</invoke></minimax:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "123", "metric": True, "stops": ["a", "b"]})],
        ),
        (  # a value that mentions the block's closer stays a value
            '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">a </minimax:tool_call> b'
            "</parameter>\n</invoke>\n</minimax:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "a </minimax:tool_call> b"})],
        ),
        (  # a multi-line value between newlines: those two are layout
            '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">\nNew\nYork\n</parameter>\n'
            "</invoke>\n</minimax:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "New\nYork"})],
        ),
        (  # the model stopped after </invoke>, before the block's closer
            'Sure.\n<minimax:tool_call>\n<invoke name="get_time">\n</invoke>\n',
            "Sure.\n",
            None,
            [ToolCall("get_time", {})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["minimax_m2", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # The generation prompt ends with `<think>\n`: the output starts inside reasoning.
    text = "The user wants weather.\n" + TEMPLATE_CALL
    assert_reads(text, format, TOOLS, None, "The user wants weather.\n", [PARIS], in_reasoning=True)


def test_values_without_tools_are_typed_by_their_text() -> None:
    text = (
        '<minimax:tool_call><invoke name="f"><parameter name="n">5</parameter>'
        '<parameter name="s">Paris</parameter><parameter name="l">[1, 2]</parameter></invoke></minimax:tool_call>'
    )
    assert parse(text, format="minimax_m2").calls == [ToolCall("f", {"n": 5, "s": "Paris", "l": [1, 2]})]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "I will call get_weather",
        '<invoke name="get_weather">\n<parameter name="city">Paris</parameter>\n',  # no </invoke>
        '<invoke name="get_weather"><parameter name="city">Paris</invoke>',  # value never closed
        '<invoke name="get weather"></invoke>',
        '<invoke name=""></invoke>',
        '<invoke name="f"><parameter name="a">1</parameter><parameter name="a">2</parameter></invoke>',
        '<invoke name="f">junk<parameter name="a">1</parameter></invoke>',
        '<invoke name="f"></invoke> trailing words',
        '{"name": "f", "arguments": {}}',
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        minimax_m2.parse_region(minimax_m2.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize(
    "text",
    [
        '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Paris</parameter>\n'
        "</minimax:tool_call>",
        "<minimax:tool_call>call get_weather please</minimax:tool_call>",
    ],
)
def test_malformed_stays_unread(text: str) -> None:
    assert_unread(text, "minimax_m2", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        TEMPLATE_CALL.removesuffix("</minimax:tool_call>"),
        TEMPLATE_CALL[:60],
        "<minimax:tool_call>\n<invoke na",
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "minimax_m2", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # MiniMax-M2's template (excerpt): the block token and the invoke it writes.
    template = (
        "{%- set toolcall_begin_token = '<minimax:tool_call>' -%}{{- '<invoke name=\"' + tool_call.name + '\">' }}"
        "{{- '<parameter name=\"' + k + '\">' }}"
    )
    assert detect_format(template) == "minimax_m2"


SOUP = soup(
    [
        "<minimax:tool_call>",
        "</minimax:tool_call>",
        '<invoke name="',
        '">',
        "</invoke>",
        '<parameter name="',
        "</parameter>",
        "<think>",
        "</think>",
        "[e~[",
        "get_weather",
    ]
)

CASE = FormatCase(
    name="minimax_m2",
    soup=SOUP,
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(minimax_m2.render)},
)
