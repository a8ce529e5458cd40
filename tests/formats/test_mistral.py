"""Mistral calls: `[TOOL_CALLS][{...}]` (pre-v11) and `[TOOL_CALLS]name[ARGS]{...}` (v11+)."""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from parsers.conftest import events_agree, stream, unread
from pydantic_mlx.parsers import (
    MalformedCall,
    ToolCall,
    TruncatedCall,
    parse,
    render_calls,
)

from . import FormatCase, json_calls, marked, reads_back, tool

FORMAT = "mistral"


TOOLS = [tool("special_function", arg1={"type": "integer"}), tool("get_current_weather"), tool("get_time")]


def test_pre_v11_json_list_with_ids() -> None:
    text = (
        '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Dallas, TX", "unit": "fahrenheit"}, '
        '"id": "a1b2c3d4e"}, {"name": "get_time", "arguments": {}, "id": "f5g6h7i8j"}]'
    )
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.calls == [
        ToolCall("get_current_weather", {"location": "Dallas, TX", "unit": "fahrenheit"}, id="a1b2c3d4e"),
        ToolCall("get_time", {}, id="f5g6h7i8j"),
    ]
    assert result.content is None and result.errors == []


def test_pre_v11_single_object_and_string_arguments() -> None:
    text = '[TOOL_CALLS]{"name": "special_function", "arguments": "{\\"arg1\\": 1}"}'
    assert parse(text, format=FORMAT).calls == [ToolCall("special_function", {"arg1": 1})]


def test_v11_name_args() -> None:
    # Devstral / Mistral Small 3.1 (llama.cpp test-chat.cpp).
    text = '[TOOL_CALLS]special_function[ARGS]{"arg1": 1}'
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.calls == [ToolCall("special_function", {"arg1": 1})]
    assert result.content is None and result.errors == []


def test_v11_call_id() -> None:
    # Mistral Small 3.2 writes an id between the name and the arguments.
    text = '[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]{"arg1": 1}'
    assert parse(text, format=FORMAT).calls == [ToolCall("special_function", {"arg1": 1}, id="123456789")]


def test_v11_several_calls_and_text_before() -> None:
    text = (
        'I\'ll check both.[TOOL_CALLS]get_current_weather[ARGS]{"location": "Paris"}'
        "[TOOL_CALLS]get_time[ARGS]{}</s>"
    )
    result = parse(text, format=FORMAT)
    assert result.calls == [ToolCall("get_current_weather", {"location": "Paris"}), ToolCall("get_time", {})]
    # </s> is not dropped: in answers it is also HTML strikethrough.
    assert result.content == "I'll check both.</s>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # vLLM's v11 tests decode without control tokens, so [ARGS] is gone.
        (
            '[TOOL_CALLS]add_this_and_that{"a": 3.5, "b": 4}',
            [ToolCall("add_this_and_that", {"a": 3.5, "b": 4})],
        ),
        (
            '[TOOL_CALLS]add{"a": 3.5, "b": 4}[TOOL_CALLS]multiply{"a": 3, "b": 6}',
            [ToolCall("add", {"a": 3.5, "b": 4}), ToolCall("multiply", {"a": 3, "b": 6})],
        ),
    ],
)
def test_v11_calls_decoded_without_args_marker(text: str, expected: list[ToolCall]) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format)
        assert result.calls == expected
        assert result.content is None and result.errors == []
        # The region ends where the value does, so the call is complete even when truncated.
        assert parse(text, format=format, truncated=True).calls == expected


def test_v11_call_without_args_marker_then_text() -> None:
    result = parse('[TOOL_CALLS]get_current_weather{"city": "SF"}</s>', format=FORMAT)
    assert result.calls == [ToolCall("get_current_weather", {"city": "SF"})]
    assert result.content == "</s>"


def test_v11_call_with_spaces_around_args_marker() -> None:
    result = parse('[TOOL_CALLS]get_weather [ARGS] {"city": "Paris"}', format=FORMAT)
    assert result.calls == [ToolCall("get_weather", {"city": "Paris"})]


def test_magistral_think_block() -> None:
    text = '[THINK]The user wants the weather.[/THINK]Checking.[TOOL_CALLS]get_current_weather[ARGS]{"location": "Lyon"}'
    result = parse(text, format=FORMAT)
    assert result.reasoning == "The user wants the weather."
    assert result.content == "Checking."
    assert result.calls == [ToolCall("get_current_weather", {"location": "Lyon"})]


def test_magistral_2506_think_tags_and_in_reasoning() -> None:
    assert parse("<think>hmm</think>Answer", format=FORMAT).reasoning == "hmm"
    result = parse("still thinking[/THINK]Answer", format=FORMAT, in_reasoning=True)
    assert result.reasoning == "still thinking"
    assert result.content == "Answer"


def test_argument_types_are_kept() -> None:
    text = '[TOOL_CALLS]f[ARGS]{"n": 3, "s": "3", "x": -1.5e3, "b": false, "z": null, "o": {"l": [1, "a"]}}'
    assert parse(text, format=FORMAT).calls == [
        ToolCall("f", {"n": 3, "s": "3", "x": -1500.0, "b": False, "z": None, "o": {"l": [1, "a"]}})
    ]


def test_html_strikethrough_and_brackets_stay_content() -> None:
    text = "Prices: <s>$20</s> $15 [sale] [ARGS] are [1, 2]."
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.content == text
    assert result.calls == [] and result.errors == []


def test_json_example_in_prose_stays_content() -> None:
    text = 'A response looks like {"name": "Alice", "arguments": "none"}.'
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.content == text and result.calls == []


