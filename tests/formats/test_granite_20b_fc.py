"""Granite-20B-FunctionCalling calls: `<function_call> {"name": ..., "arguments": {...}}` each."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import granite_20b_fc

from . import TOOL_NAMES, FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_current_weather", city={"type": "string"}, days={"type": "integer"}), tool("get_time")]
WEATHER = ToolCall("get_current_weather", {"city": "Dallas", "days": 2})
# As the template writes a call: the marker, a space, the object.
TEMPLATE_CALL = '<function_call> {"name": "get_current_weather", "arguments": {"city": "Dallas", "days": 2}}'


@pytest.mark.parametrize("format", ["granite_20b_fc", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (TEMPLATE_CALL, None, [WEATHER]),
        (  # calls back to back, each after its own marker; <|endoftext|> ends the turn
            TEMPLATE_CALL + '<function_call> {"name": "get_time", "arguments": {}}<|endoftext|>',
            None,
            [WEATHER, ToolCall("get_time", {})],
        ),
        ("Let me check. " + TEMPLATE_CALL + "\nDone.", "Let me check. \nDone.", [WEATHER]),
        (  # no space after the marker, arguments as a JSON string
            '<function_call>{"name": "get_current_weather", "arguments": "{\\"city\\": \\"Dallas\\", \\"days\\": 2}"}',
            None,
            [WEATHER],
        ),
        (  # the marker written inside a string value is part of it
            '<function_call> {"name": "get_current_weather", "arguments": {"city": "<function_call> x", "days": 2}}',
            None,
            [ToolCall("get_current_weather", {"city": "<function_call> x", "days": 2})],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize("format", ["granite_20b_fc", "auto"])
@pytest.mark.parametrize("tools", [TOOLS, None, []])
def test_no_function_is_no_call(format: str, tools: list[dict[str, object]] | None) -> None:
    # The system prompt's answer when no function fits.
    text = '<function_call> {"name": "no_function", "arguments": {}}<|endoftext|>'
    result = parse(text, format=format, tools=tools)
    assert (result.content, result.calls, result.errors) == (None, [], [])


def test_no_function_is_a_call_where_a_tool_has_that_name() -> None:
    text = '<function_call> {"name": "no_function", "arguments": {}}'
    tools = [*TOOLS, tool("no_function")]
    assert parse(text, format="granite_20b_fc", tools=tools).calls == [ToolCall("no_function", {})]


@pytest.mark.parametrize(
    "body", ["", " get_time()", ' {"arguments": {}}', ' ["get_time"]', ' {"name": "f"} x']
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        granite_20b_fc.parse_region(granite_20b_fc.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread(
        '<function_call> {"name": "get_time", "arguments": [1]}', "granite_20b_fc", TOOLS, MalformedCall
    )


@pytest.mark.parametrize("text", [TEMPLATE_CALL[:-1], '<function_call> {"name": "get_ti'])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "granite_20b_fc", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize("format", ["granite_20b_fc", "auto"])
@pytest.mark.parametrize("text", ["Wrap it in a <function_call> tag.", "<function_call> is the marker"])
def test_the_tag_in_prose_stays_the_answer(format: str, text: str) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (text, [], [])


def test_detected_from_the_chat_template() -> None:
    # Granite-20B-FunctionCalling's template (excerpt): the tool library and the call it writes.
    template = (
        "{{ 'SYSTEM: ' + sys_prompt }}\n{% if tools is iterable and tools | length > 0 %}\n"
        "<|function_call_library|>\n{%- for tool in tools %}{{- '{\"name\": \"' + tool.name + '\", ' }}"
        "{%- endfor %}\nIf none of the functions are relevant or the given question lacks the parameters "
        'required by the function, please output \\"<function_call> {\\"name\\": \\"no_function\\", '
        '\\"arguments\\": {}}\\".\n{%- endif %}'
        "{{- '<function_call> ' + {'name': tc.function.name, 'arguments': tc.function.arguments}|tojson }}"
    )
    assert detect_format(template) == "granite_20b_fc"


CASE = FormatCase(
    name="granite_20b_fc",
    soup=marked(
        [
            "<function_call>",
            " ",
            "<|endoftext|>",
            '{"name": "f", "arguments": {}}',
            '{"name": "no_function"',
            "{",
            "}",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(names=TOOL_NAMES.filter(lambda name: name != "no_function")),
    renderings={"template": reads_back(granite_20b_fc.render)},
    read_without_tools=("template",),
    round_trips=100,
    regions_without_calls=True,  # `{"name": "no_function"}`: the model's answer that it calls nothing
)
