"""Pythonic calls: `[f(a=1), g()]` bare (Llama 3.2), in `<|python_start|>` (Llama 4) or
`<|tool_call_start|>` (LFM2), read with `ast`, never evaluated."""

from __future__ import annotations

import json
import keyword
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.conftest import unread
from pydantic_mlx.parsers import (
    CallSyntaxError,
    MalformedCall,
    ToolCall,
    TruncatedCall,
    parse,
    render_calls,
)
from pydantic_mlx.parsers._pythonic import parse_pythonic_calls

from . import FormatCase, assert_reads, json_calls, marked, reads_back, tool

FORMAT = "pythonic"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


WEATHER = [tool("get_weather", city={"type": "string"}), tool("get_time")]


# -- the reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[get_weather(city="San Francisco", metric="celsius")]',
            [("get_weather", {"city": "San Francisco", "metric": "celsius"})],
        ),
        ("[get_weather(city='Paris'), get_time()]", [("get_weather", {"city": "Paris"}), ("get_time", {})]),
        ("get_time()", [("get_time", {})]),
        ("[f(a=True, b=False, c=None)]", [("f", {"a": True, "b": False, "c": None})]),
        ("[f(a=true, b=false, c=null)]", [("f", {"a": True, "b": False, "c": None})]),
        ("[f(n=-3, x=+2.5, big=10000000000000000000)]", [("f", {"n": -3, "x": 2.5, "big": 10**19})]),
        (
            '[f(items=[1, "two", (3, 4)], opts={"k": {"deep": [true]}})]',
            [("f", {"items": [1, "two", [3, 4]], "opts": {"k": {"deep": [True]}}})],
        ),
        ("[browser.search(query='mlx')]", [("browser.search", {"query": "mlx"})]),
        ('[f(s="a" "b")]', [("f", {"s": "ab"})]),
        ("[\n  f(\n    a=1,\n  ),\n]", [("f", {"a": 1})]),
        # vLLM's pythonic tests (Meta's Llama 3.2 examples).
        (
            "[register_user(name='John Doe', age=37, address={'city': 'San Francisco', 'state': 'CA'}, "
            "role=None, passed_test=True, aliases=['John', 'Johnny'])]",
            [
                (
                    "register_user",
                    {
                        "name": "John Doe",
                        "age": 37,
                        "address": {"city": "San Francisco", "state": "CA"},
                        "role": None,
                        "passed_test": True,
                        "aliases": ["John", "Johnny"],
                    },
                )
            ],
        ),
        (
            r"""[get_weather(city='Martha\'s Vineyard', metric='\"cool units\"')]""",
            [("get_weather", {"city": "Martha's Vineyard", "metric": '"cool units"'})],
        ),
        (
            "[do_something_cool(additional_data={}, steps=[])]",
            [("do_something_cool", {"additional_data": {}, "steps": []})],
        ),
        # LFM2's slips, whose meaning is plain: a set is an array (once each, in the order
        # written), leading zeros, raw line breaks and NULs inside one-line strings.
        ("[label(tags={'b', 'a', 'b'})]", [("label", {"tags": ["b", "a"]})]),
        ("[label(tags={1, True})]", [("label", {"tags": [1, True]})]),
        (
            "[set_date(month=07, day=00, year=2024, x=0.5)]",
            [("set_date", {"month": 7, "day": 0, "year": 2024, "x": 0.5})],
        ),
        ("[run(cmd='cat << EOF\nx = 07\nEOF', n=01)]", [("run", {"cmd": "cat << EOF\nx = 07\nEOF", "n": 1})]),
        ("[run(cmd='a\x00b\r\n')]", [("run", {"cmd": "a\x00b\r\n"})]),
        ('[run(cmd="""two\nlines""")]', [("run", {"cmd": "two\nlines"})]),
        # Tools do have parameters named like Python keywords.
        (
            '[send(from="a@b.c", to="d@e.f", class=2)]',
            [("send", {"from": "a@b.c", "to": "d@e.f", "class": 2})],
        ),
    ],
)
def test_reads_literal_keyword_calls(text: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    assert parse_pythonic_calls(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "[1, 2]",
        "print('hi')",  # positional argument
        "[f(x)]",  # a variable, not a literal
        "[f(a=1+2)]",
        "[f(a=g())]",
        "[f(**opts)]",
        "[f(a={1: 'x'})]",  # JSON keys are strings
        "[f(a={1, x})]",  # a set holding a variable
        "[f(a=1, b=x07)]",
        "[f(a=b'x')]",
        "[f(a=1e999)]",  # infinity is not JSON
        "[f(a=f'{x}')]",
        "[f(a=1, a=2)]",
        "[f(a=1)",  # cut off
        "[f(a=1)] and more",
        "[obj[0](a=1)]",
        "__import__('os').system('x')",
        "[" * 500 + "]" * 500,
        "[f(a=" + "[" * 300 + "]" * 300 + ")]",
    ],
)
def test_rejects_anything_but_literal_keyword_calls(text: str) -> None:
    with pytest.raises(CallSyntaxError):
        parse_pythonic_calls(text)


