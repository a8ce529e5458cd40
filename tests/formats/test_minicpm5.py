"""MiniCPM5 calls: bare `<function name="f"><param name="k">v</param></function>` elements."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import minicpm5

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup, tool

TOOLS = [
    tool(
        "get_weather",
        city={"type": "string"},
        days={"type": "integer"},
        metric={"type": "boolean"},
        options={"type": "object"},
        note={"type": ["string", "null"]},
    ),
    tool("write_file", path={"type": "string"}, content={"type": "string"}),
    tool("get_time"),
]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
# As MiniCPM5's chat template writes a call: compact, arguments sorted by name.
TEMPLATE_CALL = (
    '<function name="get_weather"><param name="city">Paris</param><param name="days">3</param></function>'
)


@pytest.mark.parametrize("format", ["minicpm5", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (TEMPLATE_CALL, None, None, [PARIS]),
        (  # thinking on: the model closes the reasoning the prompt's `<think>\n` opened
            "<think>\nThe user wants weather.\n</think>\n\n" + TEMPLATE_CALL + "<|im_end|>",
            None,
            "\nThe user wants weather.\n",
            [PARIS],
        ),
        ("Let me check.\n" + TEMPLATE_CALL + "\nDone.", "Let me check.\n\nDone.", None, [PARIS]),
        (  # two calls, a line apart, one without parameters
            TEMPLATE_CALL + '\n<function name="get_time"></function>',
            None,
            None,
            [PARIS, ToolCall("get_time", {})],
        ),
        (  # the template's `string` filter spells constants and containers as Python does
            '<function name="get_weather"><param name="city">123</param><param name="metric">True</param>'
            "<param name=\"note\">None</param><param name=\"options\">{'unit': 'c', 'hourly': False}</param>"
            "</function>",
            None,
            None,
            [
                ToolCall(
                    "get_weather",
                    {"city": "123", "metric": True, "note": None, "options": {"unit": "c", "hourly": False}},
                )
            ],
        ),
        (  # a value holding `<`, `&` or newlines is CDATA, read verbatim, closers and all
            '<function name="write_file"><param name="content"><![CDATA[if a < b && c:\n    print("</function>")\n]]>'
            '</param><param name="path">a.py</param></function>',
            None,
            None,
            [
                ToolCall(
                    "write_file", {"content": 'if a < b && c:\n    print("</function>")\n', "path": "a.py"}
                )
            ],
        ),
        (  # a CDATA value may hold `]]>` itself: only `]]></param>` ends it
            '<function name="write_file"><param name="content"><![CDATA[x]]>y&z]]></param></function>',
            None,
            None,
            [ToolCall("write_file", {"content": "x]]>y&z"})],
        ),
        (  # spaces between tags (models pretty-print) are layout
            '<function name="get_weather">\n  <param name="city">Paris</param>\n  <param name="days">3</param>\n'
            "</function>",
            None,
            None,
            [PARIS],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


@pytest.mark.parametrize("format", ["minicpm5", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # With thinking on, the generation prompt ends with `<think>\n`.
    text = "The user wants weather.\n" + TEMPLATE_CALL
    assert_reads(text, format, TOOLS, None, "The user wants weather.\n", [PARIS], in_reasoning=True)


def test_values_without_tools_are_typed_only_when_obvious() -> None:
    text = (
        '<function name="f"><param name="n">5</param><param name="b">True</param>'
        '<param name="l">[1, 2]</param><param name="z">007</param></function>'
    )
    assert parse(text, format="minicpm5").calls == [
        ToolCall("f", {"n": 5, "b": "True", "l": [1, 2], "z": "007"})
    ]


def test_render_writes_what_the_template_writes() -> None:
    calls = [
        ToolCall("get_weather", {"city": "Paris", "metric": True, "note": None, "days": 3}),
        ToolCall("write_file", {"content": "a\nb", "path": "x&y"}),
    ]
    assert minicpm5.render(calls) == (
        '<function name="get_weather"><param name="city">Paris</param><param name="metric">True</param>'
        '<param name="note">None</param><param name="days">3</param></function>\n'
        '<function name="write_file"><param name="content"><![CDATA[a\nb]]></param>'
        '<param name="path"><![CDATA[x&y]]></param></function>'
    )


@pytest.mark.parametrize(
    "body",
    [
        "",
        '">',  # no name
        'get weather"></function',
        'get_weather">junk<param name="city">Paris</param>',
        'get_weather"><param name="city">Paris</param><param name="city">Rome</param>',
        'get_weather"><param name="city">Paris',  # value never closed
        'get_weather"><param name="city"><![CDATA[Paris</param>',  # CDATA never closed
        'get_weather"><param city="Paris"></param>',
        'get_weather"></function> trailing',
        'get_weather"><parameter=city>Paris</parameter>',
    ],
)
def test_rejects_bodies_that_are_not_calls(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        minicpm5.parse_region(minicpm5.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize("format", ["minicpm5", "auto"])
def test_malformed_with_parameters_stays_unread(format: str) -> None:
    text = '<function name="get_weather"><param name="city">Paris</param>oops</function>'
    assert_unread(text, format, TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        TEMPLATE_CALL.removesuffix("</function>"),
        TEMPLATE_CALL[:52],
        '<function name="write_file"><param name="content"><![CDATA[a < b',
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "minicpm5", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize("format", ["minicpm5", "auto"])
@pytest.mark.parametrize(
    "text",
    [
        'The config has <function name="main"> and <arg nr="1"/></function> in it.',
        'Write <function name="x"> in the XML file.',
        'Cut off: <function name="get_wea',
    ],
)
def test_xml_that_is_no_call_stays_the_answer(format: str, text: str) -> None:
    # `<function name="` is also ordinary XML; without a `<param name="` it is the answer's text.
    for truncated in (False, True):
        result = parse(text, format=format, tools=TOOLS, truncated=truncated)
        assert (result.content, result.calls, result.errors) == (text, [], [])


def test_detected_from_the_chat_template() -> None:
    # MiniCPM5's chat template (excerpt): the instruction and the calls it writes.
    template = (
        "{{- '\\n</tools>\\n\\nTool usage guidelines:\\n- When calling a function, return an XML object within "
        '<function ... </function> using:\\n<function name="function-name"><param name="param-name">'
        "param-value</param></function>' -}}"
        "{{- '<function name=\"' + function['name'] + '\">' -}}"
        "{{- '<param name=\"' + name + '\"><![CDATA[' + val_str + ']]></param>' -}}"
        "{{- '<|im_start|>assistant\\n' -}}{%- if enable_thinking | default(false) -%}{{- '<think>\\n' -}}"
    )
    assert detect_format(template) == "minicpm5"


SOUP = soup(
    [
        '<function name="',
        "</function>",
        '<param name="',
        "</param>",
        '">',
        "<![CDATA[",
        "]]>",
        "<think>",
        "</think>",
        "<|im_end|>",
        "get_weather",
    ]
)

CASE = FormatCase(
    name="minicpm5",
    soup=SOUP,
    soup_tools=[TOOLS, None],
    calls=CALL_LISTS,
    renderings={"template": reads_back(minicpm5.render)},
    joiner="\n",
)


@pytest.mark.parametrize("format", ["minicpm5", "auto"])
def test_minicpm4_xml_calls_are_read_as_minicpm5(format: str) -> None:
    # SGLang's minicpm4_xml detector (MiniCPM4/4.1's template) documents the same elements.
    text = (
        '<function name="get_weather"><param name="city">北京</param><param name="days">2</param></function>\n'
        '<function name="get_weather"><param name="city"><![CDATA[多行\n文本]]></param></function>'
    )
    calls = [
        ToolCall("get_weather", {"city": "北京", "days": 2}),
        ToolCall("get_weather", {"city": "多行\n文本"}),
    ]
    assert parse(text, format=format, tools=TOOLS).calls == calls
