"""Properties every format (and `auto`) must hold on arbitrary text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydantic_mlx.parsers import ToolCall, available_formats, parse, render_calls
from pydantic_mlx.parsers.formats import get_format

from .conftest import events_agree, stream

FORMATS = available_formats()
NAMED_FORMATS = [f for f in FORMATS if f != "auto"]


def _markers() -> list[str]:
    found: set[str] = {"```", "```json\n", "{", "[", "}", "]", '"name"', '"arguments"', ":", ",", "\n", ";"}
    for name in NAMED_FORMATS:
        fmt = get_format(name)
        for opener, closer in fmt.REASONING:
            found |= {opener, closer}
        found |= set(fmt.DROP)
        for syntax in fmt.CALLS:
            found.add(syntax.opener)
            found |= set(getattr(syntax.end, "markers", ()))
            found |= set(getattr(syntax.end, "after", ()))
    return sorted(found)


MARKERS = _markers()
pieces = st.one_of(st.sampled_from(MARKERS), st.text(max_size=12))
marked_text = st.lists(pieces, max_size=25).map("".join)
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("PARSER_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TOOLS_CHOICES = st.sampled_from(
    [None, [], [{"type": "function", "function": {"name": "f", "parameters": {}}}]]
)


@SETTINGS
@given(
    text=marked_text,
    format=st.sampled_from(FORMATS),
    tools=TOOLS_CHOICES,
    truncated=st.booleans(),
    in_reasoning=st.booleans(),
    data=st.data(),
)
def test_streaming_equals_parse_and_never_raises(
    text: str, format: str, tools: Any, truncated: bool, in_reasoning: bool, data: st.DataObject
) -> None:
    whole = parse(text, format=format, tools=tools, truncated=truncated, in_reasoning=in_reasoning)
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=12))
    result, events = stream(
        text, cuts, format=format, tools=tools, truncated=truncated, in_reasoning=in_reasoning
    )
    assert result == whole
    assert events_agree(result, events)


@SETTINGS
@given(text=marked_text, format=st.sampled_from(FORMATS))
def test_one_character_at_a_time_equals_parse(text: str, format: str) -> None:
    result, _ = stream(text, range(len(text)), format=format)
    assert result == parse(text, format=format)


plain = st.text(alphabet=st.characters(blacklist_characters="<[{`|｜>"), max_size=200)


@SETTINGS
@given(text=plain, format=st.sampled_from(FORMATS))
def test_text_without_markers_passes_through(text: str, format: str) -> None:
    result = parse(text, format=format)
    assert result.content == (text if text.strip() else None)
    assert result.calls == [] and result.errors == []


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
arguments = st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@SETTINGS
@given(calls=st.lists(st.builds(ToolCall, names, arguments), min_size=1, max_size=3), data=st.data())
def test_hermes_round_trips_every_call(calls: list[ToolCall], data: st.DataObject) -> None:
    text = render_calls(calls, "hermes")
    for format in ("hermes", "auto"):
        result = parse(text, format=format)
        assert result.calls == calls
        assert result.content is None
        cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
        assert stream(text, cuts, format=format)[0] == result
    assert [json.loads(c.arguments_json()) for c in result.calls] == [c.arguments for c in calls]


prose = st.text(alphabet=st.characters(blacklist_characters="<[{`|｜>"), max_size=30)


@SETTINGS
@given(
    calls=st.lists(st.builds(ToolCall, names, arguments), min_size=1, max_size=2),
    format=st.sampled_from(NAMED_FORMATS),
    before=prose,
    cut=st.integers(0, 400),
    data=st.data(),
)
def test_rendered_calls_in_any_format_stream_like_parse_even_when_cut(
    calls: list[ToolCall], format: str, before: str, cut: int, data: st.DataObject
) -> None:
    text = before + render_calls(calls, format)
    text = text[: len(text) - cut] if cut < len(text) else text
    for parse_format in (format, "auto"):
        for truncated in (False, True):
            whole = parse(text, format=parse_format, truncated=truncated)
            cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=10))
            result, events = stream(text, cuts, format=parse_format, truncated=truncated)
            assert result == whole
            assert events_agree(result, events)


@SETTINGS
@given(
    calls=st.lists(st.builds(ToolCall, names, arguments), min_size=1, max_size=3),
    format=st.sampled_from(NAMED_FORMATS),
)
def test_auto_reads_every_rendered_format(calls: list[ToolCall], format: str) -> None:
    text = render_calls(calls, format)
    expected = parse(text, format=format)
    result = parse(text, format="auto")
    assert [(c.name, c.arguments) for c in result.calls] == [(c.name, c.arguments) for c in expected.calls]
    assert result.content == expected.content


@settings(max_examples=25, deadline=None)
@given(
    filler=st.lists(
        st.sampled_from(["word ", "{x} ", "[y] ", "\n", "   ", "`a` ", "<b> ", "```\ncode\n```\n"]),
        min_size=500,
        max_size=3000,
    ),
    ending=st.sampled_from(
        [
            '{"name": "f", "arguments": {"p": 1}}',
            '<tool_call>{"name": "f", "arguments": {}}</tool_call>',
            '```json\n{"name": "f", "arguments": {}}\n```',
            "<think>x</think>y",
        ]
    ),
    step=st.sampled_from([1, 3, 17, 500]),
)
def test_long_outputs_stream_like_parse(filler: list[str], ending: str, step: int) -> None:
    """Past a few kilobytes the engine forgets decided text; results must not change."""
    text = "".join(filler) + ending + " tail"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert stream(text, range(0, len(text), step), tools=tools)[0] == parse(text, tools=tools)