# -- the format ---------------------------------------------------------------------------------


def test_llama4_python_start_region() -> None:
    text = 'Let me look.<|python_start|>[get_weather(city="Paris"), get_time()]<|python_end|><|eot|>'
    result = parse(text, format=FORMAT)
    assert result.content == "Let me look."
    assert result.calls == [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {})]
    assert result.errors == []


def test_llama4_region_without_brackets_and_without_end_marker() -> None:
    result = parse('<|python_start|>get_weather(city="Paris")', format=FORMAT)
    assert result.calls == [ToolCall("get_weather", {"city": "Paris"})]
    assert result.content is None


def test_llama4_hf_template_json_after_an_empty_python_block() -> None:
    # Llama 4's Hugging Face template renders calls as `<|python_start|><|python_end|>{json}`.
    text = '<|python_start|><|python_end|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot|>'
    for format in (FORMAT, "auto"):
        result = parse(text, format=format)
        assert result.calls == [ToolCall("get_weather", {"city": "Paris"})]
        assert result.content is None and result.errors == []


def test_bare_json_calls_count_for_declared_tools() -> None:
    # The same Llama templates may ask for `{"name": ..., "parameters": ...}` instead.
    text = '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot|>'
    assert parse(text, format=FORMAT, tools=WEATHER).calls == [ToolCall("get_weather", {"city": "Paris"})]
    result = parse('{"name": "other", "parameters": {}}', format=FORMAT, tools=WEATHER)
    assert result.calls == [] and result.content == '{"name": "other", "parameters": {}}'


def test_lfm2_tool_call_start_region() -> None:
    text = '<|tool_call_start|>[get_candidate_status(candidate_id="12345")]<|tool_call_end|>Checking.'
    result = parse(text, format=FORMAT)
    assert result.calls == [ToolCall("get_candidate_status", {"candidate_id": "12345"})]
    assert result.content == "Checking."


