"""Phi-4-mini calls: `functools[{"name": ..., "arguments": {...}}]` where the answer begins."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import phi4_mini

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_weather", city={"type": "string"}), tool("get_time")]
PARIS = ToolCall("get_weather", {"city": "Paris"})


@pytest.mark.parametrize("format", ["phi4_mini", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        # As vLLM's phi4mini parser reads Phi-4-mini's output.
        ('functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|end|>', None, [PARIS]),
        (
            '\nfunctools[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
            '{"name": "get_time", "arguments": {}}]',
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        (  # `parameters` for `arguments`; text after the list is content
            'functools[{"name": "get_weather", "parameters": {"city": "Paris"}}] Checking.',
            " Checking.",
            [PARIS],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, content, None, calls)


@pytest.mark.parametrize("format", ["phi4_mini", "auto"])
@pytest.mark.parametrize(
    "text",
    [
        "import functools\nfunctools.partial(f, 1)",  # Python's module, at the start or not
        "functools.reduce is handy.",
        'Use it like this: functools[{"name": "get_time", "arguments": {}}]',  # not where the answer begins
        "functools [1, 2, 3]",
    ],
)
def test_functools_in_prose_is_text(format: str, text: str) -> None:
    assert_reads(text, format, TOOLS, text, None, [])


@pytest.mark.parametrize("body", ["", "[]", ".partial(f)", '[{"arguments": {}}]', '[{"name": "f"}, 5]'])
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        phi4_mini.parse_region(phi4_mini.CALLS[0], body, tool_set(TOOLS))


def test_a_call_list_that_does_not_read_is_unread_not_text() -> None:
    assert_unread('functools[{"name": "get_time", "arguments": {}}, 5]', "phi4_mini", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text", ['functools[{"name": "get_time", "arguments": {}}', 'functools[{"name": "get_ti']
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "phi4_mini", TOOLS, TruncatedCall, truncated=True)
    assert parse(text, format="phi4_mini", tools=TOOLS).calls == []


def test_detected_from_the_chat_template() -> None:
    # Phi-4-mini-instruct's template (excerpt): tools between <|tool|> and <|/tool|>.
    template = (
        "{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}"
        "{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + "
        "'<|end|>' }}"
    )
    assert detect_format(template) == "phi4_mini"


CASE = FormatCase(
    name="phi4_mini",
    soup=marked(["functools", "<|end|>", '[{"name": "f", "arguments": {}}]', "[", "{", "]", " "]),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"answer": reads_back(phi4_mini.render)},
    read_without_tools=("answer",),
    prose=st.just(""),  # `functools` opens calls only where the answer begins
    round_trips=100,
)


@pytest.mark.parametrize("format", ["phi4_mini", "auto"])
def test_dropped_control_tokens_do_not_begin_the_answer(format: str) -> None:
    text = '<|im_start|> <|end|>\nfunctools[{"name": "get_time", "arguments": {}}]'
    result = parse(text, format=format, tools=TOOLS, drop=["<|im_start|>"])
    assert (result.content, result.calls, result.errors) == (None, [ToolCall("get_time", {})], [])
    # Not dropped, the same text is the answer's beginning, and `functools` is text after it.
    assert parse(text.replace("<|end|>", ""), format=format, tools=TOOLS).calls == []
