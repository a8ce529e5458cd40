"""Qwen3-Coder XML calls: `<function=NAME><parameter=KEY>VALUE</parameter></function>`."""

from __future__ import annotations

import pytest

from parsers.conftest import events_agree, stream, unread
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers.formats import qwen3_coder

from . import CALL_LISTS, FormatCase, assert_unread, reads_back, soup

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "hours": {"type": "array", "items": {"type": "integer"}},
            },
        },
    },
}
WRITE = {
    "type": "function",
    "function": {
        "name": "write_file",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        },
    },
}
TOOLS = [WEATHER, WRITE]

# As the Qwen3-Coder chat template writes a call.
TEMPLATE_CALL = (
    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
    "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>"
)
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})


@pytest.mark.parametrize("format", ["qwen3_coder", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (TEMPLATE_CALL, None, [PARIS]),
        ("Let me check.\n" + TEMPLATE_CALL + "<|im_end|>", "Let me check.\n", [PARIS]),
        (  # opening <tool_call> dropped; the closing </tool_call> still belongs to the call
            "Checking.\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
            "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
            "Checking.\n",
            [PARIS],
        ),
        (  # bare function, no stray closer
            "<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n"
            "</parameter>\n</function>",
            None,
            [PARIS],
        ),
        (  # two functions in one block
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n"
            "<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # two blocks, text between
            TEMPLATE_CALL + "\nand\n" + TEMPLATE_CALL,
            "\nand\n",
            [PARIS, PARIS],
        ),
        (  # a multi-line value: only the template's own newline on each side is removed
            "<tool_call>\n<function=write_file>\n<parameter=path>\nsrc/a.py\n</parameter>\n"
            "<parameter=content>\n\ndef f():\n    return 1\n\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("write_file", {"path": "src/a.py", "content": "\ndef f():\n    return 1\n"})],
        ),
        (  # values typed by the schema; a string-typed "007" stays a string
            "<tool_call>\n<function=get_weather>\n<parameter=city>\n007\n</parameter>\n"
            "<parameter=metric>\ntrue\n</parameter>\n<parameter=hours>\n[1, 2]\n</parameter>\n"
            "</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "007", "metric": True, "hours": [1, 2]})],
        ),
        (  # a value with markup-looking text in it
            "<tool_call>\n<function=write_file>\n<parameter=content>\n<b>a < b</b>\n</parameter>\n"
            "</function>\n</tool_call>",
            None,
            [ToolCall("write_file", {"content": "<b>a < b</b>"})],
        ),
        (  # code in a value that itself writes `<parameter=` text
            "<tool_call>\n<function=write_file>\n<parameter=content>\ns = '<parameter=x>'\nprint(s)\n"
            "</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("write_file", {"content": "s = '<parameter=x>'\nprint(s)"})],
        ),
        (  # </function> left out, every parameter closed
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # </function> left out between two functions
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
            "<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # all arguments wrapped in one undeclared `arguments` parameter
            '<tool_call>\n<function=get_weather>\n<parameter=arguments>\n{"city": "Paris", "days": 3}\n'
            "</parameter>\n</function>\n</tool_call>",
            None,
            [PARIS],
        ),
        (  # the first block's </tool_call> left out
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n"
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # ... and its </function> too
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # closing markers written inside a value (a file about this very format)
            "<tool_call>\n<function=write_file>\n<parameter=content>\n<function=f>\n<parameter=x>\n1\n"
            "</function>\n</tool_call>\n</parameter>\n</function>\n</tool_call>",
            None,
            [
                ToolCall(
                    "write_file", {"content": "<function=f>\n<parameter=x>\n1\n</function>\n</tool_call>"}
                )
            ],
        ),
        (  # the same without the opening <tool_call>
            "<function=write_file>\n<parameter=content>\na </function> b\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("write_file", {"content": "a </function> b"})],
        ),
        (  # a value missing its </parameter> before </function>, then another block
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</function>\n</tool_call>\n"
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})],
        ),
        (  # no parameters at all
            "<tool_call>\n<function=get_weather>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {})],
        ),
        (  # </parameter> left out before the next parameter and before </function>
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n<parameter=days>\n3\n"
            "</function>\n</tool_call>",
            None,
            [PARIS],
        ),
        (  # </parameter> left out, but a later one closes the next parameter (vLLM's test shape)
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n<parameter=days>\n3\n"
            "</parameter>\n</function>\n</tool_call>",
            None,
            [PARIS],
        ),
        (  # ... and no </parameter> at all, in a bare function (SGLang's implicit parameter close)
            "<function=get_weather>\n<parameter=city>Paris\n<parameter=days>3\n</function>",
            None,
            [PARIS],
        ),
        (  # only the block's </tool_call> closes the last value and the function
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # a line `<parameter=KEY>` for a key the tool does not declare is the value's text
            "<tool_call>\n<function=write_file>\n<parameter=content>\nx\n<parameter=city>\nParis\n"
            "</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("write_file", {"content": "x\n<parameter=city>\nParis"})],
        ),
        (  # ... as is one that does not start a line
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis <parameter=days>3\n"
            "</parameter>\n</function>\n</tool_call>",
            None,
            [ToolCall("get_weather", {"city": "Paris <parameter=days>3"})],
        ),
        (  # the template's newlines left out
            "<tool_call><function=get_weather><parameter=city>Paris</parameter><parameter=days>3"
            "</parameter></function></tool_call>",
            None,
            [PARIS],
        ),
        (  # JSON arguments inside <function=...> (Llama 3.1's custom format): JSON types kept
            '<function=get_weather>{"city": "Paris", "days": 3}</function>',
            None,
            [PARIS],
        ),
        (  # model stopped by itself before </tool_call>: the body is complete
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
            "<parameter=days>\n3\n</parameter>\n</function>\n",
            None,
            [PARIS],
        ),
        (  # reasoning (Qwen3.5 thinks before calling)
            "<think>\nThe user wants weather.\n</think>\n\n" + TEMPLATE_CALL,
            None,
            [PARIS],
        ),
    ],
)
def test_calls(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert result.content == content
    assert result.calls == calls
    assert result.errors == []
    streamed, events = stream(text, range(len(text)), format=format, tools=TOOLS)
    assert streamed == result
    assert events_agree(result, events)


def test_reasoning_is_separated() -> None:
    result = parse("<think>\nweather?\n</think>\n\n" + TEMPLATE_CALL, format="qwen3_coder", tools=TOOLS)
    assert result.reasoning == "\nweather?\n"
    assert result.calls == [PARIS]


@pytest.mark.parametrize("format", ["qwen3_coder", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # Qwen3.5's prompt opens <think>; the model went straight from thinking to its call.
    text = "Need the weather.\n" + TEMPLATE_CALL
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("Need the weather.\n", None, [PARIS])
    streamed, events = stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=True)
    assert streamed == result
    assert events_agree(result, events)


def test_values_without_tools_are_typed_only_when_obvious() -> None:
    text = (
        "<tool_call>\n<function=f>\n<parameter=n>\n5\n</parameter>\n<parameter=v>\n1.10\n</parameter>\n"
        "<parameter=s>\nhello\n</parameter>\n<parameter=b>\nfalse\n</parameter>\n</function>\n</tool_call>"
    )
    assert parse(text, format="qwen3_coder").calls == [
        ToolCall("f", {"n": 5, "v": "1.10", "s": "hello", "b": False})
    ]


def test_undeclared_tool_is_a_call_and_a_problem() -> None:
    text = "<tool_call>\n<function=launch>\n<parameter=n>\n1\n</parameter>\n</function>\n</tool_call>"
    result = parse(text, format="qwen3_coder", tools=TOOLS)
    assert result.calls == [ToolCall("launch", {"n": 1})]
    assert [e.kind for e in result.errors] == ["unknown_tool"]


@pytest.mark.parametrize("format", ["qwen3_coder", "auto"])
@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\n<function=get weather>\n</function>\n</tool_call>",  # not a name
        "<tool_call>\n<function=get_weather>\nParis\n</function>\n</tool_call>",  # text, not parameters
        "<tool_call>\nI will call get_weather.\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=days>\n3\n</parameter>\nextra\n</function>\n</tool_call>",
        '<function=get_weather>{"city": "Paris"</function>',  # cut-off JSON
    ],
)
def test_malformed_stays_content(format: str, text: str) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert result.calls == []
    assert unread(result) == text
    assert any(isinstance(e, MalformedCall) for e in result.errors)


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
        "Sure.\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n",
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "qwen3_coder", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
        "<function=get_weather>\n<parameter=city>\nPar",
        "<function=get_weather>\n<parameter=city>\nParis\n<parameter=days>\n3",
    ],
)
def test_cut_off_body_without_truncation_flag_is_not_a_call(text: str) -> None:
    # The model "stopped" mid-value: no closer ended the value, the function or the block.
    result = parse(text, format="qwen3_coder", tools=TOOLS)
    assert result.calls == []
    assert unread(result) == text


