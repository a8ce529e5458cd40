"""gpt-oss harmony output: analysis → reasoning, final/preamble → content, to=functions.X → call.

Examples follow the harmony spec (openai/harmony docs/format.md), vLLM's harmony tests and
llama.cpp's test-chat.cpp gpt-oss cases; expected values are ours.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.conftest import events_agree, stream, unread
from pydantic_mlx.parsers import (
    MalformedCall,
    ToolCall,
    TruncatedCall,
    UnknownTool,
    parse,
    render_calls,
)

from . import FormatCase, json_calls, marked, reads_back, tool

FORMAT = "harmony"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


TOOLS = [tool("get_weather", location={"type": "string"}), tool("get_time"), tool("special_function")]


def check(
    text: str, content: str | None, reasoning: str | None, calls: list[ToolCall], **kwargs: Any
) -> None:
    for format in (FORMAT, "auto"):
        result = parse(text, format=format, tools=TOOLS, **kwargs)
        assert (result.content, result.reasoning, result.calls) == (content, reasoning, calls), format
        assert stream(text, list(range(len(text))), format=format, tools=TOOLS, **kwargs)[0] == result
        for leaked in (result.content or "", result.reasoning or ""):
            assert "<|" not in leaked and "|>" not in leaked


WEATHER_SF = ToolCall("get_weather", {"location": "San Francisco"})


def test_spec_example_of_a_tool_call() -> None:
    text = (
        "<|channel|>analysis<|message|>Need to use function get_weather.<|end|><|start|>assistant"
        '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}<|call|>'
    )
    check(text, None, "Need to use function get_weather.", [WEATHER_SF])


def test_stop_token_missing_from_the_text() -> None:
    # Generation stops on <|call|>; many servers leave it out of the text.
    text = '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}'
    check(text, None, None, [WEATHER_SF])


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>",
        "<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>",
        "<|channel|>commentary to=functions.get_weather json<|message|>",
        "<|channel|>commentary to=functions.get_weather<|message|>",
        "<|start|>assistant to=functions.get_weather<|channel|>commentary<|constrain|>json<|message|>",
        "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>",
        # A function recipient on the analysis channel is still a call (vLLM, llama.cpp).
        "<|channel|>analysis to=functions.get_weather<|message|>",
        "<|start|>assistant to=functions.get_weather<|channel|>analysis<|constrain|>json<|message|>",
    ],
)
def test_every_header_shape(header: str) -> None:
    for end in ("<|call|>", "<|end|>", ""):
        check(header + '{"location": "San Francisco"}' + end, None, None, [WEATHER_SF])


def test_preamble_is_content() -> None:
    text = (
        "<|channel|>analysis<|message|>{long chain of thought}<|end|><|start|>assistant<|channel|>commentary"
        "<|message|>**Action plan**:\n1. Generate an HTML file\n---\nWill start executing<|end|><|start|>assistant"
        '<|channel|>commentary to=functions.generate_file<|constrain|>json<|message|>{"template": "basic_html", '
        '"path": "index.html"}<|call|>'
    )
    check(
        text,
        "**Action plan**:\n1. Generate an HTML file\n---\nWill start executing",
        "{long chain of thought}",
        [ToolCall("generate_file", {"template": "basic_html", "path": "index.html"})],
    )


def test_final_answer() -> None:
    text = (
        '<|channel|>analysis<|message|>User asks: "sum 1 to 100". That\'s 5050.<|end|>'
        "<|start|>assistant<|channel|>final<|message|>The sum is **5050**.<|return|>"
    )
    check(text, "The sum is **5050**.", 'User asks: "sum 1 to 100". That\'s 5050.', [])


def test_sequential_calls_then_final() -> None:
    text = (
        "<|channel|>analysis<|message|>Thinking<|end|>"
        '<|start|>assistant to=functions.get_weather<|channel|>commentary<|constrain|>json<|message|>{"location": "Paris"}<|call|>'
        '<|start|>assistant to=functions.get_time<|channel|>commentary<|constrain|>json<|message|>{"timezone": "UTC"}<|call|>'
        "<|start|>assistant<|channel|>final<|message|>Done"
    )
    check(
        text,
        "Done",
        "Thinking",
        [ToolCall("get_weather", {"location": "Paris"}), ToolCall("get_time", {"timezone": "UTC"})],
    )


def test_code_in_arguments() -> None:
    text = (
        "<|channel|>analysis<|message|>Thinking about edit...<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.edit <|constrain|>json<|message|>{"oldString": "if (part < railCount - 1) {", '
        '"newString": "if (part < 4) {", "replaceAll": false}'
    )
    check(
        text,
        None,
        "Thinking about edit...",
        [
            ToolCall(
                "edit",
                {
                    "oldString": "if (part < railCount - 1) {",
                    "newString": "if (part < 4) {",
                    "replaceAll": False,
                },
            )
        ],
    )


def test_output_starting_after_a_channel_prompt() -> None:
    check("analysis<|message|>hmm<|end|><|start|>assistant<|channel|>final<|message|>Hi", "Hi", "hmm", [])
    check("final<|message|>Hi<|return|>", "Hi", None, [])


def test_in_reasoning_starts_inside_the_analysis_message() -> None:
    check(
        "thinking on<|end|><|start|>assistant<|channel|>final<|message|>Yes",
        "Yes",
        "thinking on",
        [],
        in_reasoning=True,
    )


def test_truncated_final_answer_is_content() -> None:
    text = "<|channel|>analysis<|message|>I'm thinking.<|end|><|start|>assistant<|channel|>final<|message|>I'm in the mid"
    check(text, "I'm in the mid", "I'm thinking.", [], truncated=True)


def test_builtin_tool_message_is_neither_call_nor_content() -> None:
    text = (
        "<|channel|>analysis<|message|>I will execute python to say hello<|end|>"
        '<|start|>assistant<|channel|>commentary to=python <|constrain|>code<|message|>print("hello")'
    )
    check(text, None, "I will execute python to say hello", [])
    errors = parse(text, format=FORMAT).errors
    assert [type(e) for e in errors] == [UnknownTool]


def test_call_to_an_undeclared_function_is_a_call_and_a_problem() -> None:
    result = parse(
        "<|channel|>commentary to=functions.launch json<|message|>{}<|call|>", format=FORMAT, tools=TOOLS
    )
    assert result.calls == [ToolCall("launch", {})]
    assert [e.kind for e in result.errors] == ["unknown_tool"]


def test_argument_types_are_kept_and_double_encoded_json_is_read() -> None:
    head = "<|channel|>commentary to=functions.f <|constrain|>json<|message|>"
    args = {"n": 3, "s": "3", "x": 48.8566, "b": True, "z": None, "l": [1, {"k": "v"}]}
    assert parse(head + json.dumps(args), format=FORMAT).calls == [ToolCall("f", args)]
    assert parse(head + json.dumps(json.dumps(args)), format=FORMAT).calls == [ToolCall("f", args)]


def test_truncated_arguments_are_never_a_call() -> None:
    text = '<|channel|>commentary to=functions.special_function <|constrain|>json<|message|>{"arg1"'
    for truncated in (True, False):
        result = parse(text, format=FORMAT, truncated=truncated)
        assert result.calls == []
        assert [type(e) for e in result.errors] == [TruncatedCall]


@pytest.mark.parametrize(
    "text",
    [
        "<|channel|>commentary to=functions.f <|constrain|>json<|message|>not json<|call|>",
        "<|channel|>commentary to=functions.f <|constrain|>json<|message|>[1, 2]<|call|>",
        "<|channel|>commentary to=functions. json<|message|>{}<|call|>",
        "<|channel|>commentary to=functions.f <|end|> stray<|message|>{}<|call|>",
    ],
)
def test_malformed_calls_are_not_calls(text: str) -> None:
    result = parse(text, format=FORMAT)
    assert result.calls == []
    assert len(result.errors) == 1 and isinstance(result.errors[0], MalformedCall | TruncatedCall)


def test_malformed_header_never_crashes() -> None:
    text = (
        "<|channel|>analysis<|message|>thinking<|end|><|start|>assistant<|channel|>commentary<|message|>thinking<|end|>"
        '<|start|>assistant<|channel|>final {"answer": "hi"}<|return|>'
    )
    result = parse(text, format=FORMAT, tools=TOOLS)
    assert result.calls == []
    assert result.reasoning == "thinking"


def test_plain_text_passes_through() -> None:
    text = "No channels here, just an answer with <b>html</b> and [brackets] {braces}."
    assert parse(text, format=FORMAT, tools=TOOLS).content == text


@pytest.mark.parametrize("marker", ["<|call|>", "<|end|>", "<|return|>", "<|start|>assistant", '\\"<|call|>'])
def test_end_tokens_inside_argument_strings_do_not_end_the_call(marker: str) -> None:
    # A JSON string is read as one: the `<|call|>` in it is part of the value (issue 12, item 3).
    location = f"Paris{marker}Texas"
    text = (
        f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
        f"{json.dumps({'location': location})}<|call|>"
    )
    check(text, None, None, [ToolCall("get_weather", {"location": location})])


def test_end_tokens_inside_analysis_text_are_reasoning() -> None:
    # An analysis message ends with <|end|>; <|call|> and <|return|> end other messages only.
    thought = "I end a call with <|call|> and an answer with <|return|>."
    answer = "<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>"
    for text, in_reasoning in (
        (f"<|channel|>analysis<|message|>{thought}{answer}", False),
        (thought + answer, True),
    ):
        for format in (FORMAT, "auto"):
            result = parse(text, format=format, tools=TOOLS, in_reasoning=in_reasoning)
            assert (result.content, result.reasoning, result.calls, result.errors) == (
                "Done.",
                thought,
                [],
                [],
            )
            streamed = stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=in_reasoning)
            assert streamed[0] == result


@pytest.mark.parametrize("content_type", [" json", "<|constrain|>json", " <|constrain|>json"])
@pytest.mark.parametrize("channel", ["final", "commentary"])
def test_a_content_type_in_an_answer_header_never_leaks(content_type: str, channel: str) -> None:
    # llama.cpp's gpt-oss tests: `<|channel|>final <|constrain|>json<|message|>{...}` is the answer.
    answer = '{"amount": 12.5, "currency": "EUR"}'
    text = (
        "<|channel|>analysis<|message|>Reply in JSON.<|end|>"
        f"<|start|>assistant<|channel|>{channel}{content_type}<|message|>{answer}<|return|>"
    )
    check(text, answer, "Reply in JSON.", [])


@pytest.mark.parametrize(
    ("text", "content", "reasoning"),
    [
        ("<|channel|>commentary to=assistant<|channel|>analysis<|message|>Hmm.<|end|>", None, "Hmm."),
        (
            "<|channel|>analysis<|message|>Hmm.<|end|><|start|>assistant"
            "<|channel|>commentary to=assistant<|channel|>final<|message|>Hi!",
            "Hi!",
            "Hmm.",
        ),
        ("<|channel|>commentary to=assistant<|message|>One moment.<|end|>", "One moment.", None),
    ],
)
def test_a_message_to_the_assistant_is_read_by_its_channel(
    text: str, content: str | None, reasoning: str | None
) -> None:
    # llama.cpp's gpt-oss tests: `to=assistant` names no tool; the channel decides what the text is.
    check(text, content, reasoning, [])
    assert parse(text, format=FORMAT, tools=TOOLS).errors == []


@pytest.mark.parametrize("truncated", [True, False])
@pytest.mark.parametrize(
    "text",
    [
        " to=functions.get_weather<|channel|>commentary <|constrain|>json",
        " to=functions.get_weather<|channel|>commentary",
        '<|channel|>analysis<|message|>Look it up.<|end|> to=functions.get_weather<|channel|>commentary json<|message|>{"loc',
    ],
)
def test_a_call_cut_inside_its_header_is_an_unread_call(text: str, truncated: bool) -> None:
    # The output began at the recipient (the prompt ended with `<|start|>assistant`) and stopped
    # before the arguments were complete: no call, and none of its markup in the answer.
    for format in (FORMAT, "auto"):
        result = parse(text, format=format, tools=TOOLS, truncated=truncated)
        assert (result.content, result.calls) == (None, [])
        [problem] = result.errors
        assert isinstance(problem, TruncatedCall) and text.endswith(problem.text)
        assert stream(text, range(len(text)), format=format, tools=TOOLS, truncated=truncated)[0] == result


# -- properties ---------------------------------------------------------------------------------

_SPECIAL = ("<|call|>", "<|end|>", "<|return|>", "<|start|>assistant")


# Harmony's end tokens may stand inside a JSON string: the call still ends at the one after it.
texts = st.text(max_size=12) | st.sampled_from(_SPECIAL)
MARKERS = [
    "<|channel|>",
    "<|message|>",
    "<|start|>",
    "assistant",
    "<|end|>",
    "<|call|>",
    "<|return|>",
    "<|constrain|>",
    "analysis",
    "commentary",
    "final",
    " to=",
    "functions.",
    "json",
    "{",
    "}",
    '"a"',
    ":",
    " ",
    "\n",
    "<|channel|>analysis<|message|>",
    "<|channel|>final<|message|>",
    " to=functions.f",
]


CASE = FormatCase(
    name=FORMAT,
    soup=marked(MARKERS),
    soup_tools=[None, [], TOOLS],
    calls=json_calls(keys=texts, texts=texts, nested_keys=texts),
    renderings={"harmony": reads_back(lambda calls: render_calls(calls, FORMAT))},
    read_without_tools=("harmony",),
    round_trips=60,
    regions_without_calls=True,
)


@SETTINGS
@given(
    # Stripped rather than filtered for it: filtering whitespace-edged texts out rejected so many
    # that hypothesis's health check failed now and then (`filter_too_much`).
    reasoning=texts.map(str.strip).filter(lambda t: "<|" not in t and t != ""),
    answer=texts.map(str.strip).filter(lambda t: "<|" not in t and t != ""),
)
def test_channels_never_leak_markers(reasoning: str, answer: str) -> None:
    text = f"<|channel|>analysis<|message|>{reasoning}<|end|><|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
    result = parse(text, format=FORMAT)
    assert (result.reasoning, result.content) == (reasoning, answer)


def test_adversarial_headers_parse_in_linear_time() -> None:
    # A backtracking header pattern would take 2**40 steps on the first of these.
    for header in ("a." * 40 + "!", "a." * 100_000 + "!", " a" * 100_000 + "!"):
        text = f"<|channel|>commentary to=functions.f {header}<|message|>{{}}<|call|>"
        result = parse(text, format=FORMAT)
        assert result.calls == [] and unread(result) == text


def test_recipient_without_the_functions_namespace_is_a_call() -> None:
    text = '<|channel|>commentary to=get_weather <|constrain|>json<|message|>{"location": "Paris"}<|call|>'
    for tools in (None, TOOLS):
        result = parse(text, format=FORMAT, tools=tools)
        assert result.calls == [ToolCall("get_weather", {"location": "Paris"})]
        assert result.errors == []


def test_builtin_recipient_declared_as_a_tool_is_a_call() -> None:
    text = '<|channel|>commentary to=browser.search json<|message|>{"query": "mlx"}<|call|>'
    assert parse(text, format=FORMAT).calls == []
    declared = [*TOOLS, tool("browser.search")]
    assert parse(text, format=FORMAT, tools=declared).calls == [ToolCall("browser.search", {"query": "mlx"})]


def test_detected_from_the_gpt_oss_template() -> None:
    from pydantic_mlx.parsers import detect_format

    template = (
        '{{- "<|start|>assistant<|channel|>analysis<|message|>" + message.thinking + "<|end|>" }}'
        '{{- "<|start|>assistant to=" + "functions." + tool_call.name + "<|channel|>commentary " }}'
    )
    assert detect_format(template) == FORMAT


def test_output_starting_at_the_recipient() -> None:
    # llama.cpp test-chat.cpp "Tool call with constraint": the prompt ended with <|start|>assistant.
    text = ' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}'
    check(text, None, None, [ToolCall("special_function", {"arg1": 1})])


def test_recipient_text_inside_prose_is_prose() -> None:
    text = "<|channel|>final<|message|>Send it to=functions.foo later.<|return|>"
    result = parse(text, format=FORMAT)
    assert result.content == "Send it to=functions.foo later."
    assert result.calls == [] and result.errors == []


@pytest.mark.parametrize(
    "answer",
    [
        '{"name": "get_time", "arguments": {}}',
        '```json\n{"name": "get_weather", "arguments": {"location": "Oslo"}}\n```',
        "[get_time()]",
    ],
)
@pytest.mark.parametrize(
    "header", ["<|channel|>final<|message|>", "<|channel|>final <|constrain|>json<|message|>"]
)
def test_the_final_channel_is_the_answer_even_when_it_looks_like_a_call(header: str, answer: str) -> None:
    # Issue 12, item 8: with format="auto" (whose other formats read untagged calls), a gpt-oss
    # final answer is never read as a small model's bare call.
    text = f"<|channel|>analysis<|message|>The user wants JSON.<|end|><|start|>assistant{header}{answer}<|return|>"
    for format in (FORMAT, "auto"):
        result = parse(text, format=format, tools=TOOLS)
        assert (result.content, result.calls, result.errors) == (answer, [], [])
        for cuts in (range(len(text)), range(0, len(text), 5)):
            streamed, events = stream(text, cuts, format=format, tools=TOOLS)
            assert streamed == result and events_agree(result, events)
    # Outside the answer channel, auto still reads the habit.
    assert parse(answer.replace("```json\n", "").replace("\n```", ""), format="auto", tools=TOOLS).calls
