"""OLMo 3 calls: `<function_calls>\\nname(key='value')\\n...\\n</function_calls>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import olmo3

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool
from .test_pythonic import argument_names, names

TOOLS = [
    tool("get_weather", city={"type": "string"}, units={"type": "string"}, days={"type": "integer"}),
    tool("get_time"),
]
NEW_YORK = ToolCall("get_weather", {"city": "New York", "units": "celsius"})


@pytest.mark.parametrize("format", ["olmo3", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (  # the template's own example
            "<function_calls>\nget_weather(city='New York', units='celsius')\n</function_calls><|im_end|>",
            None,
            None,
            [NEW_YORK],
        ),
        (  # one call a line; one without arguments
            "<function_calls>\nget_weather(city='New York', units='celsius')\nget_time()\n</function_calls>",
            None,
            None,
            [NEW_YORK, ToolCall("get_time", {})],
        ),
        (  # JSON's null/true/false and JSON lists and objects, as the template writes non-strings
            '<function_calls>\nget_weather(city=null, days=3, units=true, extra={"a": [1, false]})\n'
            "</function_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": None, "days": 3, "units": True, "extra": {"a": [1, False]}})],
        ),
        (  # a value spanning lines, and one that mentions the closer, stay values
            "<function_calls>\nget_weather(city='line 1\nline 2', units='</function_calls>')\n</function_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": "line 1\nline 2", "units": "</function_calls>"})],
        ),
        (  # OLMo 3 Think reasons first; text around the block is content
            "<think>Weather.</think>Checking.\n<function_calls>\nget_time()\n</function_calls>\nDone.",
            "Checking.\n\nDone.",
            "Weather.",
            [ToolCall("get_time", {})],
        ),
        (  # a list of calls written inside the tags is read too
            "<function_calls>[get_time(), get_weather(city='Oslo')]</function_calls>",
            None,
            None,
            [ToolCall("get_time", {}), ToolCall("get_weather", {"city": "Oslo"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["olmo3", "auto"])
def test_a_tag_that_holds_no_call_is_text(format: str) -> None:
    text = "Calls go between <function_calls> tags."
    assert_reads(text, format, TOOLS, text, None, [])


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get_weather",
        "get_weather('Paris')",  # positional
        "get_weather(city=Paris)",  # not a literal
        "print(1 + 2)\nget_time(",
        "get_time() get_time()",
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        olmo3.parse_region(olmo3.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize("format", ["olmo3", "auto"])
@pytest.mark.parametrize("bad", ["bad(x=b'z')", "get_weather(days=1e999)"])  # bytes; a number JSON lacks
def test_a_line_that_is_no_call_is_reported_and_its_neighbours_kept(format: str, bad: str) -> None:
    # vLLM's olmo3 tests: one unconvertible call no longer drops its siblings.
    text = f"<function_calls>\n{bad}\nget_weather(city='New York', units='celsius')\n</function_calls>"
    result = parse(text, format=format, tools=TOOLS)
    assert (result.content, result.calls) == (None, [NEW_YORK])
    assert [(type(e), e.text) for e in result.errors] == [(MalformedCall, bad)]


def test_malformed_stays_unread() -> None:
    assert_unread("<function_calls>\nget_weather(city=)\n</function_calls>", "olmo3", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text", ["<function_calls>\nget_time()\n", "<function_calls>\nget_weather(city='New Y"]
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "olmo3", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template() -> None:
    # OLMo 3's template (excerpt).
    template = (
        '{{- "\\n\\nYou have access to the following functions. To call functions, respond with a pythonic '
        'function call wrapped in <function_calls></function_calls> XML tags." }}'
    )
    assert detect_format(template) == "olmo3"


CASE = FormatCase(
    name="olmo3",
    soup=marked(
        [
            "<function_calls>",
            "</function_calls>",
            "<think>",
            "</think>",
            "<|im_end|>",
            "f(a=1)",
            "'",
            "\n",
            "(",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(names, keys=argument_names),
    renderings={"template": reads_back(olmo3.render)},
    read_without_tools=("template",),
    round_trips=100,
)