@pytest.mark.parametrize("format", [FORMAT, "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (  # LFM2 writes JSON call objects inside its markers too
            'On it. <|tool_call_start|>{"name": "get_weather", "arguments": {"city": "Rome"}}<|tool_call_end|>',
            "On it. ",
            [ToolCall("get_weather", {"city": "Rome"})],
        ),
        (
            '<|tool_call_start|>[{"name": "get_weather", "parameters": {"city": "Rome"}}, '
            '{"name": "get_weather", "arguments": {}}]<|tool_call_end|>',
            None,
            [ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_weather", {})],
        ),
        (  # the call list echoed after the closer, capped by a stray closer: one call
            "<|tool_call_start|>[get_weather(city='Rome')]<|tool_call_end|>"
            " [get_weather(city='Rome')]<|tool_call_end|>Done.",
            "Done.",
            [ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # a different list after the closer is no echo: it is read on its own terms
            "<|tool_call_start|>[get_weather(city='Rome')]<|tool_call_end|>\n[get_weather(city='Oslo')]",
            None,
            [ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_weather", {"city": "Oslo"})],
        ),
    ],
)
def test_lfm2_json_calls_echoes_and_stray_closers(
    format: str, text: str, content: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, WEATHER, content, None, calls)


@pytest.mark.parametrize("format", [FORMAT, "llama3_json", "auto"])
def test_llama32_python_tag_list(format: str) -> None:
    # Llama 3.2's pythonic template renders calls as `<|python_tag|>[...]<|eot_id|>`.
    text = "<|python_tag|>[get_weather(city='San Francisco', metric='celsius'), get_time()]<|eom_id|>"
    result = parse(text, format=format)
    assert result.calls == [
        ToolCall("get_weather", {"city": "San Francisco", "metric": "celsius"}),
        ToolCall("get_time", {}),
    ]
    assert result.content is None and result.errors == []


@pytest.mark.parametrize(
    ("text", "content", "reasoning"),
    [
        # llama.cpp test-chat.cpp, LFM2 / LFM2.5 thinking models.
        (
            '<think>I\'m\nthinking</think><|tool_call_start|>[get_time(city="Paris")]<|tool_call_end|>',
            None,
            "I'm\nthinking",
        ),
        (
            '<think>I need a tool</think>Let me check the time.<|tool_call_start|>[get_time(city="Paris")]<|tool_call_end|>',
            "Let me check the time.",
            "I need a tool",
        ),
        ('<think>I\'m\nthinking</think>[get_time(city="Paris")]<|im_end|>', None, "I'm\nthinking"),
        ('Let me check the time.[get_time(city="Paris")]', "Let me check the time.", None),
    ],
)
def test_lfm2_thinking_and_bare_lists(text: str, content: str | None, reasoning: str | None) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format, tools=WEATHER)
        assert (result.content, result.reasoning) == (content, reasoning)
        assert result.calls == [ToolCall("get_time", {"city": "Paris"})]


def test_call_markers_inside_reasoning_are_reasoning() -> None:
    text = "<think>About <|tool_call_start|>[get_time()]<|tool_call_end|> hmm</think><|tool_call_start|>[get_time()]<|tool_call_end|>"
    result = parse(text, format=FORMAT)
    assert result.reasoning == "About <|tool_call_start|>[get_time()]<|tool_call_end|> hmm"
    assert result.calls == [ToolCall("get_time", {})]


def test_llama32_bare_list_is_a_call_for_declared_tools() -> None:
    text = '[get_weather(city="San Francisco"), get_time()]<|eot_id|>'
    for tools in (None, WEATHER):
        result = parse(text, format=FORMAT, tools=tools)
        assert result.calls == [ToolCall("get_weather", {"city": "San Francisco"}), ToolCall("get_time", {})]
        assert result.content is None


def test_bare_list_naming_an_undeclared_tool_stays_text() -> None:
    text = '[get_stock(symbol="AAPL")]'
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.calls == [] and result.content == text


def test_tagged_call_to_an_undeclared_tool_is_a_call_and_a_problem() -> None:
    result = parse('<|python_start|>[get_stock(symbol="AAPL")]<|python_end|>', format=FORMAT, tools=WEATHER)
    assert result.calls == [ToolCall("get_stock", {"symbol": "AAPL"})]
    assert [e.kind for e in result.errors] == ["unknown_tool"]


@pytest.mark.parametrize(
    "text",
    [
        "def get_weather(city):\n    return fetch(city)\n\nprint(get_weather(city='Paris'))",
        'Call it like `get_weather(city="Paris")` from your code.',
        "The list [get_weather(city=name) for name in cities] builds them all.",
        "Results: [1, 2, 3] and [get_time] (no call).",
        '```python\nresults = [get_weather(city="Paris")]\n```',
    ],
)
def test_code_and_prose_stay_content(text: str) -> None:
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.content == text
    assert result.calls == []


@pytest.mark.parametrize(
    "text",
    [
        "See [get_weather(city='Paris')](https://example.com) for the docs.",
        'Call it like `[get_weather(city="Paris")]` from your code.',
        'results = [get_weather(city="Paris")]',
        'print([get_weather(city="Paris")])',
    ],
)
def test_calls_quoted_in_inline_code_or_link_text_stay_content(text: str) -> None:
    result = parse(text, format=FORMAT, tools=WEATHER)
    assert result.content == text
    assert result.calls == []


@pytest.mark.parametrize(
    "text",
    [
        "[bad(x=b'z'), get_weather(city='San Francisco')]",
        "[calc(x=1e999), get_weather(city='San Francisco')]",
        "[get_weather(city='San Francisco'), f(a='x 'y', b='z')]",
    ],
)
def test_one_bad_call_keeps_the_whole_list_as_text(text: str) -> None:
    # Never half a list: the good sibling is not salvaged out of text that is not a call list.
    result = parse(f"<|python_start|>{text}<|python_end|>", format=FORMAT)
    assert result.calls == []
    assert unread(result) == f"<|python_start|>{text}<|python_end|>"
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_malformed_region_stays_content_with_a_problem() -> None:
    text = "<|python_start|>[get_weather(city)]<|python_end|>"
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert unread(result) == text
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_truncated_region_is_never_a_call() -> None:
    text = '<|python_start|>[get_weather(city="Pa'
    result = parse(text, format=FORMAT, truncated=True)
    assert result.calls == []
    assert unread(result) == text
    assert [type(e) for e in result.errors] == [TruncatedCall]
    # A complete body whose end marker never came is a call only when the model stopped itself.
    complete = '<|python_start|>[get_weather(city="Paris")]'
    assert parse(complete, format=FORMAT, truncated=True).calls == []
    assert parse(complete, format=FORMAT).calls == [ToolCall("get_weather", {"city": "Paris"})]


def test_auto_recognises_llama4_and_lfm2_regions() -> None:
    for text in (
        '<|python_start|>[get_weather(city="Paris")]<|python_end|>',
        '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>',
    ):
        assert parse(text, format="auto").calls == [ToolCall("get_weather", {"city": "Paris"})]


# -- properties ---------------------------------------------------------------------------------

_segment = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s)
)
names = st.lists(_segment, min_size=1, max_size=3).map(".".join)
argument_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
MARKERS = [
    "<think>",
    "</think>",
    "<|python_start|>",
    "<|python_end|>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<|eot_id|>",
    "<|eom|>",
    "[",
    "]",
    "(",
    ")",
    "=",
    ",",
    '"',
    "f",
    "get_time()",
    "f(a=1)",
    " ",
    "\n",
    "```",
]


