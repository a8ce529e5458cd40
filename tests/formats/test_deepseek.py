"""DeepSeek calls: V3 / R1 (fenced JSON), V3.1, and DSML (V3.2 `function_calls`, V4 `tool_calls`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from parsers.conftest import events_agree, stream, unread
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers.formats import deepseek

from . import CALL_LISTS, FormatCase, assert_reads, assert_unread, reads_back, soup

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "hours": {"type": "array", "items": {"type": "integer"}},
            },
        },
    },
}
TOOLS = [WEATHER, {"type": "function", "function": {"name": "function", "parameters": {"type": "object"}}}]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})
ROME = ToolCall("get_weather", {"city": "Rome"})

BEGIN, END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
EOS = "<｜end▁of▁sentence｜>"

V3 = (
    f"{BEGIN}{CALL}function{SEP}get_weather\n```json\n"
    + '{"city": "Paris", "days": 3}'
    + f"\n```{CALL_END}\n{CALL}function{SEP}get_weather\n```json\n"
    + '{"city": "Rome"}'
    + f"\n```{CALL_END}{END}{EOS}"
)
V31 = f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}{CALL}get_weather{SEP}{{"city": "Rome"}}{CALL_END}{END}{EOS}'


def render_dsml(calls: Sequence[ToolCall], block: str = "function_calls", bar: str = "｜DSML｜") -> str:
    """DSML as DeepSeek-V3.2's template writes it (V4 names the block `tool_calls`; V4.1 names it
    `calls` and writes a space after the bar: `bar="｜DSML｜ "`)."""
    lines = [f"<{bar}{block}>"]
    for call in calls:
        lines.append(f'<{bar}invoke name="{call.name}">')
        for key, value in call.arguments.items():
            is_string = isinstance(value, str)
            text = value if is_string else json.dumps(value, ensure_ascii=False)
            lines.append(
                f'<{bar}parameter name="{key}" string="{str(is_string).lower()}">{text}</{bar}parameter>'
            )
        lines.append(f"</{bar}invoke>")
    lines.append(f"</{bar}{block}>")
    return "\n".join(lines)


def render_v3(calls: Sequence[ToolCall]) -> str:
    """The V3 / R1 shape: call type `function`, arguments in a ```json fence."""
    parts = [
        f"{CALL}function{SEP}{c.name}\n```json\n{json.dumps(c.arguments, ensure_ascii=False)}\n```{CALL_END}"
        for c in calls
    ]
    return BEGIN + "\n".join(parts) + END


DSML = render_dsml([PARIS, ROME])
DSML_V4 = render_dsml([PARIS, ROME], "tool_calls")
DSML_V41 = render_dsml([PARIS, ROME], "calls", "｜DSML｜ ")


@pytest.mark.parametrize("format", ["deepseek", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (V3, None, None, [PARIS, ROME]),
        ("Let me check." + V3, "Let me check.", None, [PARIS, ROME]),
        (V31, None, None, [PARIS, ROME]),
        ("<think>weather in two cities</think>" + V31, None, "weather in two cities", [PARIS, ROME]),
        (DSML, None, None, [PARIS, ROME]),
        (DSML_V4, None, None, [PARIS, ROME]),
        (DSML_V41, None, None, [PARIS, ROME]),  # V4.1: a space after the bar, block `calls`
        (render_dsml([PARIS], "tool_calls", "｜DSML｜ "), None, None, [PARIS]),
        (  # a self-closing invoke: a call without arguments
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather"/>\n'
            '<｜DSML｜ invoke name="get_weather" />\n</｜DSML｜tool_calls>',
            None,
            None,
            [ToolCall("get_weather", {}), ToolCall("get_weather", {})],
        ),
        (  # invokes without their block; the stray block closer after them is markup
            'Checking.\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n'
            '<｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
            '<｜DSML｜ invoke name="get_weather">\n<｜DSML｜ parameter name="city" string="true">Rome'
            "</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n</｜DSML｜tool_calls>",
            "Checking.\n\n\n",
            None,
            [PARIS, ROME],
        ),
        ('<｜DSML｜invoke name="get_weather"/>', None, None, [ToolCall("get_weather", {})]),
        (  # a lone invoke whose value writes `/>`: only a tag's own `/>` closes it
            '<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">a/>b'
            "</｜DSML｜parameter>\n</｜DSML｜invoke>",
            None,
            None,
            [ToolCall("get_weather", {"city": "a/>b"})],
        ),
        (  # an invoke whose body is a JSON object of arguments (SGLang's V3.2 reader takes it)
            '<｜DSML｜function_calls>\n  <｜DSML｜invoke name="get_weather">\n  {"city": "Paris", "days": 3}\n'
            '  </｜DSML｜invoke>\n  <｜DSML｜invoke name="get_weather">{"city": "Rome"}</｜DSML｜invoke>\n'
            "</｜DSML｜function_calls>",
            None,
            None,
            [PARIS, ROME],
        ),
        ("I'll look.\n\n" + DSML_V4 + EOS, "I'll look.\n\n", None, [PARIS, ROME]),
        (  # DSML string="false" values are JSON, string="true" values are text even when numeric
            '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="city" string="true">123</｜DSML｜parameter>\n'
            '<｜DSML｜parameter name="hours" string="false">[1, 2]</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜function_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": "123", "hours": [1, 2]})],
        ),
        (  # a value the model marked as a string is still typed when the schema allows no string
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="days" string="true">4</｜DSML｜parameter>\n'
            '<｜DSML｜parameter name="city" string="false">"Paris"</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            None,
            None,
            [ToolCall("get_weather", {"days": 4, "city": "Paris"})],
        ),
        (  # all arguments wrapped in one `arguments` parameter that the tool does not declare
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="arguments" string="false">{"city": "Paris", "days": 3}</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            None,
            None,
            [PARIS],
        ),
        (  # single-quoted attributes
            "<｜DSML｜tool_calls>\n<｜DSML｜invoke name='get_weather'>\n"
            "<｜DSML｜parameter name='city' string='true'>Rome</｜DSML｜parameter>\n"
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            None,
            None,
            [ROME],
        ),
        (  # a parameter without the string attribute is typed by the schema
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="days">4</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>',
            None,
            None,
            [ToolCall("get_weather", {"days": 4})],
        ),
        (  # string="false" that is not JSON falls back to the schema
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="city" string="false">Paris</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # an invoke with no parameters
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>',
            None,
            None,
            [ToolCall("get_weather", {})],
        ),
        (  # a lone call without the section markers
            f'{CALL}get_weather{SEP}{{"city": "Rome"}}{CALL_END}',
            None,
            None,
            [ROME],
        ),
        (  # the section end never came; the model stopped by itself with complete calls
            f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Rome"}}{CALL_END}',
            None,
            None,
            [ROME],
        ),
        (  # V3 shape without the fence
            f'{BEGIN}{CALL}function{SEP}get_weather\n{{"city": "Rome"}}{CALL_END}{END}',
            None,
            None,
            [ROME],
        ),
        (  # a V3.1 tool that happens to be called "function", pretty-printed arguments
            f'{BEGIN}{CALL}function{SEP}{{\n  "city": "Rome"\n}}{CALL_END}{END}',
            None,
            None,
            [ToolCall("function", {"city": "Rome"})],
        ),
        (  # end markers inside argument strings do not end the call
            f'{BEGIN}{CALL}get_weather{SEP}{{"city": "{CALL}{SEP}{CALL_END}{END}"}}{CALL_END}{END}',
            None,
            None,
            [ToolCall("get_weather", {"city": CALL + SEP + CALL_END + END})],
        ),
        (
            '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="city" string="true">a </｜DSML｜invoke></｜DSML｜tool_calls> b</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            None,
            None,
            [ToolCall("get_weather", {"city": "a </｜DSML｜invoke></｜DSML｜tool_calls> b"})],
        ),
        (  # lenient JSON in the arguments
            f"{BEGIN}{CALL}get_weather{SEP}{{'city': 'Rome',}}{CALL_END}{END}",
            None,
            None,
            [ROME],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


def test_json_arguments_keep_their_types() -> None:
    text = f'{BEGIN}{CALL}get_weather{SEP}{{"city": 7, "days": "3"}}{CALL_END}{END}'
    assert parse(text, format="deepseek", tools=TOOLS).calls == [
        ToolCall("get_weather", {"city": 7, "days": "3"})
    ]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        (  # noise inside a section, before a good call
            f'{BEGIN}junk{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}{END}',
            "junk",
        ),
        (  # a bad call between two good ones
            f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}'
            f"{CALL}get_weather{SEP}not json{CALL_END}"
            f'{CALL}get_weather{SEP}{{"city": "Rome"}}{CALL_END}{END}',
            f"{CALL}get_weather{SEP}not json{CALL_END}",
        ),
        (  # the same in a DSML block: an invoke with a parameter opened inside another
            "<｜DSML｜tool_calls>\n"
            + render_dsml([PARIS]).split("\n", 1)[1].rsplit("\n", 1)[0]
            + '\n<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">a'
            '<｜DSML｜parameter name="days">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
            + render_dsml([ROME]).split("\n", 1)[1].rsplit("\n", 1)[0]
            + "\n</｜DSML｜tool_calls>",
            '<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">a'
            '<｜DSML｜parameter name="days">1</｜DSML｜parameter>\n</｜DSML｜invoke>',
        ),
        (  # an invoke whose value holds the invoke closer: the bad one runs to its real end
            '<｜DSML｜ calls>\n<｜DSML｜ invoke name="bad name">\n<｜DSML｜ parameter name="x">'
            "</｜DSML｜ invoke>!</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n"
            + render_dsml([PARIS, ROME], "calls", "｜DSML｜ ").split("\n", 1)[1],
            '<｜DSML｜ invoke name="bad name">\n<｜DSML｜ parameter name="x"></｜DSML｜ invoke>!'
            "</｜DSML｜ parameter>\n</｜DSML｜ invoke>",
        ),
    ],
)
def test_one_bad_call_does_not_sink_its_neighbours(text: str, bad: str) -> None:
    result = parse(text, format="deepseek", tools=TOOLS)
    good = [PARIS, ROME] if "Rome" in text else [PARIS]
    assert (result.content, result.calls) == (None, good)
    assert [(e.kind, e.text) for e in result.errors] == [("malformed_call", bad)]
    streamed, events = stream(text, range(len(text)), format="deepseek", tools=TOOLS)
    assert streamed == result
    assert events_agree(result, events)


@pytest.mark.parametrize(
    "text",
    [
        '<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">Par',
        '<｜DSML｜ invoke name="get_weather"',
    ],
)
def test_a_lone_invoke_cut_off_is_never_a_call(text: str) -> None:
    assert_unread(text, "deepseek", TOOLS, TruncatedCall, truncated=True)


def test_output_starting_inside_reasoning() -> None:
    result = parse("thinking...</think>" + V31, format="deepseek", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("thinking...", None, [PARIS, ROME])


@pytest.mark.parametrize(
    "text",
    [
        f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris"}}{END}',  # call end missing
        f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris"}}{CALL}get_weather{SEP}{{}}{CALL_END}{END}',
        f"{BEGIN}{CALL}get_weather{SEP}not json{CALL_END}{END}",
        f'{BEGIN}{CALL}get_weather {{"city": "Paris"}}{CALL_END}{END}',  # no separator
        f'{BEGIN}{CALL}function{SEP}get_weather\n```json\n{{"city": "Paris"}}\n{CALL_END}{END}',  # open fence
        f'{BEGIN}{CALL}get_weather{SEP}["Paris"]{CALL_END}{END}',  # not an object
        f"{BEGIN}{END}",  # empty section
        '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
        '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n</｜DSML｜function_calls>',
        '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
        '<｜DSML｜parameter name="city" string="true">Paris\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
        "<｜DSML｜function_calls>\nI will call a tool.\n</｜DSML｜function_calls>",
        '<｜DSML｜function_calls>\n<｜DSML｜invoke nam="get_weather">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
    ],
)
def test_malformed_stays_content(text: str) -> None:
    assert_unread(text, "deepseek", TOOLS, MalformedCall)


