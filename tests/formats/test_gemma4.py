"""Gemma 4 calls: `<|tool_call>call:NAME{key:<|"|>text<|"|>,n:3}<tool_call|>`."""

from __future__ import annotations

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

from . import FormatCase, assert_reads, json_calls, marked, reads_back, tool

FORMAT = "gemma4"
Q = '<|"|>'


TOOLS = [tool("get_weather", location={"type": "string"}), tool("get_time")]


def test_string_argument() -> None:
    text = f"<|tool_call>call:get_weather{{location:{Q}Tokyo{Q}}}<tool_call|><|tool_response>"
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.calls == [ToolCall("get_weather", {"location": "Tokyo"})]
    assert result.content is None and result.errors == []


def test_values_are_typed_as_written() -> None:
    text = (
        f"<|tool_call>call:search{{query:{Q}42{Q},limit:10,ratio:0.5,exp:1e-05,neg:-3,exact:true,"
        f"fuzzy:false,cursor:null,legacy:None}}<tool_call|>"
    )
    assert parse(text, format=FORMAT).calls == [
        ToolCall(
            "search",
            {
                "query": "42",
                "limit": 10,
                "ratio": 0.5,
                "exp": 1e-05,
                "neg": -3,
                "exact": True,
                "fuzzy": False,
                "cursor": None,
                "legacy": None,
            },
        )
    ]


def test_call_closed_by_turn_end_or_with_a_stray_colon() -> None:
    # Variants vLLM's Gemma 4 parser tests collect from real outputs.
    closed_by_turn = f"<|tool_call>call:gdb{{args:{Q}-batch -ex run /tmp/poc{Q}}}<turn|>"
    assert parse(closed_by_turn, format=FORMAT).calls == [
        ToolCall("gdb", {"args": "-batch -ex run /tmp/poc"})
    ]
    stray_colon = f"<|tool_call>:call:bash{{command:{Q}pytest{Q}}}<tool_call|>"
    assert parse(stray_colon, format=FORMAT).calls == [ToolCall("bash", {"command": "pytest"})]


def test_a_float_written_with_a_trailing_point() -> None:
    # vLLM test_trailing_dot_float_partial_withheld (non-partial): 108. is the float 108.0.
    text = "<|tool_call>call:move{left:108.,right:22.8}<tool_call|>"
    assert parse(text, format=FORMAT).calls == [ToolCall("move", {"left": 108.0, "right": 22.8})]


def test_nested_objects_and_lists() -> None:
    text = (
        f"<|tool_call>call:create_event{{attendees:[{Q}ann{Q},{Q}bob{Q}],where:{{room:{Q}4B{Q},floor:4}},"
        f"slots:[[9,10],[14]],meta:{{}}}}<tool_call|>"
    )
    assert parse(text, format=FORMAT).calls == [
        ToolCall(
            "create_event",
            {
                "attendees": ["ann", "bob"],
                "where": {"room": "4B", "floor": 4},
                "slots": [[9, 10], [14]],
                "meta": {},
            },
        )
    ]


def test_strings_hold_any_text_including_structure() -> None:
    code = 'def f(x):\n    return {"a": [x, "}"]}, \'q\''
    text = f"<|tool_call>call:write_file{{path:{Q}a.py{Q},content:{Q}{code}{Q}}}<tool_call|>"
    assert parse(text, format=FORMAT).calls == [ToolCall("write_file", {"path": "a.py", "content": code})]


def test_call_markers_inside_strings_do_not_end_the_call() -> None:
    # vLLM test_string_value_with_paired_tool_markers
    text = (
        f"<|tool_call>call:write_file{{path:{Q}t{Q},content:{Q}x<tool_call|>y<|tool_call>z{Q}}}<tool_call|>"
    )
    assert parse(text, format=FORMAT).calls == [
        ToolCall("write_file", {"path": "t", "content": "x<tool_call|>y<|tool_call>z"})
    ]


def test_several_calls_no_arguments_and_odd_keys() -> None:
    text = (
        f"<|tool_call>call:get_time{{}}<tool_call|>"
        f"<|tool_call>call:get_weather{{max-results:3,{Q}two words{Q}:1, spaced : {Q}x{Q} }}<tool_call|>"
    )
    assert parse(text, format=FORMAT).calls == [
        ToolCall("get_time", {}),
        ToolCall("get_weather", {"max-results": 3, "two words": 1, "spaced": "x"}),
    ]


def test_json_quoted_strings_and_bare_words_are_read_as_strings() -> None:
    text = '<|tool_call>call:get_weather{"location":"Paris, FR",unit:celsius}<tool_call|>'
    assert parse(text, format=FORMAT).calls == [
        ToolCall("get_weather", {"location": "Paris, FR", "unit": "celsius"})
    ]


def test_thought_channel_is_reasoning() -> None:
    text = (
        "<|channel>thought\nThe user wants the weather in Tokyo.<channel|>"
        f"<|tool_call>call:get_weather{{location:{Q}Tokyo{Q}}}<tool_call|>"
    )
    result = parse(text, format=FORMAT)
    assert result.reasoning == "The user wants the weather in Tokyo."
    assert result.content is None
    assert result.calls == [ToolCall("get_weather", {"location": "Tokyo"})]