def test_a_parameter_line_ends_a_value_for_any_key_when_the_tool_is_unknown() -> None:
    text = (
        "<tool_call>\n<function=f>\n<parameter=a>\n1\n<parameter=b>\n2\n</parameter>\n"
        "<parameter=c>\nx\n<parameter=a>\ny\n</parameter>\n</function>\n</tool_call>"
    )
    # `a` was given already: its second line stays inside `c`'s value.
    assert parse(text, format="qwen3_coder").calls == [
        ToolCall("f", {"a": 1, "b": 2, "c": "x\n<parameter=a>\ny"})
    ]


def test_text_without_markers_passes_through() -> None:
    text = "Use `<b>` tags, a function f(x) = 2x, and the parameter p.\n"
    assert parse(text, format="qwen3_coder").content == text


def test_detected_from_the_chat_template() -> None:
    # Qwen3-Coder's template (excerpt): it also writes <tool_call>, which hermes claims.
    template = (
        "{{- '\\n<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"
        "{%- for args_name, args_value in tool_call.arguments|items %}"
        "{{- '<parameter=' + args_name + '>\\n' }}{{- args_value }}{{- '\\n</parameter>\\n' }}"
        "{%- endfor %}{{- '</function>\\n</tool_call>' }}"
    )
    assert detect_format(template) == "qwen3_coder"


