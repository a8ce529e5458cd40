"""Kimi calls: K2 sections with `functions.NAME:IDX` ids, and Kimi-K3's XTML channels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from parsers.conftest import events_agree, stream, unread
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers.formats import kimi_k2

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}
TOOLS = [
    WEATHER,
    {"type": "function", "function": {"name": "fs.read_file", "parameters": {"type": "object"}}},
]

SECTION, SECTION_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CALL, ARGS, CALL_END = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"

K2 = (
    f'{SECTION}{CALL}functions.get_weather:0{ARGS}{{"city": "Paris", "days": 3}}{CALL_END}'
    f'{CALL}functions.get_weather:1{ARGS}{{"city": "Rome"}}{CALL_END}{SECTION_END}<|im_end|>'
)
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3}, id="functions.get_weather:0")
ROME = ToolCall("get_weather", {"city": "Rome"}, id="functions.get_weather:1")


def xtml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


def render_k3(calls: Sequence[ToolCall], *, json_block: bool = False) -> str:
    """A Kimi-K3 `tools` channel, as its chat template writes one."""
    kinds = {
        bool: "boolean",
        type(None): "null",
        int: "number",
        float: "number",
        str: "string",
        dict: "object",
    }
    out = ["<|open|>tools<|sep|>"]
    for index, call in enumerate(calls, 1):
        out.append(f'<|open|>call tool="{xtml_escape(call.name)}" index="{index}"<|sep|>')
        if json_block:
            out.append(f'<|open|>json type="object"<|sep|>{json.dumps(call.arguments)}<|close|>json<|sep|>')
        for key, value in ({} if json_block else call.arguments).items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            kind = kinds.get(type(value), "array")
            out.append(
                f'<|open|>argument key="{xtml_escape(key)}" type="{kind}"<|sep|>{text}<|close|>argument<|sep|>'
            )
        out.append("<|close|>call<|sep|>")
    out.append("<|close|>tools<|sep|>")
    return "".join(out)


K3_PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
K3 = (
    "<|open|>think<|sep|>The user wants weather.<|close|>think<|sep|>"
    "<|open|>response<|sep|>Let me look.<|close|>response<|sep|>"
    + render_k3([K3_PARIS])
    + "<|close|>message<|sep|><|end_of_msg|>"
)


@pytest.mark.parametrize("format", ["kimi_k2", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (K2, None, None, [PARIS, ROME]),
        ("I'll check both." + K2, "I'll check both.", None, [PARIS, ROME]),
        ("<think>two cities</think>" + K2, None, "two cities", [PARIS, ROME]),
        (  # singular section markers, spaces and newlines between the pieces
            f"<|tool_call_section_begin|>\n{CALL} functions.get_weather:0 {ARGS} "
            f'{{"city": "Paris", "days": 3}} {CALL_END}\n<|tool_call_section_end|>',
            None,
            None,
            [PARIS],
        ),
        (  # an id without the functions. prefix
            f'{SECTION}{CALL}get_weather:7{ARGS}{{"city": "Rome"}}{CALL_END}{SECTION_END}',
            None,
            None,
            [ToolCall("get_weather", {"city": "Rome"}, id="get_weather:7")],
        ),
        (  # dotted tool names keep their dots
            f"{SECTION}{CALL}functions.fs.read_file:0{ARGS}{{}}{CALL_END}{SECTION_END}",
            None,
            None,
            [ToolCall("fs.read_file", {}, id="functions.fs.read_file:0")],
        ),
        (  # a lone call without the section markers
            f'{CALL}functions.get_weather:1{ARGS}{{"city": "Rome"}}{CALL_END}',
            None,
            None,
            [ROME],
        ),
        (  # the section end never came; the model stopped by itself with complete calls
            f'{SECTION}{CALL}functions.get_weather:1{ARGS}{{"city": "Rome"}}{CALL_END}',
            None,
            None,
            [ROME],
        ),
        (  # end markers inside argument strings do not end the call
            f'{SECTION}{CALL}functions.get_weather:0{ARGS}{{"city": "{CALL}{ARGS}{CALL_END}{SECTION_END}"}}'
            f"{CALL_END}{SECTION_END}",
            None,
            None,
            [
                ToolCall(
                    "get_weather",
                    {"city": CALL + ARGS + CALL_END + SECTION_END},
                    id="functions.get_weather:0",
                )
            ],
        ),
        (
            '<|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|>'
            '<|open|>argument key="city" type="string"<|sep|>a <|close|>call<|sep|><|close|>tools<|sep|> b'
            "<|close|>argument<|sep|>"
            "<|close|>call<|sep|><|close|>tools<|sep|>",
            None,
            None,
            [ToolCall("get_weather", {"city": "a <|close|>call<|sep|><|close|>tools<|sep|> b"})],
        ),
        (K3, "Let me look.", "The user wants weather.", [K3_PARIS]),
        (  # K3 without thinking: the response channel was opened by the prompt
            "Let me look.<|close|>response<|sep|>" + render_k3([K3_PARIS]) + "<|close|>message<|sep|>",
            "Let me look.",
            None,
            [K3_PARIS],
        ),
        (  # K3 arguments carried as one json block
            render_k3([K3_PARIS], json_block=True),
            None,
            None,
            [K3_PARIS],
        ),
        (  # K3 attribute escapes, and a number typed "number" that is an integer
            '<|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|>'
            '<|open|>argument key="city" type="string"<|sep|>Say "hi" & go<|close|>argument<|sep|>'
            '<|open|>argument key="a&amp;b" type="number"<|sep|>2<|close|>argument<|sep|>'
            "<|close|>call<|sep|><|close|>tools<|sep|>",
            None,
            None,
            [ToolCall("get_weather", {"city": 'Say "hi" & go', "a&b": 2})],
        ),
        (  # the schema has the last word over a mislabelled type
            '<|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|>'
            '<|open|>argument key="days" type="string"<|sep|>5<|close|>argument<|sep|>'
            '<|open|>argument key="city" type="number"<|sep|>10<|close|>argument<|sep|>'
            "<|close|>call<|sep|><|close|>tools<|sep|>",
            None,
            None,
            [ToolCall("get_weather", {"days": 5, "city": "10"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


BARE_COUNTER = f'{SECTION}{CALL}0{ARGS}{{"city": "Tokyo"}}{CALL_END}{SECTION_END}'
READ = {
    "type": "function",
    "function": {
        "name": "read_file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
}
BOOK = {
    "type": "function",
    "function": {
        "name": "book",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    ("tools", "calls"),
    [
        ([WEATHER, READ], [ToolCall("get_weather", {"city": "Tokyo"}, id="0")]),  # only one tool fits
        ([WEATHER], [ToolCall("get_weather", {"city": "Tokyo"}, id="0")]),
        ([WEATHER, BOOK], []),  # two tools fit: no guess
        ([READ], []),  # none fits
        (None, []),  # tools unknown
    ],
)
def test_bare_counter_ids_name_a_tool_only_when_one_fits(tools: Any, calls: list[ToolCall]) -> None:
    result = parse(BARE_COUNTER, format="kimi_k2", tools=tools)
    assert result.calls == calls
    if not calls:
        assert unread(result) == BARE_COUNTER
        assert [e.kind for e in result.errors] == ["malformed_call"]


def test_call_ids_reach_the_stream() -> None:
    _, events = stream(K2, [], format="kimi_k2", tools=TOOLS)
    firsts = [e for e in events if getattr(e, "name", None)]
    assert [getattr(e, "id", None) for e in firsts] == ["functions.get_weather:0", "functions.get_weather:1"]


def test_k3_output_starting_inside_reasoning() -> None:
    # K3's thinking prompt ends with <|open|>think<|sep|>: the output opens inside the reasoning.
    text = K3.removeprefix("<|open|>think<|sep|>")
    result = parse(text, format="kimi_k2", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == (
        "The user wants weather.",
        "Let me look.",
        [K3_PARIS],
    )


def test_k2_output_starting_inside_reasoning() -> None:
    result = parse("two cities</think>" + K2, format="kimi_k2", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("two cities", None, [PARIS, ROME])


@pytest.mark.parametrize(
    "text",
    [
        f'{SECTION}{CALL}functions.get_weather:0{ARGS}{{"city": "Paris"}}{SECTION_END}',  # call end missing
        f"{SECTION}{CALL}functions.get_weather:0{ARGS}not json{CALL_END}{SECTION_END}",
        f'{SECTION}{CALL}functions.get_weather:0 {{"city": "Paris"}}{CALL_END}{SECTION_END}',  # no ARGS
        f'{SECTION}{CALL}{ARGS}{{"city": "Paris"}}{CALL_END}{SECTION_END}',  # no id
        f'{SECTION}{CALL}functions.get_weather.0{ARGS}{{"city": "Paris"}}{CALL_END}{SECTION_END}',  # no :INDEX
        f"{SECTION}{CALL}functions.get_weather:0{ARGS}not json{CALL_END}{CALL}0{ARGS}{{}}{CALL_END}{SECTION_END}",
        f"{SECTION}\n  \n{SECTION_END}",
        f"{SECTION}{CALL}functions.get_weather:0{ARGS}[1]{CALL_END}{SECTION_END}",
        f"{SECTION}{SECTION_END}",
        '<|open|>tools<|sep|><|open|>call index="1"<|sep|><|close|>call<|sep|><|close|>tools<|sep|>',  # no tool
        '<|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|>'
        '<|open|>argument key="city" type="string"<|sep|>Paris<|close|>call<|sep|><|close|>tools<|sep|>',
        '<|open|>tools<|sep|><|open|>call tool="get_weather" index="1"<|sep|><|close|>tools<|sep|>',
        "<|open|>tools<|sep|>I will call a tool<|close|>tools<|sep|>",
    ],
)
def test_malformed_stays_content(text: str) -> None:
    assert_unread(text, "kimi_k2", TOOLS, MalformedCall)


GOOD_K2 = f'{CALL}functions.get_weather:1{ARGS}{{"city": "Rome"}}{CALL_END}'
GOOD_K3 = render_k3([K3_PARIS]).removeprefix("<|open|>tools<|sep|>").removesuffix("<|close|>tools<|sep|>")


@pytest.mark.parametrize(
    ("section", "bad", "good"),
    [
        # K2: arguments that are not JSON, an id without its index, a call that lost its end marker
        (SECTION + "{}" + SECTION_END, f'{CALL}functions.get_weather:0{ARGS}{{"city": "Pa{CALL_END}', [ROME]),
        (SECTION + "{}" + SECTION_END, f"{CALL}functions.get_weather.0{ARGS}{{}}{CALL_END}", [ROME]),
        (SECTION + "{}" + SECTION_END, f'{CALL}functions.get_weather:0{ARGS}{{"city": "Paris"}}', [ROME]),
        # K3: a call without its tool name, an argument without its key
        (
            "<|open|>tools<|sep|>{}<|close|>tools<|sep|>",
            '<|open|>call index="1"<|sep|><|close|>call<|sep|>',
            [K3_PARIS],
        ),
        (
            "<|open|>tools<|sep|>{}<|close|>tools<|sep|>",
            '<|open|>call tool="get_weather"<|sep|><|open|>argument<|sep|>x<|close|>argument<|sep|><|close|>call<|sep|>',
            [K3_PARIS],
        ),
    ],
)
def test_one_bad_call_does_not_sink_its_neighbours(section: str, bad: str, good: list[ToolCall]) -> None:
    good_text = GOOD_K2 if section.startswith(SECTION) else GOOD_K3
    for body, calls in ((bad + good_text, good), (good_text + bad + good_text, good + good)):
        text = "Checking." + section.format(body)
        result = parse(text, format="kimi_k2", tools=TOOLS)
        assert (result.content, result.calls) == ("Checking.", calls)
        [problem] = result.errors
        assert isinstance(problem, MalformedCall) and problem.text == bad
        for cuts in (range(len(text)), range(0, len(text), 7)):
            streamed, events = stream(text, cuts, format="kimi_k2", tools=TOOLS)
            assert streamed == result and events_agree(result, events)


@pytest.mark.parametrize("noise", ["\n", "I will now call:", " functions ", "<|im_end|>"])
def test_noise_between_calls_of_a_section_is_not_content(noise: str) -> None:
    k2 = f'{SECTION}{noise}{CALL}functions.get_weather:0{ARGS}{{"city": "Paris", "days": 3}}{CALL_END}'
    k2 += f"{noise}{GOOD_K2}{noise}{SECTION_END}"
    assert_reads(k2, "kimi_k2", TOOLS, None, None, [PARIS, ROME])
    k3 = f"<|open|>tools<|sep|>{noise}{GOOD_K3}{noise}{GOOD_K3}{noise}<|close|>tools<|sep|>"
    assert_reads(k3, "kimi_k2", TOOLS, None, None, [K3_PARIS, K3_PARIS])


@pytest.mark.parametrize(
    "text",
    [
        f'{SECTION}{CALL}functions.get_weather:0{ARGS}{{"city": "Pa',
        f"{SECTION}{CALL}functions.get_weather:0",
        render_k3([K3_PARIS]).removesuffix("<|close|>call<|sep|><|close|>tools<|sep|>"),
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "kimi_k2", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    "template",
    [
        # Kimi-K2-Instruct (excerpt): tools are declared, calls are not spelled out.
        "{% if tools -%}{{ '<|im_system|>tool_declare<|im_middle|>' -}}{{- tools | tojson -}}",
        # Kimi-K2-Thinking (excerpt)
        "<|tool_calls_section_begin|>{%- for tool_call in message['tool_calls'] -%}"
        "<|tool_call_begin|>{{ formatted_id }}<|tool_call_argument_begin|>",
        # Kimi-K3 (excerpt)
        "{%- macro open_tag(tag, attrs=[]) -%}{{- '<|open|>' + tag -}}",
    ],
)
def test_detected_from_the_chat_template(template: str) -> None:
    assert detect_format(template) == "kimi_k2"


# ---- properties -------------------------------------------------------------------------

SOUP = soup(
    [
        SECTION,
        SECTION_END,
        "<|tool_call_section_begin|>",
        CALL,
        ARGS,
        CALL_END,
        "functions.f:0",
        "<think>",
        "</think>",
        "<|im_end|>",
        "<|open|>",
        "<|close|>",
        "<|sep|>",
        "tools",
        "think",
        "response",
        'call tool="f"',
        'argument key="a" type="number"',
        # Degraded K3 spelling: spaces around a marker's word.
        "<|open|> ",
        " <|sep|>",
        "<|close|>\n",
        "  ",
    ]
)


def expected_k2(calls: list[ToolCall]) -> list[ToolCall]:
    return [ToolCall(c.name, c.arguments, id=f"functions.{c.name}:{i}") for i, c in enumerate(calls)]


def _spaced(text: str, spaces: str) -> str:
    """K3 markup with `spaces` around every marker's word, as degraded outputs write it."""
    for word in ("think", "response", "tools", "call", "argument", "json", "message"):
        text = text.replace(f"<|open|>{word}<|sep|>", f"<|open|>{spaces}{word}{spaces}<|sep|>")
        text = text.replace(f"<|open|>{word} ", f"<|open|>{spaces}{word} ")
        text = text.replace(f"<|close|>{word}<|sep|>", f"<|close|>{spaces}{word}{spaces}<|sep|>")
    return text


