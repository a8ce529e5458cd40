"""LongCat-Flash calls: `<longcat_tool_call>` around a JSON call object or GLM-style key/value pairs."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import longcat

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}),
    tool("Bash", command={"type": "string"}, description={"type": "string"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As LongCat-Flash-Chat's template writes a call, and as LongCat-Flash-Thinking / -Lite write one.
JSON_CALL = '<longcat_tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</longcat_tool_call>'
PAIRS_CALL = (
    "<longcat_tool_call>get_weather\n<longcat_arg_key>city</longcat_arg_key>\n"
    "<longcat_arg_value>Paris</longcat_arg_value>\n<longcat_arg_key>days</longcat_arg_key>\n"
    "<longcat_arg_value>3</longcat_arg_value>\n</longcat_tool_call>"
)


@pytest.mark.parametrize("format", ["longcat", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (JSON_CALL, None, None, [PARIS]),
        (PAIRS_CALL, None, None, [PARIS]),
        (  # consecutive blocks, no separator (SGLang's LongCat detector)
            JSON_CALL + '<longcat_tool_call>\n{"name": "get_time", "arguments": {}}\n</longcat_tool_call>',
            None,
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        (
            "<longcat_think>\nThe user wants weather.\n</longcat_think>\n" + PAIRS_CALL,
            None,
            "\nThe user wants weather.\n",
            [PARIS],
        ),
        (  # text before: content; two pairs on one tool (a community parser's case)
            "Creo una cartella.\n<longcat_tool_call>Bash\n<longcat_arg_key>command</longcat_arg_key>\n"
            "<longcat_arg_value>mkdir prova</longcat_arg_value>\n<longcat_arg_key>description</longcat_arg_key>\n"
            "<longcat_arg_value>Create folder</longcat_arg_value>\n</longcat_tool_call>",
            "Creo una cartella.\n",
            None,
            [ToolCall("Bash", {"command": "mkdir prova", "description": "Create folder"})],
        ),
        (  # a call without arguments, and text after
            "<longcat_tool_call>get_time</longcat_tool_call> Done.",
            " Done.",
            None,
            [ToolCall("get_time", {})],
        ),
        (  # the block's closer inside a value stays in the value
            "<longcat_tool_call>Bash<longcat_arg_key>command</longcat_arg_key>"
            "<longcat_arg_value>echo '</longcat_tool_call>'</longcat_arg_value></longcat_tool_call>",
            None,
            None,
            [ToolCall("Bash", {"command": "echo '</longcat_tool_call>'"})],
        ),
        (  # values typed by the schema: a string "123" stays a string
            "<longcat_tool_call>get_weather<longcat_arg_key>city</longcat_arg_key>"
            "<longcat_arg_value>123</longcat_arg_value></longcat_tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "123"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


def test_values_without_tools_are_typed_by_their_text() -> None:
    # mlx-lm's LongCat parser: a value that is JSON is decoded when no schema says it is a string.
    text = (
        "<longcat_tool_call>f<longcat_arg_key>n</longcat_arg_key><longcat_arg_value>5</longcat_arg_value>"
        "<longcat_arg_key>s</longcat_arg_key><longcat_arg_value>Paris</longcat_arg_value></longcat_tool_call>"
    )
    assert parse(text, format="longcat").calls == [ToolCall("f", {"n": 5, "s": "Paris"})]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get weather",
        "get_weather<longcat_arg_key>city</longcat_arg_key>",  # a key without its value
        "get_weather<longcat_arg_key>a</longcat_arg_key><longcat_arg_value>1</longcat_arg_value>"
        "<longcat_arg_key>a</longcat_arg_key><longcat_arg_value>2</longcat_arg_value>",
        '{"arguments": {}}',
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        longcat.parse_region(longcat.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread(
        "<longcat_tool_call>call get_weather please</longcat_tool_call>", "longcat", TOOLS, MalformedCall
    )


@pytest.mark.parametrize("text", [PAIRS_CALL.removesuffix("</longcat_tool_call>"), JSON_CALL[:50]])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "longcat", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # LongCat-Flash-Chat's template (excerpt).
    template = "{{- '<longcat_tool_call>\\n' + tool_call | tojson + '\\n</longcat_tool_call>' }}"
    assert detect_format(template) == "longcat"


CASE = FormatCase(
    name="longcat",
    soup=soup(
        [
            "<longcat_tool_call>",
            "</longcat_tool_call>",
            "<longcat_arg_key>",
            "</longcat_arg_key>",
            "<longcat_arg_value>",
            "</longcat_arg_value>",
            "<longcat_think>",
            "</longcat_think>",
            "get_weather",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"pairs": reads_back(longcat.render), "json": reads_back(longcat.render_json)},
    joiner="\n",
)
