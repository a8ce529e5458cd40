"""GLM-4.5 / 4.6 / 4.7 calls: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>`."""

from __future__ import annotations

import pytest

from parsers.conftest import stream
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, detect_format, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import glm

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
                "options": {"type": "object"},
                "stops": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}
NOW = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
TOOLS = [WEATHER, NOW]
PARIS = ToolCall("get_weather", {"city": "Paris", "days": 3})

# GLM-4.5 / 4.6 template: a newline after the name and between tags.
GLM45 = (
    "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
    "<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"
)
# GLM-4.7 template: no newlines at all.
GLM47 = (
    "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
    "<arg_key>days</arg_key><arg_value>3</arg_value></tool_call>"
)


@pytest.mark.parametrize("format", ["glm", "auto"])
@pytest.mark.parametrize(
    ("text", "content", "reasoning", "calls"),
    [
        (GLM45, None, None, [PARIS]),
        (GLM47, None, None, [PARIS]),
        ("\n<think>The user wants weather.</think>\n" + GLM45, None, "The user wants weather.", [PARIS]),
        ("<think></think>\nI'll check.\n" + GLM47 + "<|user|>", "\nI'll check.\n", None, [PARIS]),
        (GLM45 + "\n" + GLM47 + "<|observation|>", None, None, [PARIS, PARIS]),
        ("<tool_call>get_time</tool_call>", None, None, [ToolCall("get_time", {})]),  # no arguments
        ("<tool_call>get_time\n</tool_call>", None, None, [ToolCall("get_time", {})]),
        (  # values typed by the schema: a string-typed "123" stays a string; objects are JSON
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>123</arg_value>"
            '<arg_key>options</arg_key><arg_value>{"units": "metric"}</arg_value></tool_call>',
            None,
            None,
            [ToolCall("get_weather", {"city": "123", "options": {"units": "metric"}})],
        ),
        (  # string values are kept byte for byte, newlines and markup included
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value> New York\n</arg_value></tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": " New York\n"})],
        ),
        (  # the literal two characters \n between tags, as some GLM outputs write them
            "<tool_call>get_weather\\n<arg_key>city</arg_key>\\n<arg_value>Paris</arg_value>\\n</tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # a name, then the arguments as one JSON object (types kept)
            '<tool_call>get_weather\n{"city": "Paris", "days": 3}</tool_call>',
            None,
            None,
            [PARIS],
        ),
        (  # all arguments wrapped in one undeclared `arguments` key
            '<tool_call>get_weather<arg_key>arguments</arg_key><arg_value>{"city": "Paris", "days": 3}'
            "</arg_value></tool_call>",
            None,
            None,
            [PARIS],
        ),
        (  # the first block's </tool_call> left out
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>\n"
            "<tool_call>get_time</tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {})],
        ),
        (
            "<tool_call>get_time\n<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
            "</tool_call>",
            None,
            None,
            [ToolCall("get_time", {}), ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # a value that mentions the opener stays a value
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>a <tool_call> b</arg_value></tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "a <tool_call> b"})],
        ),
        (  # GLM-4.7 left out the last </arg_value>: the </tool_call> ends the value
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
            "<arg_key>days</arg_key><arg_value>3</tool_call>",
            None,
            None,
            [PARIS],
        ),
        (  # ... with GLM-4.5's newline before </tool_call>, which is not part of the value
            "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris\n</tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # a value left open that mentions </tool_call>... cannot be told apart: the first ends it
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</tool_call>\nDone.",
            "\nDone.",
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
        (  # GLM-4.6 writes an array parameter JSON-escaped, as if inside a JSON string
            '<tool_call>get_weather\n<arg_key>stops</arg_key>\n<arg_value>[{\\"city\\": \\"C:\\\\\\\\x\\"}]'
            "</arg_value>\n</tool_call>",
            None,
            None,
            [ToolCall("get_weather", {"stops": [{"city": "C:\\x"}]})],
        ),
        (  # a whole hermes-style call object inside GLM's tags, as GLM models sometimes write
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}</tool_call>',
            None,
            None,
            [PARIS],
        ),
        (  # model stopped by itself before </tool_call>, body complete
            "Sure.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n",
            "Sure.\n",
            None,
            [ToolCall("get_weather", {"city": "Paris"})],
        ),
    ],
)
def test_calls(
    format: str, text: str, content: str | None, reasoning: str | None, calls: list[ToolCall]
) -> None:
    assert_reads(text, format, TOOLS, content, reasoning, calls)


def test_output_starting_inside_reasoning() -> None:
    # GLM-4.7's generation prompt ends with `<think>`: the output opens inside the reasoning.
    text = "The user wants weather.</think>" + GLM47
    result = parse(text, format="glm", tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("The user wants weather.", None, [PARIS])


@pytest.mark.parametrize("format", ["glm", "auto"])
def test_a_call_ends_reasoning_the_prompt_opened_and_never_closed(format: str) -> None:
    text = "The user wants weather." + GLM47
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("The user wants weather.", None, [PARIS])
    assert stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=True)[0] == result


def test_a_call_opener_in_reasoning_the_model_opened_is_reasoning() -> None:
    result = parse("<think>Use <tool_call> here.</think>Ok.", format="glm", tools=TOOLS)
    assert (result.reasoning, result.content, result.calls) == ("Use <tool_call> here.", "Ok.", [])