CASE = FormatCase(
    name="kimi_k2",
    soup=SOUP,
    soup_tools=[TOOLS],
    calls=CALL_LISTS,
    renderings={
        "k2": lambda calls: (kimi_k2.render(calls), expected_k2(calls)),
        "k3": reads_back(render_k3),
        "k3_json": reads_back(lambda calls: render_k3(calls, json_block=True)),
        "k3_spaced": reads_back(lambda calls: _spaced(render_k3(calls), " \n ")),
    },
    read_without_tools=("k2", "k3_json"),
)


def test_render_keeps_given_ids() -> None:
    call = ToolCall("get_weather", {"city": "Rome"}, id="functions.get_weather:5")
    assert parse(kimi_k2.render([call]), format="kimi_k2").calls == [call]


@pytest.mark.parametrize(
    ("complete", "cut_off", "calls"),
    [
        (K2.removesuffix(f"{SECTION_END}<|im_end|>"), "", [PARIS, ROME]),
        (
            K2.removesuffix(f"{SECTION_END}<|im_end|>"),
            f"{CALL}functions.get_weather:2{ARGS}{{",
            [PARIS, ROME],
        ),
        (render_k3([K3_PARIS]).removesuffix("<|close|>tools<|sep|>"), "", [K3_PARIS]),
        (render_k3([K3_PARIS]).removesuffix("<|close|>tools<|sep|>"), '<|open|>call tool="get_', [K3_PARIS]),
    ],
)
def test_calls_completed_before_a_truncated_section_end_stand(
    complete: str, cut_off: str, calls: list[ToolCall]
) -> None:
    result = parse(complete + cut_off, format="kimi_k2", tools=TOOLS, truncated=True)
    assert result.calls == calls
    # The cut-off call is not content: its text is on its problem.
    assert result.content is None
    assert "".join(e.text for e in result.errors) == (cut_off if cut_off.strip() else "")
    assert [e.kind for e in result.errors] == (["truncated_call"] if cut_off else [])


