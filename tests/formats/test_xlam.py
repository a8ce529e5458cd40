"""xLAM-2 calls: the answer is a bare JSON list `[{"name": ..., "arguments": {...}}]`."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from pydantic_mlx.parsers import ToolCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import xlam
from pydantic_mlx.parsers.formats._syntax import CallSyntax, JsonValue

from . import FormatCase, assert_reads, json_calls, marked, reads_back, tool

TOOLS = [tool("get_weather", city={"type": "string"}), tool("get_time")]
PARIS = ToolCall("get_weather", {"city": "Paris"})


@pytest.mark.parametrize("format", ["xlam", "auto"])
@pytest.mark.parametrize(
    ("text", "reasoning", "calls"),
    [
        # As vLLM's xlam parser tests write xLAM-2 outputs.
        ('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', None, [PARIS]),
        (
            '[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]',
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        ('```json\n[{"name": "get_weather", "arguments": {"city": "Paris"}}]\n```', None, [PARIS]),
        (
            '<think>The user wants weather.</think>\n[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
            "The user wants weather.",
            [PARIS],
        ),
    ],
)
def test_calls(format: str, text: str, reasoning: str | None, calls: list[ToolCall]) -> None:
    assert_reads(text, format, TOOLS, None, reasoning, calls)


@pytest.mark.parametrize(
    "text",
    [
        "[]",  # the template's "no call needed" answer
        "The list is [1, 2, 3].",
        'Call it like: [{"name": "send_email", "arguments": {}}] later',  # an undeclared tool, in prose
    ],
)
def test_json_that_is_not_a_call_is_text(text: str) -> None:
    result = parse(text, format="xlam", tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (text, [], [])


def test_parse_region_reads_a_call_list_and_rejects_the_rest() -> None:
    # xLAM has no markers; its reader still reads a list handed to it, and only a call list.
    region = CallSyntax("[", JsonValue())
    assert xlam.parse_region(region, '[{"name": "get_time"}]', tool_set(TOOLS)) == [ToolCall("get_time", {})]
    for body in ("[1]", "[]", "get_time()"):
        with pytest.raises(CallSyntaxError):
            xlam.parse_region(region, body, tool_set(TOOLS))


def test_detected_from_the_chat_template() -> None:
    # xLAM-2's template (excerpt of the format instruction it writes).
    template = (
        "The output MUST strictly adhere to the following JSON format, and NO other text MUST be included.\\n"
        'The example format is as follows. ```\\n[{"name": "func_name1", "arguments": {"argument1": "value1", '
        '"argument2": "value2"}}, ... (more tool calls as required)]```'
    )
    assert detect_format(template) == "xlam"


CASE = FormatCase(
    name="xlam",
    soup=marked(['[{"name": "f", "arguments": {}}]', "```json\n", "```", "<think>", "</think>", "[", "]"]),
    soup_tools=[TOOLS, None],
    calls=json_calls(),
    renderings={"answer": reads_back(xlam.render)},
    read_without_tools=("answer",),
    prose=st.just(""),  # an untagged list stands alone
    round_trips=100,
)
