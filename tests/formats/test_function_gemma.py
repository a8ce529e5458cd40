"""FunctionGemma calls: `<start_function_call>call:NAME{key:<escape>text<escape>}<end_function_call>`."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import function_gemma

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

E = "<escape>"
TOOLS = [
    tool("get_weather", location={"type": "string"}, unit={"type": "string"}),
    tool("get_time", timezone={"type": "string"}),
    tool("search", query={"type": "string"}, limit={"type": "integer"}),
]
LONDON = ToolCall("get_weather", {"location": "London"})


def call(body: str) -> str:
    return f"<start_function_call>call:{body}<end_function_call>"


@pytest.mark.parametrize("format", ["function_gemma", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (call(f"get_weather{{location:{E}London{E}}}"), None, [LONDON]),
        (  # vLLM's test_multiple_arguments
            call(f"get_weather{{location:{E}San Francisco{E},unit:{E}celsius{E}}}"),
            None,
            [ToolCall("get_weather", {"location": "San Francisco", "unit": "celsius"})],
        ),
        (  # text before the call, and the stop token the model writes after its calls
            f"Let me check the weather for you. {call(f'get_weather{{location:{E}Paris{E}}}')}"
            "<start_function_response>",
            "Let me check the weather for you. ",
            [ToolCall("get_weather", {"location": "Paris"})],
        ),
        (  # two blocks, one call each
            call(f"get_weather{{location:{E}London{E}}}") + call(f"get_time{{timezone:{E}UTC{E}}}"),
            None,
            [LONDON, ToolCall("get_time", {"timezone": "UTC"})],
        ),
        (  # numbers and booleans are bare; an escaped number is the string the model wrote
            call(f"search{{query:{E}42{E},limit:10,exact:true}}"),
            None,
            [ToolCall("search", {"query": "42", "limit": 10, "exact": True})],
        ),
        (  # structure and the block's closer inside a string are text
            call(f"search{{query:{E}a{{b}}, c:d <end_function_call> e{E}}}"),
            None,
            [ToolCall("search", {"query": "a{b}, c:d <end_function_call> e"})],
        ),
        (call("get_time{}") + "<end_of_turn>", None, [ToolCall("get_time", {})]),
        (  # the model stopped before <end_function_call>, the call complete
            f"<start_function_call>call:get_weather{{location:{E}Oslo{E}}}",
            None,
            [ToolCall("get_weather", {"location": "Oslo"})],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get_weather{}",  # no `call:`
        f"call:get_weather{{location:{E}London}}",  # string never closed
        f"call:get_weather{{location:{E}a{E},location:{E}b{E}}}",
        f"call:get_weather{{location:{E}a{E} unit:{E}b{E}}}",  # no comma: the template writes one
        '{"name": "get_weather", "arguments": {}}',
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        function_gemma.parse_region(function_gemma.CALLS[0], body, tool_set(TOOLS))


def test_a_bad_call_after_a_good_one_is_reported_alone() -> None:
    text = f"<start_function_call>call:get_time{{}}call:get_weather{{location:{E}x}}<end_function_call>"
    result = parse(text, format="function_gemma", tools=TOOLS)
    assert result.calls == [ToolCall("get_time", {})]
    assert [type(e) for e in result.errors] == [MalformedCall]


def test_malformed_stays_unread() -> None:
    assert_unread(
        "<start_function_call>get the weather<end_function_call>", "function_gemma", TOOLS, MalformedCall
    )


@pytest.mark.parametrize(
    "text",
    [f"<start_function_call>call:get_weather{{location:{E}Oslo{E}}}", "<start_function_call>call:get_wea"],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "function_gemma", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # FunctionGemma's template (excerpt): tool declarations and the call it writes.
    template = (
        "{{- '<start_function_declaration>' -}}{{- format_function_declaration(tool) | trim }}"
        "{{- '<end_function_declaration>' -}}{{- '<start_function_call>call:' + function['name'] + '{' -}}"
    )
    assert detect_format(template) == "function_gemma"


def _no_escape(text: str) -> bool:
    # `<escape>` is one special token: it never occurs inside a string value.
    return E not in text


TEXTS = st.one_of(
    st.text(max_size=12), st.sampled_from(["<end_function_call>", "<start_function_call>", "}", ","])
).filter(_no_escape)

CASE = FormatCase(
    name="function_gemma",
    soup=marked(
        [
            "<start_function_call>",
            "<end_function_call>",
            "<start_function_response>",
            "<end_of_turn>",
            "call:",
            E,
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "get_time",
            "3",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(keys=TEXTS, texts=TEXTS, nested_keys=TEXTS),
    renderings={"template": reads_back(function_gemma.render)},
    read_without_tools=("template",),
    round_trips=60,
)
