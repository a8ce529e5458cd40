"""A call that gives one argument twice is malformed in every format, never a silent last-wins."""

from __future__ import annotations

import pytest

from parsers.conftest import stream
from pydantic_mlx.parsers import MalformedCall, ToolCall, available_formats, parse, render_calls

NAMED_FORMATS = [f for f in available_formats() if f != "auto"]
WITHOUT_MARKERS = frozenset({"xlam"})  # its calls are a bare JSON list, read by the untagged rules

DSML = (
    '<｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n'
    '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="city" string="true">Rome</｜DSML｜parameter>\n'
    "</｜DSML｜invoke>\n</｜DSML｜function_calls>"
)
KIMI_K3 = (
    '<|open|>tools<|sep|><|open|>call tool="f" index="1"<|sep|>'
    '<|open|>argument key="city" type="string"<|sep|>Paris<|close|>argument<|sep|>'
    '<|open|>argument key="city" type="string"<|sep|>Rome<|close|>argument<|sep|>'
    "<|close|>call<|sep|><|close|>tools<|sep|>"
)


def _repeated(format: str) -> str:
    text = render_calls([ToolCall("f", {"city": "Paris", "other": {"town": "Rome"}})], format)
    return text.replace("other", "city")


def _assert_malformed(text: str, format: str) -> None:
    result = parse(text, format=format)
    assert result.calls == []
    assert [type(e) for e in result.errors] == [MalformedCall]
    streamed, _ = stream(text, range(len(text)), format=format)
    assert streamed == result


@pytest.mark.parametrize("format", [f for f in NAMED_FORMATS if f not in WITHOUT_MARKERS])
def test_an_argument_given_twice_is_malformed(format: str) -> None:
    _assert_malformed(_repeated(format), format)
    _assert_malformed(_repeated(format), "auto")


@pytest.mark.parametrize("format", sorted(WITHOUT_MARKERS))
def test_an_unmarked_call_list_with_an_argument_given_twice_is_text(format: str) -> None:
    # Without a marker nothing says it was meant as a call: JSON that is not a valid call stays
    # the answer's text (the untagged rules), never a call with one of the two values.
    text = _repeated(format)
    for reader in (format, "auto"):
        result = parse(text, format=reader)
        assert (result.content, result.calls, result.errors) == (text, [], [])


@pytest.mark.parametrize(("text", "format"), [(DSML, "deepseek"), (KIMI_K3, "kimi_k2")])
def test_an_xml_argument_given_twice_is_malformed(text: str, format: str) -> None:
    _assert_malformed(text, format)


def test_a_key_given_twice_inside_a_value_is_malformed() -> None:
    _assert_malformed("<|python_start|>[f(a={'k': 1, 'k': 2})]<|python_end|>", "pythonic")
    _assert_malformed("<|tool_call>call:f{a:{k:1,k:2}}<tool_call|>", "gemma4")
