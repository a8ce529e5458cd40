"""Llama 3.x JSON calls: bare `{"name", "parameters"}`, `<|python_tag|>`, `;`-separated."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from parsers.conftest import unread
from pydantic_mlx.parsers import (
    MalformedCall,
    ToolCall,
    TruncatedCall,
    parse,
    render_calls,
)

from . import FormatCase, json_calls, marked, reads_back, tool

FORMAT = "llama3_json"


WEATHER = [tool("get_current_conditions", location={"type": "string"}), tool("get_time")]


CONDITIONS = ToolCall("get_current_conditions", {"location": "San Francisco, CA", "unit": "Fahrenheit"})


@pytest.mark.parametrize(
    "text",
    [
        # Meta's Llama 3.1/3.2 JSON-based tool calling, as the model card shows it.
        '{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", "unit": "Fahrenheit"}}',
        '<|python_tag|>{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", '
        '"unit": "Fahrenheit"}}<|eom_id|>',
        '{"name": "get_current_conditions", "arguments": {"location": "San Francisco, CA", "unit": "Fahrenheit"}}'
        "<|eot_id|>",
        '<|python_tag|>{"name": "get_current_conditions", "parameters": "{\\"location\\": \\"San Francisco, CA\\", '
        '\\"unit\\": \\"Fahrenheit\\"}"}',
        "<|python_tag|>{'name': 'get_current_conditions', 'parameters': {'location': 'San Francisco, CA', "
        "'unit': 'Fahrenheit',},}",
    ],
)
def test_one_call(text: str) -> None:
    for tools in (None, WEATHER):
        result = parse(text, format=FORMAT, tools=tools)
        assert result.calls == [CONDITIONS]
        assert result.content is None
        assert result.errors == []


def test_several_calls_separated_by_semicolons() -> None:
    text = (
        '<|python_tag|>{"name": "get_current_conditions", "parameters": {"location": "Paris"}}; '
        '{"name": "get_time", "parameters": {}}<|eom_id|>'
    )
    expected = [ToolCall("get_current_conditions", {"location": "Paris"}), ToolCall("get_time", {})]
    assert parse(text, format=FORMAT).calls == expected
    bare = text.removeprefix("<|python_tag|>")
    assert parse(bare, format=FORMAT, tools=WEATHER).calls == expected


def test_a_list_of_calls_after_python_tag() -> None:
    text = '<|python_tag|>[{"name": "get_time", "parameters": {}}, {"name": "get_time", "parameters": {"tz": "UTC"}}]'
    assert parse(text, format=FORMAT).calls == [ToolCall("get_time", {}), ToolCall("get_time", {"tz": "UTC"})]


def test_text_before_a_call_is_content_verbatim() -> None:
    text = 'Let me check.\n<|python_tag|>{"name": "get_time", "parameters": {}}<|eot_id|>'
    result = parse(text, format=FORMAT)
    assert result.content == "Let me check.\n"
    assert result.calls == [ToolCall("get_time", {})]


def test_argument_types_are_kept() -> None:
    text = '<|python_tag|>{"name": "f", "parameters": {"n": 3, "s": "3", "x": 1.5, "b": true, "z": null, "l": [1]}}'
    assert parse(text, format=FORMAT).calls == [
        ToolCall("f", {"n": 3, "s": "3", "x": 1.5, "b": True, "z": None, "l": [1]})
    ]


def test_bare_json_to_an_undeclared_tool_stays_content() -> None:
    text = '{"name": "is_prime", "parameters": {"n": 7}}'
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.calls == [] and result.content == text
    assert parse(text, format=FORMAT, tools=[]).calls == []


@pytest.mark.parametrize(
    "text",
    [
        'The API returns {"name": "Alice", "age": 30} for each user.',
        'Send {"location": "Paris"} as the body.',
        "Use a dict like {'a': 1}; then {'b': 2}.",
        'Example payload: [{"id": 1}, {"id": 2}]',
    ],
)
def test_json_in_prose_stays_content(text: str) -> None:
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.content == text
    assert result.calls == [] and result.errors == []


def test_a_call_shaped_dict_in_code_stays_content() -> None:
    text = "def get_time():\n    return {'name': 'get_time'}\n"
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.content == text
    assert result.calls == []


def test_builtin_tool_call_bodies() -> None:
    # Llama 3.1's template writes a built-in tool's call as `NAME.call(key="value")` (llama.cpp
    # test-chat.cpp). The region reader takes them; see the engine-level test below.
    from pydantic_mlx.parsers._tools import tool_set
    from pydantic_mlx.parsers.formats import llama3_json

    syntax = llama3_json.CALLS[0]
    read = llama3_json.parse_region(syntax, "code_interpreter.call(code=\"print('hey')\")", tool_set(None))
    assert read == [ToolCall("code_interpreter", {"code": "print('hey')"})]
    read = llama3_json.parse_region(syntax, 'brave_search.call(query="weather in Paris")', tool_set(None))
    assert read == [ToolCall("brave_search", {"query": "weather in Paris"})]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<|python_tag|>brave_search.call(query="weather in Paris")<|eom_id|>',
            ToolCall("brave_search", {"query": "weather in Paris"}),
        ),
        ("<|python_tag|>python.call(code=\"print('hey')\")", ToolCall("python", {"code": "print('hey')"})),
        ('<|python_tag|>get_weather(city="Seoul")', ToolCall("get_weather", {"city": "Seoul"})),
    ],
)
def test_builtin_tool_call_after_python_tag(text: str, expected: ToolCall) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format)
        assert result.calls == [expected]
        assert result.content is None and result.errors == []


@pytest.mark.parametrize("code", ['print("hi")', "x = 1", "f(a=b)", "import os"])
def test_other_code_after_python_tag_is_not_a_call(code: str) -> None:
    text = f"<|python_tag|>{code}"
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert unread(result) == text
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_malformed_call_stays_content() -> None:
    text = '<|python_tag|>{"nam": "get_time", "parameters": {}}'
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert unread(result) == text
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_truncated_call_is_never_a_call() -> None:
    text = '<|python_tag|>{"name": "get_current_conditions", "parameters": {"location": "San Fr'
    for truncated in (True, False):
        result = parse(text, format=FORMAT, truncated=truncated)
        assert result.calls == []
        assert unread(result) == text
        assert [type(e) for e in result.errors] == [TruncatedCall]


def test_end_of_turn_tokens_are_dropped() -> None:
    assert parse("Hello!<|eot_id|>", format=FORMAT).content == "Hello!"
    assert parse("Hi<|eom_id|>", format=FORMAT).content == "Hi"


def test_auto_reads_python_tag_calls() -> None:
    text = (
        '<|python_tag|>{"name": "get_time", "parameters": {}}; {"name": "get_time", "parameters": {"a": 1}}'
    )
    assert parse(text, format="auto").calls == [ToolCall("get_time", {}), ToolCall("get_time", {"a": 1})]


# -- properties ---------------------------------------------------------------------------------

MARKERS = [
    "<|python_tag|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "{",
    "}",
    "[",
    "]",
    ";",
    '"name"',
    '"parameters"',
    ":",
    ",",
    '"',
    "'",
    " ",
    "\n",
    "```json\n",
    "```",
    '"get_time"',
]


CASE = FormatCase(
    name=FORMAT,
    soup=marked(MARKERS),
    soup_tools=[None, [], WEATHER],
    calls=json_calls(),
    renderings={
        "python_tag": reads_back(lambda calls: render_calls(calls, FORMAT)),
        "bare": reads_back(lambda calls: render_calls(calls, FORMAT).removeprefix("<|python_tag|>")),
    },
    read_without_tools=("python_tag",),
    prose=st.just(""),  # text after a bare call makes it text, by design
    round_trips=120,
)


@pytest.mark.parametrize(
    "template",
    [
        # Excerpts of Meta's Llama 3.1 and 3.2 chat templates.
        "{%- if builtin_tools is defined and tool_call.name in builtin_tools %}"
        "{{- '<|python_tag|>' + tool_call.name + '.call(' }}",
        '{{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name and its '
        'value}.\' }}{{- "Do not use variables.\\n\\n" }}',
    ],
)
def test_detected_from_llama3_templates(template: str) -> None:
    from pydantic_mlx.parsers import detect_format

    assert detect_format(template) == FORMAT
