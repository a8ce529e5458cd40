"""Hermes `<tool_call>` blocks and the untagged habits of small models, in `auto` and `hermes`."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import ToolCall, parse

from .conftest import stream, unread

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "run_command", "parameters": {"type": "object"}}},
]
READ = ToolCall("read_file", {"path": "a.txt"})


@pytest.mark.parametrize("format", ["auto", "hermes"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        ('<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>', None, [READ]),
        (
            'Let me look.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>',
            "Let me look.\n",
            [READ],
        ),
        (  # two blocks
            '<tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}</tool_call>\n'
            '<tool_call>{"name": "run_command", "arguments": {"cmd": "ls"}}</tool_call>',
            None,
            [READ, ToolCall("run_command", {"cmd": "ls"})],
        ),
        (  # a list inside one block
            '<tool_call>[{"name": "read_file", "arguments": {"path": "a.txt"}}, '
            '{"name": "run_command", "arguments": {}}]</tool_call>',
            None,
            [READ, ToolCall("run_command", {})],
        ),
        ('<tool_call>{"name": "read_file", "parameters": {"path": "a.txt"}}</tool_call>', None, [READ]),
        ('<tool_call>{"name": "read_file", "args": {"path": "a.txt"}}</tool_call>', None, [READ]),
        ('<tool_call>{"function": "read_file", "arguments": {"path": "a.txt"}}</tool_call>', None, [READ]),
        (
            '<tool_call>{"type": "function", "function": {"name": "read_file", '
            '"arguments": "{\\"path\\": \\"a.txt\\"}"}}</tool_call>',
            None,
            [READ],
        ),
        ("<tool_call>{'name': 'read_file', 'arguments': {'path': 'a.txt',},}</tool_call>", None, [READ]),
        (
            '<tool_call>{"name": "run_command", "arguments": {"cmd": "ls", "check": True, "env": None}}</tool_call>',
            None,
            [ToolCall("run_command", {"cmd": "ls", "check": True, "env": None})],
        ),
        (  # closing tag never came, model stopped by itself: still a call
            '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n',
            None,
            [READ],
        ),
        (  # fence inside the tags
            '<tool_call>\n```json\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n```\n</tool_call>',
            None,
            [READ],
        ),
        (  # tags inside a fence
            '```\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>\n```',
            None,
            [READ],
        ),
        (  # forgot the closer between two calls
            '<tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}\n'
            '<tool_call>{"name": "run_command", "arguments": {}}</tool_call>',
            None,
            [READ, ToolCall("run_command", {})],
        ),
    ],
)
def test_tagged(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert result.content == content
    assert result.calls == calls
    assert result.errors == []


PRETTY_FENCE = '```json\n{\n  "name": "read_file",\n  "arguments": {\n    "path": "a.txt"\n  }\n}\n```'


@pytest.mark.parametrize("format", ["auto", "hermes"])
@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (PRETTY_FENCE, None, [READ]),
        ("Sure!\n" + PRETTY_FENCE + "\nDone.", "Sure!\n\nDone.", [READ]),
        ('```\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n```', None, [READ]),
        ('{"name": "read_file", "arguments": {"path": "a.txt"}}', None, [READ]),
        ('{"name": "read_file", "parameters": {"path": "a.txt"}}', None, [READ]),
        (
            '[{"name": "read_file", "arguments": {"path": "a.txt"}}, {"name": "run_command", "arguments": {}}]',
            None,
            [READ, ToolCall("run_command", {})],
        ),
        ('{"function": {"name": "read_file", "arguments": {"path": "a.txt"}}}', None, [READ]),
        ('{"name": "read_file", "arguments": "{\\"path\\": \\"a.txt\\"}"}', None, [READ]),
        ("{'name': 'read_file', 'arguments': {'path': 'a.txt'}}", None, [READ]),
        (  # extra keys copied into the arguments stay there: validation belongs to the agent
            '{"name": "run_command", "arguments": {"cmd": "ls", "required": ["cmd"]}}',
            None,
            [ToolCall("run_command", {"cmd": "ls", "required": ["cmd"]})],
        ),
    ],
)
def test_untagged_declared(format: str, text: str, content: str | None, calls: list[ToolCall]) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert (result.content, result.calls, result.errors) == (content, calls, [])


@pytest.mark.parametrize(
    "text",
    [
        # a JSON example in an answer
        'A user record looks like {"name": "Alice", "age": 3}.',
        # an untagged "call" to a tool that was never declared
        '```json\n{"name": "is_prime", "arguments": {"n": 7}}\n```',
        # Python code that defines or calls a same-named function
        '```python\ndef read_file(path):\n    return open(path).read()\n\nread_file("a.txt")\n```',
        '```python\ncall = {"name": "read_file", "arguments": {"path": "a.txt"}}\n```',
        # prose mentioning a call
        "Call read_file(path) to read, or use {braces} and [brackets] freely.",
        # a name key whose object has other keys: data, not a call
        '{"name": "read_file", "size": 10}',
        # markdown
        "| a | b |\n|---|---|\n| [x](y) | `{z}` |\n",
        "inline ```code``` and ``` alone",
    ],
)
@pytest.mark.parametrize("format", ["auto", "hermes"])
def test_untagged_text_stays_content(format: str, text: str) -> None:
    result = parse(text, format=format, tools=TOOLS)
    assert result.content == text
    assert result.calls == []


def test_untagged_counts_any_name_when_tools_unknown() -> None:
    result = parse('{"name": "anything", "arguments": {"x": 1}}', tools=None)
    assert result.calls == [ToolCall("anything", {"x": 1})]


def test_untagged_never_counts_when_no_tools_may_be_called() -> None:
    text = '{"name": "read_file", "arguments": {"x": 1}}'
    assert parse(text, tools=[]).content == text


def test_tagged_call_to_undeclared_tool_is_a_call_and_a_problem() -> None:
    result = parse('<tool_call>{"name": "delete_file", "arguments": {}}</tool_call>', tools=TOOLS)
    assert result.calls == [ToolCall("delete_file", {})]
    assert [e.kind for e in result.errors] == ["unknown_tool"]
    assert result.errors[0].name == "delete_file"


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.t',
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n',  # closer never came
        '```json\n{"name": "read_file", "arguments": {"path": "a',
        '{"name": "read_file", "arguments": {"path": "a',
    ],
)
def test_truncated_is_never_a_call(text: str) -> None:
    result = parse(text, tools=TOOLS, truncated=True)
    assert result.calls == []
    assert unread(result) == text
    assert [e.kind for e in result.errors] == ["truncated_call"]


def test_cut_off_body_is_not_a_call_even_when_not_truncated() -> None:
    text = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.t'
    result = parse(text, tools=TOOLS)
    assert result.calls == []
    assert unread(result) == text
    assert [e.kind for e in result.errors] == ["truncated_call"]


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>not json at all</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "read_file", "arguments": [1, 2]}</tool_call>',
        '<tool_call>{"name": "read_file", "arguments": "not json"}</tool_call>',
    ],
)
def test_malformed_is_content_and_a_problem(text: str) -> None:
    result = parse(text, format="hermes", tools=TOOLS)
    assert result.calls == []
    assert unread(result) == text
    assert [e.kind for e in result.errors] == ["malformed_call"]


def test_values_keep_their_types() -> None:
    text = '<tool_call>{"name": "f", "arguments": {"i": 3, "s": "3", "f": 3.0, "b": false, "n": null}}</tool_call>'
    (call,) = parse(text).calls
    assert call.arguments == {"i": 3, "s": "3", "f": 3.0, "b": False, "n": None}
    assert type(call.arguments["i"]) is int and type(call.arguments["f"]) is float


def test_reasoning_and_calls() -> None:
    text = '<think>\nI should read it.\n</think>\n\n<tool_call>{"name": "read_file", "arguments": {}}</tool_call>'
    result = parse(text)
    assert result.reasoning == "\nI should read it.\n"
    assert result.content is None
    assert result.calls == [ToolCall("read_file", {})]


def test_in_reasoning_starts_inside_the_block() -> None:
    result = parse("still thinking</think>The answer is 4.", in_reasoning=True)
    assert (result.reasoning, result.content) == ("still thinking", "The answer is 4.")


def test_in_reasoning_without_closer_is_all_reasoning() -> None:
    result = parse("thinking and thinking", in_reasoning=True)
    assert (result.reasoning, result.content) == ("thinking and thinking", None)


@pytest.mark.parametrize("format", ["auto", "hermes"])
def test_a_call_ends_reasoning_the_prompt_opened(format: str) -> None:
    # Qwen3.5/3.6 templates open <think> in the prompt; a model may call without closing it.
    text = (
        'I need the file.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>'
    )
    result = parse(text, format=format, tools=TOOLS, in_reasoning=True)
    assert (result.reasoning, result.content, result.calls) == ("I need the file.\n", None, [READ])
    streamed, _ = stream(text, range(len(text)), format=format, tools=TOOLS, in_reasoning=True)
    assert streamed == result


@pytest.mark.parametrize("format", ["auto", "hermes"])
def test_a_call_opener_in_reasoning_the_model_opened_is_reasoning(format: str) -> None:
    # The model opened this block itself: it may be thinking about the markup it will write.
    text = "<think>I will write <tool_call> tags.</think>Done."
    result = parse(text, format=format, tools=TOOLS)
    assert (result.reasoning, result.content, result.calls) == ("I will write <tool_call> tags.", "Done.", [])


def test_end_of_turn_tokens_are_dropped() -> None:
    assert parse("Hello<|im_end|>").content == "Hello"


def test_llama_style_semicolon_separated_bare_calls() -> None:
    text = '{"name": "read_file", "parameters": {"path": "a"}}; {"name": "run_command", "parameters": {}}'
    result = parse(text, tools=TOOLS)
    assert result.calls == [ToolCall("read_file", {"path": "a"}), ToolCall("run_command", {})]
    assert result.content is None


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_streaming_emits_text_early_and_holds_only_markers(chunk: int) -> None:
    text = "Hello there, reading now. <tool_call>"
    from pydantic_mlx.parsers import StreamParser, TextDelta

    parser = StreamParser(tools=TOOLS)
    seen = ""
    for i in range(0, len(text), chunk):
        seen += "".join(e.content for e in parser.feed(text[i : i + chunk]) if isinstance(e, TextDelta))
    assert seen == "Hello there, reading now. "


def test_streaming_never_leaks_markup() -> None:
    text = 'ok <tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}</tool_call> done<|im_end|>'
    result, events = stream(text, range(len(text)), tools=TOOLS)
    from pydantic_mlx.parsers import TextDelta

    streamed = "".join(e.content for e in events if isinstance(e, TextDelta))
    assert streamed == "ok  done"
    assert result.calls == [READ]


@pytest.mark.parametrize(
    "text",
    [
        'x = {"name": "read_file", "arguments": {"path": "a.txt"}}',
        'Use `{"name": "read_file", "arguments": {}}` as the shape.',
        'print({"name": "read_file", "arguments": {}})',
        'calls.append({"name": "read_file", "arguments": {}}, x)',
        '{"name": "read_file", "arguments": {}}.get("name")',
    ],
)
def test_call_shaped_json_inside_code_or_a_sentence_stays_content(text: str) -> None:
    result = parse(text, tools=TOOLS)
    assert (result.content, result.calls) == (text, [])


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ('Sure! {"name": "read_file", "arguments": {"path": "a.txt"}}', "Sure! "),
        ('Here it is:\n  {"name": "read_file", "arguments": {"path": "a.txt"}}\n', "Here it is:\n  \n"),
        ('Calling: {"name": "read_file", "arguments": {"path": "a.txt"}}.', "Calling: ."),
    ],
)
def test_standalone_bare_call_after_prose(text: str, content: str) -> None:
    result = parse(text, tools=TOOLS)
    assert (result.content, result.calls) == (content, [READ])


@pytest.mark.parametrize("text", ["call: me maybe", " to=functions. is how gpt-oss writes it"])
def test_answer_that_only_looks_like_a_bare_call_start_is_text_without_problems(text: str) -> None:
    result = parse(text)
    assert (result.content, result.calls, result.errors) == (text, [], [])


@pytest.mark.parametrize(
    "text",
    [
        # A `"` in a GLM key or value is not a JSON string: it must not hide the first closer.
        '<tool_call>f\n<arg_key>"</arg_key>\n<arg_value>null</arg_value></tool_call>\n'
        '<tool_call>f\n<arg_key>"</arg_key>\n<arg_value>null</arg_value></tool_call>',
        '<tool_call>f<arg_key>q</arg_key><arg_value>say "hi</arg_value></tool_call>'
        '<tool_call>f<arg_key>q</arg_key><arg_value>x"</arg_value></tool_call>',
        '<tool_call>\n<function=f>\n<parameter=q>\nsay "hi\n</parameter>\n</function>\n</tool_call>'
        '<tool_call>\n<function=f>\n<parameter=q>\nx"\n</parameter>\n</function>\n</tool_call>',
    ],
)
def test_auto_reads_a_quote_in_an_xml_call_as_text(text: str) -> None:
    result = parse(text)
    assert len(result.calls) == 2 and result.errors == [] and result.content is None
    streamed, _ = stream(text, range(len(text)))
    assert streamed == result
