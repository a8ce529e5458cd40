"""ERNIE-4.5 thinking calls: hermes' `<tool_call>` JSON after reasoning; answers in `<response>`."""

from __future__ import annotations

from typing import Any

import pytest

from parsers.conftest import stream
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import ernie, hermes

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [
    tool("get_current_temperature", location={"type": "string"}),
    tool("get_temperature_unit", location={"type": "string"}, unit={"type": "string"}),
]
BEIJING = ToolCall("get_current_temperature", {"location": "Beijing"})
GUANGZHOU = ToolCall("get_temperature_unit", {"location": "Guangzhou", "unit": "c"})
# vLLM's ernie45 tests (baidu/ERNIE-4.5-21B-A3B-Thinking): calls after the reasoning closed.
TWO_CALLS = (
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Beijing"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_temperature_unit", "arguments": {"location": "Guangzhou", "unit": "c"}}\n'
    "</tool_call>\n"
)


@pytest.mark.parametrize("format", ["ernie", "auto"])
@pytest.mark.parametrize(
    ("text", "reasoning", "calls"),
    [
        (
            '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Beijing"}}\n</tool_call>\n',
            None,
            [BEIJING],
        ),
        (TWO_CALLS, None, [BEIJING, GUANGZHOU]),
    ],
)
def test_calls(format: str, text: str, reasoning: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, None, reasoning, calls)


@pytest.mark.parametrize("format", ["ernie", "auto"])
def test_calls_after_the_reasoning_the_prompt_opened(format: str) -> None:
    # The generation prompt ends with `<think>\n`: the output starts inside the reasoning.
    text = "I need to call two tools to handle these two issues separately.\n</think>\n\n" + TWO_CALLS
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    reasoning = "I need to call two tools to handle these two issues separately.\n"
    assert (result.reasoning, result.content, result.calls, result.errors) == (
        reasoning,
        None,
        [BEIJING, GUANGZHOU],
        [],
    )
    assert stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=True)[0] == result


def test_the_response_wrapper_is_markup_where_the_format_is_named() -> None:
    text = "The user greets me.\n</think>\n\n<response>\nHello! How can I help?\n</response>\n<|im_end|>"
    result = parse(text, format="ernie", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content) == ("The user greets me.\n", "\n\n\nHello! How can I help?\n\n")
    # Under auto it is an XML tag like any other answer's.
    assert "<response>" in (parse(text, format="auto", in_reasoning=True).content or "")


@pytest.mark.parametrize("body", ["", "get_time()", '{"arguments": {}}', '{"name": "f"} x'])
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        ernie.parse_region(ernie.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    assert_unread(
        '<tool_call>\n{"name": "get_time", "arguments": \n</tool_call>', "ernie", TOOLS, MalformedCall
    )


def test_truncated_is_never_a_call() -> None:
    assert_unread(TWO_CALLS[:60], "ernie", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template_not_as_hermes() -> None:
    # ERNIE-4.5-21B-A3B-Thinking's template (excerpt): hermes' tags, ERNIE's system turn.
    template = (
        "{{- '<|im_start|>system\\n<global_setting>\\nthink_mode=True\\n</global_setting><|im_end|>\\n\\n' }}"
        "{{- '<tool_call>\\n' + tool_call | tojson + '\\n</tool_call>' }}"
        '{{- "<|im_start|>assistant\\n<think>\\n" }}'
    )
    assert detect_format(template) == "ernie"


CASE = FormatCase(
    name="ernie",
    soup=marked(
        [
            "<tool_call>",
            "</tool_call>",
            "<think>",
            "</think>",
            "<response>",
            "</response>",
            "<|im_end|>",
            '{"name": "f", "arguments": {}}',
            "\n",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(ernie.render)},
    read_without_tools=("template",),
    joiner="\n",
    round_trips=100,
)


def test_auto_reads_a_shared_region_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # ernie's syntax and reader are hermes': under auto an unreadable <tool_call> is tried by
    # hermes, qwen3_coder and glm, not by hermes' reader a second time.
    from pydantic_mlx.parsers import StreamParser

    calls: list[str] = []
    reader = hermes.parse_region

    def counted(*args: Any) -> Any:
        calls.append("hermes")
        return reader(*args)

    monkeypatch.setattr(hermes, "parse_region", counted)
    monkeypatch.setattr(ernie, "parse_region", counted)
    parser = StreamParser("auto")
    parser.feed("<tool_call>not a call</tool_call>")
    parser.close()
    assert calls == ["hermes"]
