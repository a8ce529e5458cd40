"""OpenBMB MiniCPM3 calls: a ```python block of calls between `<|tool_call_start|>` and `<|tool_call_end|>`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import minicpm3

from . import FormatCase, assert_reads, assert_unread, json_calls, marked, reads_back, tool
from .test_pythonic import argument_names, names

TOOLS = [
    tool("get_weather", city={"type": "string"}, days={"type": "integer"}, options={"type": "object"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As the chat template writes a turn with calls: the thought, the block, the answer.
BLOCK = (
    '<|tool_call_start|>\n```python\nget_weather(city="Paris",days=3)\nget_time()\n```\n<|tool_call_end|>\n'
)
TURN = "<|thought_start|>\nThe user wants the weather.\n<|thought_end|>\n" + BLOCK


@pytest.mark.parametrize("format", ["minicpm3", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TURN + "<|im_end|>", None, "\nThe user wants the weather.\n", [PARIS, ToolCall("get_time", {})]),
        (
            "Let me check.\n" + BLOCK + "It is sunny.",
            "Let me check.\n\nIt is sunny.",
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        (  # the template's `tojson` values: true, null, objects; a string holding a quote and a newline
            '<|tool_call_start|>\n```python\nget_weather(city="a \\"b\\"\\nc",options={"fresh": true, "unit": null})\n'
            "```\n<|tool_call_end|>",
            None,
            None,
            [ToolCall("get_weather", {"city": 'a "b"\nc', "options": {"fresh": True, "unit": None}})],
        ),
        (  # a fence without the language, Python's own spellings
            "<|tool_call_start|>\n```\nget_weather(city='Oslo', days=2)\n```\n<|tool_call_end|>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Oslo", "days": 2})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["pythonic", "auto"])
def test_lfm2s_lists_in_the_same_tokens_stay_pythonic(format: str) -> None:
    text = '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>'
    assert_reads(text, format, TOOLS, None, None, [ToolCall("get_weather", {"city": "Paris"})])


def test_a_bad_line_is_reported_beside_the_good_one() -> None:
    text = "<|tool_call_start|>\n```python\nget_time()\nnot a call\n```\n<|tool_call_end|>"
    result = parse(text, format="minicpm3", tools=TOOLS)
    assert result.calls == [ToolCall("get_time", {})]
    assert [type(e) for e in result.errors] == [MalformedCall]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "get_time()",
        '[get_weather(city="Paris")]',
        "```python\n```",
        "```python\nget_time()",
        "```js\nf()\n```",
    ],
)
def test_rejects_bodies_that_are_not_call_blocks(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        minicpm3.parse_region(minicpm3.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize("text", [BLOCK[:40], BLOCK[:-25], "<|tool_call_start|>\n```py"])
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "minicpm3", TOOLS, TruncatedCall, truncated=True)


def test_detected_from_the_chat_template_not_as_pythonic() -> None:
    # vLLM's MiniCPM3 tool template (examples/tool_chat_template_minicpm3.jinja, excerpt): its
    # `<|tool_call_start|>` is LFM2's too, so the thought markers decide.
    template = (
        "- You should answer in the following format:\\n\\n<|thought_start|>\\n{explain why the user's question "
        "can be answered without calling a function or why you should ask the user for more information or why "
        "you should call one or more functions and your plan to solve the user's question.}\\n<|thought_end|>\\n"
        "<|tool_call_start|>\\n```python\\nfunc1(params_name=params_value, params_name2=params_value2...)\\n"
        "func2(params)\\n```\\n<|tool_call_end|>\\n{answer the user's question directly or ask the user for more "
        "information}\" }}{{- '<|tool_call_start|>\\n```python\\n' }}"
    )
    assert detect_format(template) == "minicpm3"


CASE = FormatCase(
    name="minicpm3",
    soup=marked(
        [
            "<|tool_call_start|>",
            "<|tool_call_end|>",
            "<|thought_start|>",
            "<|thought_end|>",
            "```python\n",
            "```",
            "<|im_end|>",
            "get_time()\n",
            "\n",
        ]
    ),
    soup_tools=[TOOLS, None],
    calls=json_calls(names, keys=argument_names),
    renderings={"template": reads_back(minicpm3.render)},
    read_without_tools=("template",),
    round_trips=60,
)
