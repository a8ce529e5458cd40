"""Seed-OSS calls: `<seed:tool_call><function=f><parameter=k>v</parameter></function></seed:tool_call>`."""

from __future__ import annotations

import pytest

from parsers.conftest import stream
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import seed_oss

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool(
        "get_weather",
        location={"type": "string"},
        days={"type": "integer"},
        metric={"type": "boolean"},
        options={"type": "object"},
    ),
    tool("get_time"),
]
BARCELONA = ToolCall("get_weather", {"location": "Barcelona, Spain"})
# As Seed-OSS's chat template writes a call (vLLM's seed_oss tests use the same text).
TEMPLATE_CALL = (
    "<seed:tool_call>\n<function=get_weather>\n<parameter=location>Barcelona, Spain</parameter>\n"
    "</function>\n</seed:tool_call>"
)


@pytest.mark.parametrize("format", ["seed_oss", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL, None, None, [BARCELONA]),
        (
            "<seed:think>The user's current thinking budget is 512.</seed:cot_budget_reflect>\nLet me look."
            "</seed:think>\n" + TEMPLATE_CALL + "<seed:eos>",
            None,
            "The user's current thinking budget is 512.</seed:cot_budget_reflect>\nLet me look.",
            [BARCELONA],
        ),
        ("I'll check.\n" + TEMPLATE_CALL + "\nDone.", "I'll check.\n\nDone.", None, [BARCELONA]),
        (  # two functions in one block, as the system prompt allows; one without parameters
            "<seed:tool_call>\n<function=get_weather>\n<parameter=location>Oslo</parameter>\n</function>\n"
            "<function=get_time>\n</function>\n</seed:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"location": "Oslo"}), ToolCall("get_time", {})],
        ),
        (  # values typed by the schema
            "<seed:tool_call>\n<function=get_weather>\n<parameter=location>42</parameter>\n"
            '<parameter=days>3</parameter>\n<parameter=metric>false</parameter>\n<parameter=options>{"a": 1}'
            "</parameter>\n</function>\n</seed:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"location": "42", "days": 3, "metric": False, "options": {"a": 1}})],
        ),
        (  # a multi-line value as the system prompt writes it: the newlines around it are layout
            "<seed:tool_call>\n<function=get_weather>\n<parameter=location>\nline 1\nline 2\n</parameter>\n"
            "</function>\n</seed:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"location": "line 1\nline 2"})],
        ),
        (  # a value that mentions the closers stays a value
            "<seed:tool_call>\n<function=get_weather>\n<parameter=location>x</function></seed:tool_call>y"
            "</parameter>\n</function>\n</seed:tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"location": "x</function></seed:tool_call>y"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["seed_oss", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # With thinking on, the generation prompt ends with `<seed:think>`.
    text = "Need the weather." + TEMPLATE_CALL
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("Need the weather.", None, [BARCELONA])
    assert stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=True)[0] == result


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get_weather",
        "<function=get_weather>\n<parameter=location>Paris</parameter>\n",  # no </function>
        "<function=get_weather>\n<parameter=location>Paris\n</function>",  # value never closed
        "<function=get weather>\n</function>",
        "<function=f>\n<parameter=a>1</parameter>\n<parameter=a>2</parameter>\n</function>",
        "<function=f>\n</function>\nthen text",
        '<function=f>{"a": 1}</function>',
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        seed_oss.parse_region(seed_oss.CALLS[0], body, tool_set(TOOLS))


def test_malformed_stays_unread() -> None:
    text = "<seed:tool_call>\n<function=get_weather>\n<parameter=location>Paris\n</seed:tool_call>"
    assert_unread(text, "seed_oss", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [TEMPLATE_CALL.removesuffix("</seed:tool_call>"), TEMPLATE_CALL[:50], "<seed:tool_call>\n<functi"],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "seed_oss", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template_not_as_qwen3_coder() -> None:
    # Seed-OSS's template (excerpt) writes Qwen3-Coder's `<parameter=` inside its own block.
    template = (
        '{{"工具调用请遵循如下格式:\\n<seed:tool_call>\\n<function=example_function_name>\\n'
        '<parameter=example_parameter_1>value_1</parameter>\\n</function>\\n</seed:tool_call>\\n"}}'
    )
    assert detect_format(template) == "seed_oss"


SOUP = soup(
    [
        "<seed:tool_call>",
        "</seed:tool_call>",
        "<function=",
        "</function>",
        "<parameter=",
        "</parameter>",
        "<seed:think>",
        "</seed:think>",
        "<seed:eos>",
        "get_weather",
    ]
)

CASE = FormatCase(
    name="seed_oss",
    soup=SOUP,
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(seed_oss.render)},
    joiner="\n",
)