def test_stepfun_3_7_is_detected_and_read_as_qwen3_coder() -> None:
    # StepFun 3.7-Flash's template (llama.cpp models/templates, excerpt): Qwen3-Coder's calls,
    # `<think>` opened by the generation prompt. vLLM's step3p5 parser reads the same shape.
    template = (
        '{{- "If you choose to call a function ONLY reply in the following format with NO suffix:\\n\\n'
        "<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>\\nvalue_1\\n"
        '</parameter>\\n</function>\\n</tool_call>" }}'
        "{{- '<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"
        "{{- '<parameter=' + args_name + '>\\n' }}{{- args_value }}{{- '\\n</parameter>\\n' }}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
    )
    assert detect_format(template) == "qwen3_coder"
    text = (
        "The user wants the weather.\n</think>\n<tool_call>\n<function=get_weather>\n<parameter=city>\n"
        "Paris\n</parameter>\n</function>\n</tool_call>"
    )
    result = parse(text, format="qwen3_coder", in_reasoning=True)
    assert (result.reasoning, result.content, result.errors) == ("The user wants the weather.\n", None, [])
    assert result.calls == [ToolCall("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("format", ["qwen3_coder", "auto"])
def test_mimo_and_iquest_coder_calls_are_read_as_qwen3_coder(format: str) -> None:
    # MiMo-V2-Flash (vLLM mimo / mimov2_flash, SGLang mimo) and IQuest-Coder (vLLM iquest_coder)
    # write Qwen3-Coder's markup with values inline; a multi-line value is kept exactly (vLLM's
    # MiMo-V2-Flash tests), a function without parameters has no arguments, and the newlines the
    # IQuest template puts between calls are no content.
    text = (
        "Here is the result:\n<tool_call>\n<function=execute_code>\n<parameter=language>python</parameter>\n"
        '<parameter=code>print("hello")</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=note>\n'
        "<parameter=text>This is the value\nthat can span\nmultiple lines</parameter>\n</function>\n</tool_call>\n"
        "<tool_call>\n<function=noop>\n</function>\n</tool_call>"
    )
    result = parse(text, format=format)
    assert (result.content, result.errors) == ("Here is the result:\n\n\n", [])
    assert result.calls == [
        ToolCall("execute_code", {"language": "python", "code": 'print("hello")'}),
        ToolCall("note", {"text": "This is the value\nthat can span\nmultiple lines"}),
        ToolCall("noop", {}),
    ]


# ---- properties -------------------------------------------------------------------------

SOUP = soup(
    [
        "<tool_call>",
        "</tool_call>",
        "<function=",
        "</function>",
        "<parameter=",
        "</parameter>",
        "<think>",
        "</think>",
        "<|im_end|>",
    ]
)


CASE = FormatCase(
    name="qwen3_coder",
    soup=SOUP,
    soup_tools=[TOOLS],
    calls=CALL_LISTS,
    renderings={"qwen3_coder": reads_back(qwen3_coder.render)},
    joiner="\n",
)


def test_step_flash_templates_are_detected_as_qwen3_coder() -> None:
    # Step-3.5/3.7-Flash's template (excerpt) asks for Qwen3-Coder's calls (SGLang reads `step3p5`
    # with its Qwen3-Coder detector).
    template = (
        '{{- "\\n</tools>\\n\\nIf you choose to call a function ONLY reply in the following format with NO '
        "suffix:\\n\\n<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>\\n"
        'value_1\\n</parameter>\\n</function>\\n</tool_call>" }}'
    )
    assert detect_format(template) == "qwen3_coder"
