"""Properties every tool-call format keeps, checked over each format's own data (its `CASE`):
never raises, streaming (cut anywhere) equals parsing whole, rendered calls read back exactly."""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.conftest import events_agree, stream
from pydantic_mlx.parsers import ToolCall, parse
from pydantic_mlx.parsers._tools import tool_set
from pydantic_mlx.parsers._types import CallSyntaxError
from pydantic_mlx.parsers.formats import format_names, get_format

from . import PROSE, FormatCase, tools_typing

# Each format's test module declares its CASE; hermes has its own properties in tests/parsers.
CASES = [import_module(f"{__package__}.test_{name}").CASE for name in format_names() if name != "hermes"]
every_format = pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)


def properties(examples: int) -> settings:
    """Hypothesis settings for a property run on `examples` inputs, without time limits."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cuts(text: str, data: st.DataObject) -> list[int]:
    """Where a stream of `text` is cut into deltas."""
    return data.draw(st.lists(st.integers(0, len(text)), max_size=20), label="cuts")


@every_format
def test_rendered_calls_read_back_whole_and_streamed(case: FormatCase) -> None:
    # Drawing call lists is what this costs, so each format sets its own number of examples.
    @properties(case.round_trips)
    @given(data=st.data())
    def read_back(data: st.DataObject) -> None:
        calls = data.draw(case.calls, label="calls")
        shape = data.draw(st.sampled_from(sorted(case.renderings)), label="rendering")
        before, after = data.draw(case.prose, label="before"), data.draw(case.prose, label="after")
        rendered, expected = case.renderings[shape](calls)
        text = before + rendered + after
        outside = before + case.joiner * (len(calls) - 1) + after
        declared: list[Any] = [tools_typing(calls)] + ([None] if shape in case.read_without_tools else [])
        deltas = cuts(text, data)
        for format in (case.name, "auto"):
            for tools in declared:
                result = parse(text, format=format, tools=tools)
                assert result.calls == expected
                assert (result.content, result.reasoning) == (outside if outside.strip() else None, None)
                assert result.errors == []
                streamed, events = stream(text, deltas, format=format, tools=tools)
                assert streamed == result
                assert events_agree(result, events)
                arguments = [json.loads(c.arguments_json()) for c in result.calls]
                assert arguments == [c.arguments for c in expected]

    read_back()


@every_format
@properties(200)
@given(data=st.data(), truncated=st.booleans(), in_reasoning=st.booleans())
def test_marker_soup_never_raises_and_streams_like_parse(
    case: FormatCase, data: st.DataObject, truncated: bool, in_reasoning: bool
) -> None:
    text = data.draw(case.soup, label="text")
    tools = data.draw(st.sampled_from(case.soup_tools), label="tools")
    options: dict[str, Any] = {"tools": tools, "truncated": truncated, "in_reasoning": in_reasoning}
    whole = parse(text, format=case.name, **options)
    for deltas in (cuts(text, data), range(len(text))):  # random cuts, then one character at a time
        streamed, events = stream(text, deltas, format=case.name, **options)
        assert streamed == whole
        assert events_agree(whole, events)
    # The format's reader, given the soup as a call body, returns calls or raises CallSyntaxError.
    region: Any = get_format(case.name)
    if not region.CALLS:  # a format without markers (xLAM): the untagged readers did the reading
        return
    try:
        calls = region.parse_region(data.draw(st.sampled_from(region.CALLS)), text, tool_set(tools))
    except CallSyntaxError:
        return
    assert calls or case.regions_without_calls
    # A region of several calls may hold a bad one, returned in its place with its own text.
    assert any(isinstance(call, ToolCall) for call in calls) or not calls
    for call in calls:
        if isinstance(call, CallSyntaxError):
            assert call.text
            continue
        assert isinstance(call.arguments, dict)
        json.dumps(call.arguments)


@every_format
@properties(100)
@given(text=PROSE)
def test_text_without_markers_is_unchanged(case: FormatCase, text: str) -> None:
    result = parse(text, format=case.name)
    assert result.content == (text if text.strip() else None)
    assert (result.calls, result.errors) == ([], [])
