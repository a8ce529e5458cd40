"""JSON call values are read as written or not at all: nothing the model wrote is guessed at."""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import MalformedCall, parse
from pydantic_mlx.parsers._json import loads_lenient

from .conftest import stream, unread

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        "{'a': 1, 'a': 2}",
        '{"a": {"b": 1, "b": 1}}',
        '{"zip": 01234}',
        "{'zip': 01234}",
        '{"n": -00.5}',
        '{"n": \u0661\u0662}',  # Arabic-Indic digits: int() reads them, JSON does not
        '{"n": 1\u00b2}',
    ],
)
def test_what_json_does_not_say_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads_lenient(text)


@pytest.mark.parametrize("text", ['{"n": 0}', '{"n": -0.5}', "{'n': 0e3}", '{"n": 10}', '{"a": 1, "b": 1}'])
def test_json_numbers_and_distinct_keys_still_read(text: str) -> None:
    assert isinstance(loads_lenient(text), dict)


@pytest.mark.parametrize(
    "text",
    [
        # Which name, which arguments, which zip code? The model must say it again.
        '<tool_call>{"name": "f", "arguments": {}, "name": "g"}</tool_call>',
        '<tool_call>{"name": "f", "arguments": {"a": 1}, "arguments": {"b": 2}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": {"x": 1, "x": 2}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": {"zip": 01234}}</tool_call>',
        '[TOOL_CALLS]f[ARGS]{"a": 1, "a": 2}',
        '<|python_tag|>{"name": "f", "parameters": {"zip": 007}}',
    ],
)
def test_a_marked_call_with_an_ambiguous_value_is_malformed_not_guessed(text: str) -> None:
    result = parse(text, tools=TOOLS)
    assert result.calls == []
    assert [type(e) for e in result.errors] == [MalformedCall]
    assert unread(result) == text
    streamed, _ = stream(text, range(len(text)), tools=TOOLS)
    assert streamed == result


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "f", "arguments": {"x": 1, "x": 2}}',
        '```json\n{"name": "f", "arguments": {"zip": 01234}}\n```',
    ],
)
def test_an_untagged_object_with_an_ambiguous_value_stays_text(text: str) -> None:
    result = parse(text, tools=TOOLS)
    assert result.calls == []
    assert result.content == text