@pytest.mark.parametrize(
    "text",
    [
        f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Par',
        f"{BEGIN}{CALL}get_weather{SEP}",
        render_dsml([PARIS]).removesuffix("</｜DSML｜invoke>\n</｜DSML｜function_calls>"),
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "deepseek", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    ("complete", "cut_off"),
    [
        (
            f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}',
            f'{CALL}get_weather{SEP}{{"ci',
        ),
        (f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}', ""),
        (render_dsml([PARIS]).removesuffix("\n</｜DSML｜function_calls>"), '\n<｜DSML｜invoke name="get_wea'),
        (render_dsml([PARIS], "tool_calls").removesuffix("\n</｜DSML｜tool_calls>"), ""),
    ],
)
def test_calls_completed_before_a_truncated_section_end_stand(complete: str, cut_off: str) -> None:
    result = parse(complete + cut_off, format="deepseek", tools=TOOLS, truncated=True)
    assert result.calls == [PARIS]
    # The cut-off call is not content: its text is on its problem.
    assert result.content is None
    assert "".join(e.text for e in result.errors) == (cut_off if cut_off.strip() else "")
    assert [e.kind for e in result.errors] == (["truncated_call"] if cut_off else [])


@pytest.mark.parametrize(
    "calls",
    [V31.removesuffix(EOS), DSML_V4, f'{CALL}get_weather{SEP}{{"city": "Paris", "days": 3}}{CALL_END}'],
)
def test_calls_end_an_unclosed_reasoning_block(calls: str) -> None:
    # DeepSeek V4 starts its calls right after reasoning, without writing </think>.
    result = parse("The user wants weather." + calls, tools=TOOLS, in_reasoning=True)
    assert result.reasoning == "The user wants weather."
    assert result.calls[0] == PARIS


