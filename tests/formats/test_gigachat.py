"""GigaChat calls: GigaChat 3's `function call<|role_sep|>` message, 3.1's `<|function_call|>`,
3.5's `<｜GCML｜tool_calls>` invokes."""

from __future__ import annotations

import json

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import gigachat

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool("manage_user_memory", action={"type": "string"}, id={"type": "string"}, content={"type": "object"}),
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}),
]
ARGS = {"action": "create", "id": "preferences"}
MEMORY = ToolCall("manage_user_memory", ARGS)
CALL_JSON = json.dumps({"name": "manage_user_memory", "arguments": ARGS})
V3 = "<|message_sep|>\n\nfunction call<|role_sep|>\n" + CALL_JSON
V31 = "<|function_call|>" + CALL_JSON
GCML = (
    '<｜GCML｜tool_calls>\n<｜GCML｜invoke name="get_weather">\n'
    '<｜GCML｜parameter name="city" string="true">Paris</｜GCML｜parameter>\n'
    '<｜GCML｜parameter name="days" string="false">3</｜GCML｜parameter>\n</｜GCML｜invoke>\n</｜GCML｜tool_calls>'
)
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})


@pytest.mark.parametrize("format", ["gigachat", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (V3, None, None, [MEMORY]),  # vLLM's simple_gigachat3
        ("I'll check that for you." + V3, "I'll check that for you.\n\n", None, [MEMORY]),
        (V31, None, None, [MEMORY]),
        ("I'll check that for you." + V31, "I'll check that for you.", None, [MEMORY]),
        (
            "<|function_call|>"
            + json.dumps({"name": "manage_user_memory", "arguments": {"content": {"short_answers": True}}}),
            None,
            None,
            [ToolCall("manage_user_memory", {"content": {"short_answers": True}})],
        ),
        (GCML, None, None, [PARIS]),
        ("<think>Weather.</think>\n\n" + GCML, None, "Weather.", [PARIS]),
        (  # several invokes, one without parameters, a value mentioning the block's closer
            '<｜GCML｜tool_calls>\n<｜GCML｜invoke name="get_weather">\n'
            '<｜GCML｜parameter name="city" string="true">a </｜GCML｜tool_calls> b</｜GCML｜parameter>\n'
            '</｜GCML｜invoke>\n<｜GCML｜invoke name="manage_user_memory">\n</｜GCML｜invoke>\n</｜GCML｜tool_calls>',
            None,
            None,
            [
                ToolCall("get_weather", {"city": "a </｜GCML｜tool_calls> b"}),
                ToolCall("manage_user_memory", {}),
            ],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


def test_the_end_of_sequence_text_is_not_dropped() -> None:
    # `</s>` is HTML's strikethrough too; the real end-of-sequence token never reaches the text
    # (MLXModel passes the tokenizer's control tokens as `drop`).
    assert parse("<s>old</s> new", format="gigachat").content == "<s>old</s> new"
    assert parse(V31 + "</s>", format="gigachat", drop=["</s>"]).calls == [MEMORY]


def test_a_gcml_block_ends_reasoning_the_prompt_opened() -> None:
    result = parse("The user wants weather.\n" + GCML, format="gigachat", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("The user wants weather.\n", None, [PARIS])


def test_a_bad_invoke_among_good_ones_is_reported_alone() -> None:
    text = GCML.replace(
        "</｜GCML｜tool_calls>", '<｜GCML｜invoke name="x y"></｜GCML｜invoke>\n</｜GCML｜tool_calls>'
    )
    result = parse(text, format="gigachat", tools=TOOLS)
    assert result.calls == [PARIS]
    assert [type(e) for e in result.errors] == [MalformedCall]


@pytest.mark.parametrize("body", ["", "manage_user_memory(action='x')", '{"arguments": {}}', "[]"])
def test_rejects_function_call_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        gigachat.parse_region(gigachat.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread("<｜GCML｜tool_calls>call it</｜GCML｜tool_calls>", "gigachat", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [V31[:-1], V3.removeprefix("<|message_sep|>\n\n")[:45], GCML.removesuffix("</｜GCML｜tool_calls>")[:-20]],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "gigachat", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    "template",
    [
        # GigaChat 3 and 3.5 (excerpts): the role separator every message is built with.
        '{%- set add_tokens = namespace(role_sep="<|role_sep|>\\n", message_sep="<|message_sep|>\\n\\n") -%}',
        "{{- '<｜GCML｜tool_calls>\\n' -}}{{- add_tokens.role_sep -}}<|role_sep|>",
    ],
)
def test_detected_from_the_chat_template(template: str) -> None:
    assert detect_format(template) == "gigachat"


CASE = FormatCase(
    name="gigachat",
    soup=soup(
        [
            "function call<|role_sep|>",
            "<|function_call|>",
            "<|message_sep|>",
            "<｜GCML｜tool_calls>",
            "</｜GCML｜tool_calls>",
            '<｜GCML｜invoke name="f">',
            "</｜GCML｜invoke>",
            '<｜GCML｜parameter name="a" string="false">',
            "</｜GCML｜parameter>",
            "<think>",
            "</think>",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={
        "gcml": reads_back(gigachat.render),
        "function_call": reads_back(gigachat.render_function_calls),
    },
)
