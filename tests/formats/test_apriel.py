"""ServiceNow Apriel: reasoning ended by `[BEGIN FINAL RESPONSE]`, calls in `<tool_calls>[...]</tool_calls>`."""

from __future__ import annotations

import pytest

from pydantic_mlx._request_plan import prompt_opens_reasoning
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers.formats import apriel, reasoning_pairs

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool

TOOLS = [tool("get_weather", city={"type": "string"}, days={"type": "integer"}), tool("get_time")]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As Apriel-1.6's template writes an assistant turn: reasoning, the marker, the answer, the calls.
TURN = (
    "The user wants the weather in Paris.\n[BEGIN FINAL RESPONSE]\nLet me check.\n"
    '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]</tool_calls>\n<|end|>\n'
)


@pytest.mark.parametrize("format", ["apriel", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TURN, "\nLet me check.\n\n\n", "The user wants the weather in Paris.\n", [PARIS]),
        (  # two calls in one list; a past turn's arguments are a JSON string, with an "id"
            'Two cities.\n[BEGIN FINAL RESPONSE]\n<tool_calls>[{"name": "get_weather", "arguments": '
            '"{\\"city\\": \\"Oslo\\"}", "id": "call_1"}, {"name": "get_time", "arguments": {}}]</tool_calls>',
            None,
            "Two cities.\n",
            [ToolCall("get_weather", {"city": "Oslo"}, id="call_1"), ToolCall("get_time", {})],
        ),
        (  # the list written before the marker ends the reasoning: it is the answer
            'I will call it.\n<tool_calls>[{"name": "get_time", "arguments": {}}]</tool_calls>',
            None,
            "I will call it.\n",
            [ToolCall("get_time", {})],
        ),
        (  # a prose answer; the closer inside a string is part of the value
            'Q.\n[BEGIN FINAL RESPONSE]\n<tool_calls>[{"name": "get_weather", "arguments": '
            '{"city": "a </tool_calls> b"}}]</tool_calls>',
            None,
            "Q.\n",
            [ToolCall("get_weather", {"city": "a </tool_calls> b"})],
        ),
        ("Easy.\n[BEGIN FINAL RESPONSE]\nHello!\n<|end|>", "\nHello!\n", "Easy.\n", []),
    ],
)
def test_calls_after_the_prompt_opened_reasoning(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls, in_reasoning=True)


def test_the_end_marker_of_apriel_1_5_is_markup_where_the_format_is_named() -> None:
    text = "Think.\n[BEGIN FINAL RESPONSE] It is sunny. [END FINAL RESPONSE]"
    assert_reads(text, "apriel", TOOLS, " It is sunny. ", "Think.\n", [], in_reasoning=True)
    # Under `auto` it is the answer's text, as other models' brackets are.
    assert_reads(text, "auto", TOOLS, " It is sunny. [END FINAL RESPONSE]", "Think.\n", [], in_reasoning=True)


@pytest.mark.parametrize("format", ["apriel", "auto"])
@pytest.mark.parametrize(
    "text", ["The <tool_calls> tag wraps the list.", "Write <tool_calls>[...]</tool_calls> for calls."]
)
def test_a_tag_that_holds_no_call_is_text(format: str, text: str) -> None:
    assert_reads(text, format, TOOLS, text, None, [])


def test_a_call_list_that_cannot_be_read_stays_unread() -> None:
    text = '<tool_calls>[{"name": "get_weather", "arguments": {"city": Paris}}]</tool_calls>'
    assert_unread(text, "apriel", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        '<tool_calls>[{"name": "get_time", "arguments": {}}]',
        '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Par',
        '<tool_calls>[{"name"',
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "apriel", TOOLS, TruncatedCall, truncated=True)


# Apriel-1.6-15b-Thinker's template (llama.cpp models/templates/Apriel-1.6-15b-Thinker-fixed.jinja,
# excerpt) and Apriel-1.5's (models/templates/unsloth-Apriel-1.5.jinja, excerpt).
APRIEL_1_6 = (
    "{%- set reasoning_prompt -%}\n    You are a thoughtful, systematic AI assistant from ServiceNow Language "
    "Models (SLAM) lab.\n    Analyze each question carefully, present your reasoning step-by-step, then provide "
    "the final\n    response after the marker [BEGIN FINAL RESPONSE].\n{%- endset -%}\n"
    "{%- set reasoning_asst_turn_start = 'Here are my reasoning steps:\\n' -%}\n"
    "        Return all function calls as a list of JSON objects within <tool_calls></tool_calls> XML tags.\n"
    "            {{ '\\n<tool_calls>[' }}\n"
    "        {{ '\\n<|begin_assistant|>\\n' + reasoning_asst_turn_start }}"
)
APRIEL_1_5 = (
    "Return all function calls as a list of json objects within <tool_call></tool_call> XML tags. Each json "
    'object should contain a function name and arguments as follows:\n<tool_calls>[{"name": <function-name-1>, '
    '"arguments": <args-dict-1>}, {"name": <function-name-2>, "arguments": <args-dict-2>},...]</tool_calls>\n'
    "{%- set reasoning_prompt='You are a thoughtful and systematic AI assistant built by ServiceNow Language "
    "Models (SLAM) lab. Before providing an answer, analyze the problem carefully and present your reasoning step "
    "by step. After explaining your thought process, provide the final solution in the following format: "
    "[BEGIN FINAL RESPONSE] ... [END FINAL RESPONSE].' -%}"
)


@pytest.mark.parametrize("template", [APRIEL_1_6, APRIEL_1_5], ids=["1.6", "1.5"])
def test_detected_from_the_chat_template(template: str) -> None:
    # 1.5's instruction also names hermes' <tool_call>: the marker decides.
    assert detect_format(template) == "apriel"


def test_the_prompt_opens_the_reasoning() -> None:
    # The last tokens of a 1.6 prompt, as MLXModel decodes them (trailing newline removed).
    tail = "<|begin_assistant|>\nHere are my reasoning steps:"
    assert prompt_opens_reasoning(tail, "apriel")
    assert prompt_opens_reasoning(tail, "auto")
    assert not prompt_opens_reasoning("<|begin_assistant|>", "apriel")
    assert prompt_opens_reasoning("<|im_start|>assistant\n<think>", "hermes")
    result = parse(TURN, format="apriel", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.calls) == ("The user wants the weather in Paris.\n", [PARIS])


def test_the_marker_ends_a_prompt_opened_block_under_auto() -> None:
    assert ("Here are my reasoning steps:\n", "[BEGIN FINAL RESPONSE]") in reasoning_pairs("auto")


CASE = FormatCase(
    name="apriel",
    soup=marked(
        [
            "<tool_calls>",
            "</tool_calls>",
            "[BEGIN FINAL RESPONSE]",
            "[END FINAL RESPONSE]",
            "Here are my reasoning steps:\n",
            "<|end|>",
            '{"name": "f", "arguments": {}}',
            "[",
            "]",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"template": reads_back(apriel.render)},
    read_without_tools=("template",),
    round_trips=60,
)