def test_values_without_tools() -> None:
    text = (
        "<tool_call>f<arg_key>n</arg_key><arg_value>5</arg_value><arg_key>s</arg_key><arg_value>Paris"
        "</arg_value><arg_key>l</arg_key><arg_value>[1, 2]</arg_value></tool_call>"
    )
    assert parse(text, format="glm").calls == [ToolCall("f", {"n": 5, "s": "Paris", "l": [1, 2]})]


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "get_weather", "argu',  # JSON that does not read
        '{"city": "Paris"}',  # JSON without a name
        "\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n",  # qwen3_coder
        "I will call get_weather now",
        "get_weather\n<arg_key>city</arg_key>\n",  # a key without its value
        "get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris",  # value never closed
        "get_weather\n<arg_value>Paris</arg_value>",  # value without a key
        "get_weather\n<arg_key>city</arg_key>junk<arg_value>Paris</arg_value>",
        "get_weather\n<arg_key>city</arg_key><arg_value>Paris</arg_value>trailing words",
        "",
        "get weather",
        'get weather {"city": "Paris"}',
        'get_weather {"city": "Par',
    ],
)
def test_glm_rejects_bodies_that_are_not_its_own(body: str) -> None:
    with pytest.raises(CallSyntaxError):
        glm.parse_region(glm.CALLS[0], body, tool_set(TOOLS))


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n</tool_call>",
        "<tool_call>get_weather <arg_key>city</arg_key><arg_value>Paris</arg_value>garbage</tool_call>",
        "<tool_call>call get_weather please</tool_call>",
    ],
)
def test_malformed_stays_content(text: str) -> None:
    assert_unread(text, "glm", TOOLS, MalformedCall)


def test_auto_still_reads_hermes_and_qwen3_coder_bodies() -> None:
    hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    qwen = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"
    for text in (hermes, qwen):
        assert parse(text, tools=TOOLS).calls == [ToolCall("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n",
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Par",
        "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris",
        "<tool_call>get_ti",
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    assert_unread(text, "glm", TOOLS, TruncatedCall, truncated=True)


@pytest.mark.parametrize(
    "template",
    [
        # GLM-4.5 (excerpt): the instructions and the assistant branch both name <arg_key>.
        "For each function call, output the function name and arguments within the following XML format:\n"
        "<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>",
        # GLM-4.7 (excerpt)
        "{{- '<tool_call>' + tc.name -}}{% for k, v in _args.items() %}<arg_key>{{ k }}</arg_key>"
        "<arg_value>{{ v | tojson(ensure_ascii=False) if v is not string else v }}</arg_value>{% endfor %}",
    ],
)
def test_detected_from_the_chat_template(template: str) -> None:
    assert detect_format(template) == "glm"


# ---- properties -------------------------------------------------------------------------

SOUP = soup(
    [
        "<tool_call>",
        "</tool_call>",
        "<arg_key>",
        "</arg_key>",
        "<arg_value>",
        "</arg_value>",
        "<think>",
        "</think>",
        "<|user|>",
        "<|observation|>",
        "get_weather",
    ]
)


def render_glm47(calls: list[ToolCall]) -> str:
    """GLM-4.7 writes what GLM-4.5 does without the newlines inside a call."""
    return glm.render(calls).replace("\n<arg_", "<arg_").replace("\n</tool_call>", "</tool_call>")


CASE = FormatCase(
    name="glm",
    soup=SOUP,
    soup_tools=[TOOLS],
    calls=CALL_LISTS,
    renderings={"glm45": reads_back(glm.render), "glm47": reads_back(render_glm47)},
    joiner="\n",
)


def test_ling3_template_is_detected_as_glm() -> None:
    # Ling-3's template (excerpt) asks for GLM-4.5's calls (SGLang's Ling3Detector is GLM's).
    template = (
        "output the function name and arguments within the following XML format:\n"
        "<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n"
        "</tool_call>"
    )
    assert detect_format(template) == "glm"


def test_poolside_laguna_template_is_detected_and_read_as_glm() -> None:
    # Poolside Laguna XS.2's template (its tools instructions, as PrimeIntellect-ai/renderers
    # renderers/laguna_xs2.py mirrors them) asks for GLM-4.5's calls; vLLM's poolside_v1 parser
    # reads that shape. The generation prompt is `<assistant>\n<think>`: a call ends the reasoning.
    template = (
        "Wrap your thinking in '<think>', '</think>' tags, followed by a function call. For each function "
        "call, return an unescaped XML-like object with function name and arguments within '<tool_call>' "
        "and '</tool_call>' tags, like here:\n<think> your thoughts here </think>\n<tool_call>function-name\n"
        "<arg_key>argument-key</arg_key>\n<arg_value>value-of-argument-key</arg_value>\n</tool_call>"
    )
    assert detect_format(template) == "glm"
    text = (
        " The user wants the weather. </think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
        "<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"
    )
    for format in ("glm", "auto"):
        result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
        assert (result.reasoning, result.content, result.errors) == (
            " The user wants the weather. ",
            None,
            [],
        )
        assert result.calls == [ToolCall("get_weather", {"city": "Paris", "days": 3})]