def test_answer_after_empty_thought_and_turn_end() -> None:
    result = parse("<|channel>thought\n<channel|>It is sunny in Tokyo.<turn|>", format=FORMAT)
    assert result.content == "It is sunny in Tokyo."
    assert result.reasoning is None


@pytest.mark.parametrize(
    "text",
    [
        # llama.cpp test-chat.cpp, Gemma 4 edge cases: all are the answer with empty reasoning.
        "<|channel>thought\n<channel|>Hello, world!\nWhat's up?<channel|>",
        "<|channel>thought\n<channel|>Hello, world!\nWhat's up?<|channel>thought\n<channel|>",
        "<|channel>thought\n<channel|>Hello, world!\nWhat's up?<|channel>thought\n<channel|><channel|>",
        "<|channel><|channel>thought\n<channel|>Hello, world!\nWhat's up?",
        "<|channel>thought<channel|>Hello, world!\nWhat's up?",
    ],
)
def test_stray_and_empty_channel_tokens(text: str) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format)
        assert (result.content, result.reasoning) == ("Hello, world!\nWhat's up?", None)


def test_in_reasoning_output_starts_inside_the_thought() -> None:
    result = parse("Let me think.<channel|>Answer.", format=FORMAT, in_reasoning=True)
    assert result.reasoning == "Let me think."
    assert result.content == "Answer."


def test_text_around_calls_is_content_verbatim() -> None:
    text = "Checking now.\n<|tool_call>call:get_time{}<tool_call|>\nDone?"
    result = parse(text, format=FORMAT)
    assert result.content == "Checking now.\n\nDone?"
    assert result.calls == [ToolCall("get_time", {})]


def test_a_complete_call_missing_its_end_token() -> None:
    text = f"<|tool_call>call:get_weather{{location:{Q}Oslo{Q}}}"
    assert parse(text, format=FORMAT).calls == [ToolCall("get_weather", {"location": "Oslo"})]
    assert parse(text, format=FORMAT, truncated=True).calls == []


@pytest.mark.parametrize(
    "body",
    [
        f"get_weather{{location:{Q}x{Q}}}",  # no "call:"
        f"call:get_weather location:{Q}x{Q}",
        f"call:get_weather{{location {Q}x{Q}}}",
        "call:get_weather{location:}",
        f"call:get_weather{{location:{Q}x{Q}",  # unbalanced
        f"call:{{location:{Q}x{Q}}}",
        "call:get_weather{:1}",
        '{"name": "get_weather", "arguments": {}}',
        "call:f{a:" + "[" * 400 + "]" * 400 + "}",
    ],
)
def test_malformed_calls_stay_content(body: str) -> None:
    text = f"<|tool_call>{body}<tool_call|>"
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert unread(result) == text
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_bare_opener_without_the_call_word() -> None:
    # vLLM reads `<|tool_call>:NAME{...}`: the model wrote the colon but left out `call`.
    text = (
        f"<|tool_call>:get_weather{{location:{Q}Oslo{Q},days:2}}<tool_call|>"
        "<|tool_call>:get_time{}<tool_call|>"
    )
    calls = [ToolCall("get_weather", {"location": "Oslo", "days": 2}), ToolCall("get_time", {})]
    assert_reads(text, FORMAT, TOOLS, None, None, calls)
    assert_reads(text, "auto", TOOLS, None, None, calls)


def test_several_calls_in_one_block() -> None:
    # mlx-lm reads calls written back to back inside one `<|tool_call>` block.
    text = (
        f"Checking both.<|tool_call>call:get_weather{{location:{Q}Lima{Q}}}"
        f" call:get_weather{{location:{Q}Quito{Q},extra:{{deep:[1,{Q}x{Q}]}}}}call:get_time{{}}<tool_call|>"
    )
    calls = [
        ToolCall("get_weather", {"location": "Lima"}),
        ToolCall("get_weather", {"location": "Quito", "extra": {"deep": [1, "x"]}}),
        ToolCall("get_time", {}),
    ]
    assert_reads(text, FORMAT, TOOLS, "Checking both.", None, calls)


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        (f"call:get_weather location:{Q}x{Q}", "expected '{'"),
        (f"call:{{location:{Q}x{Q}}}", "expected a tool name"),
        ("and that is all", "unexpected text after the arguments"),
    ],
)
def test_a_bad_call_after_good_ones_is_reported_alone(rest: str, message: str) -> None:
    good = f"call:get_weather{{location:{Q}Lima{Q}}}"
    text = f"<|tool_call>{good}{rest}<tool_call|>"
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.calls == [ToolCall("get_weather", {"location": "Lima"})]
    assert result.content is None
    [problem] = result.errors
    assert isinstance(problem, MalformedCall) and problem.text == rest and message in problem.message
    for cuts in (range(len(text)), [7, 30, 31, 60]):
        streamed, events = stream(text, cuts, format=FORMAT, tools=TOOLS)
        assert streamed == result and events_agree(result, events)