def render_bare_list(calls: list[ToolCall]) -> str:
    """Llama 3.2 writes the list without any region marker (a call only for declared tools)."""
    return render_calls(calls, FORMAT).removeprefix("<|python_start|>").removesuffix("<|python_end|>")


def render_lfm2(calls: list[ToolCall]) -> str:
    """LFM2: the pythonic list between `<|tool_call_start|>` and `<|tool_call_end|>`."""
    return "<|tool_call_start|>" + render_bare_list(calls) + "<|tool_call_end|>"


def render_lfm2_json(calls: list[ToolCall]) -> str:
    """LFM2 asked for JSON: a list of call objects between the same markers."""
    objects = [{"name": c.name, "arguments": c.arguments} for c in calls]
    return "<|tool_call_start|>" + json.dumps(objects, ensure_ascii=False) + "<|tool_call_end|>"


CASE = FormatCase(
    name=FORMAT,
    soup=marked(MARKERS),
    soup_tools=[None, [], WEATHER],
    calls=json_calls(names, keys=argument_names),
    renderings={
        "python_start": reads_back(lambda calls: render_calls(calls, FORMAT)),
        "bare_list": reads_back(render_bare_list),
        "lfm2": reads_back(render_lfm2),
        "lfm2_json": reads_back(render_lfm2_json),
    },
    read_without_tools=("python_start", "lfm2", "lfm2_json"),
    prose=st.just(""),  # text after a bare call makes it text, by design
    round_trips=120,
)


@SETTINGS
@given(text=st.text(max_size=200))
def test_reader_never_raises_anything_but_call_syntax_error(text: str) -> None:
    try:
        calls = parse_pythonic_calls(text)
    except CallSyntaxError:
        return
    assert calls and all(isinstance(args, dict) for _, args in calls)


def test_large_and_deep_inputs_finish() -> None:
    many = "<|python_start|>[" + ", ".join(f"f(a={i})" for i in range(5_000)) + "]<|python_end|>"
    assert len(parse(many, format=FORMAT).calls) == 5_000
    deep = "<|python_start|>[f(a=" + "[" * 100_000 + ")]<|python_end|>"
    assert parse(deep, format=FORMAT).calls == []


@pytest.mark.parametrize(
    "template",
    [
        # vLLM's Llama 3.2 pythonic template, Llama 4's template, LFM2's template (excerpts).
        "If you decide to invoke any of the function(s), you MUST put it in the format of "
        "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]",
        "{{- '<|header_start|>assistant<|header_end|>\\n\\n' -}}{{- '<|python_start|>' }}"
        '{{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.\' }}',
        "{{- '<|tool_list_start|>' + tools | tojson + '<|tool_list_end|>' }}{{- '<|tool_call_start|>' }}",
    ],
)
def test_detected_from_pythonic_templates(template: str) -> None:
    from pydantic_mlx.parsers import detect_format

    assert detect_format(template) == FORMAT


@pytest.mark.parametrize("format", ["pythonic", "auto"])
def test_openpangu_v2_json_lists_are_read_in_lfm2s_markers(format: str) -> None:
    # openPangu V2 (vLLM openpangu_v2) writes a JSON call list between LFM2's tokens.
    text = (
        'Thought: I need to check weather.<|tool_call_start|>[{"name": "get_weather", "arguments": '
        '{"city": "Beijing"}}, {"name": "search", "arguments": {"query": "weather forecast"}}]<|tool_call_end|>'
    )
    calls = [ToolCall("get_weather", {"city": "Beijing"}), ToolCall("search", {"query": "weather forecast"})]
    assert_reads(text, format, None, "Thought: I need to check weather.", None, calls)