@pytest.mark.parametrize(
    "text",
    [
        "[TOOL_CALLS]get_time[ARGS]not json",
        "[TOOL_CALLS]get time[ARGS]{}",
        '[TOOL_CALLS][{"nom": "get_time"}]',
        "[TOOL_CALLS]get_time[ARGS][1, 2]",
        '[TOOL_CALLS]get_time[CALL_ID]bad id![ARGS]{"a": 1}',
    ],
)
def test_malformed_calls_stay_content(text: str) -> None:
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert unread(result) == text
    assert len(result.errors) == 1 and isinstance(result.errors[0], MalformedCall | TruncatedCall)


def test_truncated_arguments_are_never_a_call() -> None:
    text = '[TOOL_CALLS]get_current_weather[ARGS]{"location": "Par'
    for truncated in (True, False):
        result = parse(text, format=FORMAT, truncated=truncated)
        assert result.calls == []
        assert unread(result) == text
        assert [type(e) for e in result.errors] == [TruncatedCall]


def test_auto_reads_both_generations() -> None:
    assert parse('[TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}', format="auto").calls == [
        ToolCall("get_time", {"tz": "UTC"})
    ]
    assert parse('[TOOL_CALLS][{"name": "get_time", "arguments": {}}]', format="auto").calls == [
        ToolCall("get_time", {})
    ]


# -- properties ---------------------------------------------------------------------------------

MARKERS = [
    "[TOOL_CALLS]",
    "[ARGS]",
    "[CALL_ID]",
    "[THINK]",
    "[/THINK]",
    "<think>",
    "</think>",
    "</s>",
    "{",
    "}",
    "[",
    "]",
    '"name"',
    '"arguments"',
    ":",
    ",",
    '"',
    " ",
    "get_time",
    "```json\n",
    "```",
]


def render_pre_v11(calls: list[ToolCall]) -> str:
    """Mistral before v11: one JSON list of calls, ids kept when given."""
    items = [{"name": c.name, "arguments": c.arguments} | ({"id": c.id} if c.id else {}) for c in calls]
    return "[TOOL_CALLS]" + json.dumps(items)


CASE = FormatCase(
    name=FORMAT,
    soup=marked(MARKERS),
    soup_tools=[None, [], TOOLS],
    calls=json_calls(ids=st.none() | st.from_regex(r"[A-Za-z0-9]{9}", fullmatch=True)),
    renderings={
        "v11": reads_back(lambda calls: render_calls(calls, FORMAT)),
        "pre_v11": reads_back(render_pre_v11),
    },
    read_without_tools=("v11", "pre_v11"),
    round_trips=120,
)


def test_detected_from_mistral_templates() -> None:
    from pydantic_mlx.parsers import detect_format

    v11 = '{{- "[TOOL_CALLS]" + tool_call["function"]["name"] + "[ARGS]" + arguments }}'
    pre_v11 = '{{- "[AVAILABLE_TOOLS] [" }}{%- for tool in tools %}'
    assert detect_format(v11) == FORMAT
    assert detect_format(pre_v11) == FORMAT


def test_one_bad_entry_in_a_call_list_does_not_sink_its_neighbours() -> None:
    text = '[TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}, "junk", {"arguments": {"b": 2}}]'
    result = parse(text, format="mistral")
    assert (result.content, result.calls) == (None, [ToolCall("add", {"a": 1})])
    assert [(e.kind, e.text) for e in result.errors] == [
        ("malformed_call", '"junk"'),
        ("malformed_call", '{"arguments": {"b": 2}}'),
    ]
    streamed, events = stream(text, range(len(text)), format="mistral")
    assert streamed == result
    assert events_agree(result, events)


def test_a_call_list_with_no_good_entry_is_one_unread_region() -> None:
    text = '[TOOL_CALLS][{"arguments": {"a": 1}}, "junk"]'
    result = parse(text, format="mistral")
    assert result.calls == []
    assert [(e.kind, e.text) for e in result.errors] == [("malformed_call", text)]


@pytest.mark.parametrize(
    "text",
    [
        '[TOOL_CALLS] [TOOL_CALLS] [{"name": "get_time", "arguments": {"tz": "UTC"}}]',
        '[TOOL_CALLS][TOOL_CALLS]{"name": "get_time", "arguments": {"tz": "UTC"}}',
        '[TOOL_CALLS] [TOOL_CALLS] get_time[ARGS]{"tz": "UTC"}',
    ],
)
def test_a_doubled_opener_is_one_region(text: str) -> None:
    for cuts in (range(len(text)), [len(text) // 2]):
        result, _ = stream(text, cuts, format=FORMAT)
        assert (result.content, result.calls, result.errors) == (
            None,
            [ToolCall("get_time", {"tz": "UTC"})],
            [],
        )


def test_comma_joined_objects_without_brackets_are_all_calls() -> None:
    text = (
        '[TOOL_CALLS] {"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {"tz": "CET"}}'
    )
    result = parse(text, format=FORMAT)
    assert result.calls == [ToolCall("get_time", {}), ToolCall("get_time", {"tz": "CET"})]
    assert result.content is None
    streamed, _ = stream(text, range(len(text)), format=FORMAT)
    assert streamed == result
    # A comma followed by prose ends the region; the prose is text.
    after = parse('[TOOL_CALLS] [{"name": "get_time", "arguments": {}}], and then more.', format=FORMAT)
    assert (after.content, after.calls) == (", and then more.", [ToolCall("get_time", {})])