def test_a_bare_call_where_the_answer_begins_must_stand_alone() -> None:
    # Where the answer begins, `call:f{...}` followed by more text is prose about a call.
    text = "call:get_time{} is how the tool is called."
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (text, [], [])


def test_truncated_call_is_never_a_call() -> None:
    text = f"<|tool_call>call:get_weather{{location:{Q}Tok"
    for truncated in (True, False):
        result = parse(text, format=FORMAT, truncated=truncated)
        assert result.calls == []
        assert unread(result) == text
        assert [type(e) for e in result.errors] == [TruncatedCall]


def test_prose_with_braces_and_colons_stays_content() -> None:
    text = "Use call:get_weather{location:Tokyo} in your notes; see {a: 1} and [b]."
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.content == text
    assert result.calls == [] and result.errors == []


def test_auto_reads_gemma4_calls_and_thoughts() -> None:
    text = f"<|channel>thought\nhm<channel|><|tool_call>call:get_weather{{location:{Q}Rome{Q}}}<tool_call|>"
    result = parse(text, format="auto")
    assert result.reasoning == "hm"
    assert result.calls == [ToolCall("get_weather", {"location": "Rome"})]


# -- properties ---------------------------------------------------------------------------------


def _no_markers(text: str) -> bool:
    # `<|"|>` is a single special token: it never occurs inside a string value.
    return Q not in text


texts = st.one_of(
    st.text(max_size=12), st.sampled_from(["<tool_call|>", "<|tool_call>", "<channel|>", "}"])
).filter(_no_markers)
MARKERS = [
    "<|tool_call>",
    "<tool_call|>",
    "call:",
    Q,
    "<|channel>thought\n",
    "<|channel>",
    "<channel|>",
    "<turn|>",
    "<|tool_response>",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "get_time",
    "true",
    "3",
    "```",
]


def _in_one_block(calls: list[ToolCall]) -> str:
    """Several calls back to back inside one `<|tool_call>` block (mlx-lm reads these)."""
    bodies = (render_calls([call], FORMAT)[len("<|tool_call>") : -len("<tool_call|>")] for call in calls)
    return "<|tool_call>" + "".join(bodies) + "<tool_call|>"


def _with_bare_openers(calls: list[ToolCall]) -> str:
    """Each call opened by `<|tool_call>:NAME{` (the `call` word left out; vLLM reads these)."""
    return "".join(
        "<|tool_call>:" + render_calls([call], FORMAT)[len("<|tool_call>call:") :] for call in calls
    )


CASE = FormatCase(
    name=FORMAT,
    soup=marked(MARKERS),
    soup_tools=[None, [], TOOLS],
    calls=json_calls(keys=texts, texts=texts, nested_keys=texts),
    renderings={
        "gemma4": reads_back(lambda calls: render_calls(calls, FORMAT)),
        # Several calls in one block, and the bare `<|tool_call>:NAME{...}` opener.
        "one_block": reads_back(_in_one_block),
        "bare_opener": reads_back(_with_bare_openers),
    },
    read_without_tools=("gemma4", "one_block", "bare_opener"),
    round_trips=60,
)


def test_large_and_deep_inputs_finish() -> None:
    many = "<|tool_call>call:f{" + ",".join(f"k{i}:{i}" for i in range(50_000)) + "}<tool_call|>"
    assert len(parse(many, format=FORMAT).calls[0].arguments) == 50_000
    deep = "<|tool_call>call:f{a:" + "[" * 100_000 + "}<tool_call|>"
    assert parse(deep, format=FORMAT).calls == []


def test_detected_from_the_gemma4_template() -> None:
    from pydantic_mlx.parsers import detect_format

    template = "{{- '<|tool_call>call:' + function['name'] + '{' -}}{{- '}<tool_call|>' -}}"
    assert detect_format(template) == FORMAT


@pytest.mark.parametrize(
    ("text", "reasoning"),
    [
        # vLLM test_gemma4_regex_and_bare_calls.py: the model drops <|tool_call> where its answer begins.
        (
            f"<|channel>thought\nI need to read the entry source file.\n<channel|>call:bash{{command:{Q}cat /work/src/entry.c{Q}}}",
            "I need to read the entry source file.\n",
        ),
        (f"call:web-search{{query:{Q}gemma 4 release{Q}}}", None),
        (f"  call:fs.read_file{{path:{Q}/work/Makefile{Q}}}<tool_call|>", None),
    ],
)
def test_bare_call_where_the_answer_begins(text: str, reasoning: str | None) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format)
        assert len(result.calls) == 1
        assert result.content is None and result.reasoning == reasoning
        assert result.errors == []


def test_bare_call_prefix_elsewhere_is_prose() -> None:
    for text in ("Give me a call: 555-1234", f"Use call:bash{{command:{Q}ls{Q}}} in a note."):
        result = parse(text, format=FORMAT)
        assert result.content == text
        assert result.calls == [] and result.errors == []