def test_cut_off_call_without_truncation_flag_is_not_a_call() -> None:
    text = f'{BEGIN}{CALL}get_weather{SEP}{{"city": "Paris"}}'
    result = parse(text, format="deepseek", tools=TOOLS)
    assert result.calls == []
    assert unread(result) == text


@pytest.mark.parametrize(
    "template",
    [
        # DeepSeek-V3.1 (excerpt)
        "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>' "
        "+ tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}",
        # DeepSeek-V3.2 (excerpt)
        '{%- set dsml_token = "｜DSML｜" -%}<{{ dsml_token }}function_calls>',
    ],
)
def test_detected_from_the_chat_template(template: str) -> None:
    assert detect_format(template) == "deepseek"


# ---- properties -------------------------------------------------------------------------

SOUP = soup([BEGIN, END, CALL, CALL_END, SEP, EOS, "<think>", "</think>", "function", "```json", "```"])
DSML_SOUP = soup(
    [
        "<｜DSML｜function_calls>",
        "</｜DSML｜function_calls>",
        "<｜DSML｜tool_calls>",
        "</｜DSML｜tool_calls>",
        '<｜DSML｜invoke name="f">',
        "</｜DSML｜invoke>",
        '<｜DSML｜parameter name="a" string="true">',
        '<｜DSML｜parameter name="b" string="false">',
        "</｜DSML｜parameter>",
        "<｜DSML｜ calls>",
        "</｜DSML｜ calls>",
        '<｜DSML｜ invoke name="f">',
        '<｜DSML｜invoke name="f"/>',
        "</｜DSML｜ invoke>",
        '<｜DSML｜ parameter name="a">',
        "</｜DSML｜ parameter>",
        "/>",
        EOS,
    ]
)
CASE = FormatCase(
    name="deepseek",
    soup=SOUP | DSML_SOUP,
    soup_tools=[TOOLS],
    calls=CALL_LISTS,
    renderings={
        "v3.1": reads_back(deepseek.render),
        "v3": reads_back(render_v3),
        "dsml": reads_back(render_dsml),
        "dsml_v4": reads_back(lambda calls: render_dsml(calls, "tool_calls")),
        "dsml_v41": reads_back(lambda calls: render_dsml(calls, "calls", "｜DSML｜ ")),
    },
    # JSON shapes need no schema; DSML string="false" values are JSON, so none needed either.
    read_without_tools=("v3.1", "v3", "dsml", "dsml_v4", "dsml_v41"),
)