@pytest.mark.parametrize("fmt", ["kimi_k2", "auto"])
def test_a_call_section_ends_an_unclosed_reasoning_block(fmt: str) -> None:
    # K2-Thinking may open its tool-call section inside <think> without closing it.
    result = parse("Two cities." + K2, format=fmt, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("Two cities.", None, [PARIS, ROME])
    result = parse("<think>Two cities." + K2, format=fmt, tools=TOOLS)
    assert (result.reasoning, result.content, result.calls) == ("Two cities.", None, [PARIS, ROME])


def test_call_markers_outside_a_section_never_reach_the_answer() -> None:
    # The model lost `<|tool_calls_section_begin|><|tool_call_begin|>`: what is left of the markup
    # is dropped, as a stray section end always was (SGLang keeps it in the content).
    text = f'Done.get_weather:0{ARGS}{{"city": "Oslo"}}{CALL_END}{SECTION_END}'
    assert_reads(text, "kimi_k2", TOOLS, 'Done.get_weather:0{"city": "Oslo"}', None, [])


@pytest.mark.parametrize("fmt", ["kimi_k2", "auto"])
def test_k3_answer_that_skips_the_think_channel_is_content(fmt: str) -> None:
    # The prompt opened `<|open|>think<|sep|>`; the model answers in `response` without thinking.
    answer = "<|open|>response<|sep|>Sunny.<|close|>response<|sep|><|close|>message<|sep|>"
    for text, in_reasoning, reasoning in (
        (answer, True, None),
        ("Easy.<|close|>think<|sep|>" + answer, True, "Easy."),
        ("<|open|>think<|sep|>Easy." + answer, False, "Easy."),
    ):
        result = parse(text, format=fmt, tools=TOOLS, in_reasoning=in_reasoning)
        assert (result.content, result.reasoning, result.calls, result.errors) == (
            "Sunny.",
            reasoning,
            [],
            [],
        )
        assert stream(text, range(len(text)), format=fmt, tools=TOOLS, in_reasoning=in_reasoning)[0] == result


@pytest.mark.parametrize("spaces", [" ", "\n", "  \t ", " " * 40])
@pytest.mark.parametrize("fmt", ["kimi_k2", "auto"])
def test_k3_markers_with_spaces_around_their_word(spaces: str, fmt: str) -> None:
    # vLLM's K3 tests: `<|open|>   tools <|sep|>` is the tools marker (issue 12, item 5).
    assert_reads(_spaced(K3, spaces), fmt, TOOLS, "Let me look.", "The user wants weather.", [K3_PARIS])
    json_block = _spaced(render_k3([K3_PARIS], json_block=True), spaces)
    assert_reads(json_block, fmt, TOOLS, None, None, [K3_PARIS])


@pytest.mark.parametrize(
    "text",
    [
        "<|open|> " + "x" * 40 + " <|sep|>",  # a word longer than any marker's
        "<|open|>" + " " * 80 + "tools<|sep|>",  # more spaces than a degraded marker has
        "<|open|> two words <|sep|>",
        "<|close|> tools",
    ],
)
def test_spaced_tags_beyond_the_bounds_are_left_as_written(text: str) -> None:
    result = parse("Ok. " + text, format="kimi_k2", tools=TOOLS)
    assert result.content == "Ok. " + text and result.calls == []


@pytest.mark.parametrize("in_reasoning", [False, True])
def test_the_k3_response_channel_is_the_answer_even_when_it_looks_like_a_call(in_reasoning: bool) -> None:
    # Issue 12, item 8: with format="auto", text in K3's response channel is never an untagged call.
    answer = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    text = f"<|open|>response<|sep|>{answer}<|close|>response<|sep|><|close|>message<|sep|>"
    for fmt in ("kimi_k2", "auto"):
        result = parse(text, format=fmt, tools=TOOLS, in_reasoning=in_reasoning)
        assert (result.content, result.reasoning, result.calls, result.errors) == (answer, None, [], [])
        for cuts in (range(len(text)), range(0, len(text), 6)):
            streamed, events = stream(text, cuts, format=fmt, tools=TOOLS, in_reasoning=in_reasoning)
            assert streamed == result and events_agree(result, events)
