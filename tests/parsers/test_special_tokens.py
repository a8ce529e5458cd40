"""Special tokens decide (`StreamParser(special_tokens=...)`, `feed(text, special=True)`).

When the caller knows which generated pieces are special tokens, a marker that is a special
token counts only where it came as that token; spelled with ordinary tokens it is text. Fed the
way a tokenizer produces it (every marker as its token), a stream reads exactly as `parse`.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydantic_mlx.parsers import StreamParser, ToolCall, parse, render_calls
from pydantic_mlx.parsers.formats import format_names, get_format

CALLS = [ToolCall("get_weather", {"city": "Paris", "days": 3}), ToolCall("read_file", {"path": "a </b> c"})]
TAGGED_ONLY = [n for n in format_names() if not get_format(n).UNTAGGED]


def markers_of(format: str) -> frozenset[str]:
    from pydantic_mlx.parsers import _dialect  # pyright: ignore[reportPrivateUsage]

    return _dialect(format).markers


def pieces(text: str, special: frozenset[str], cuts: list[int]) -> list[tuple[str, bool]]:
    """`text` as a tokenizer streams it: each special marker as one piece, the rest cut at `cuts`."""
    pattern = re.compile("|".join(re.escape(m) for m in sorted(special, key=len, reverse=True)))
    out: list[tuple[str, bool]] = []
    last = 0
    for match in pattern.finditer(text):
        out += _ordinary(text, last, match.start(), cuts)
        out.append((match.group(), True))
        last = match.end()
    return out + _ordinary(text, last, len(text), cuts)


def _ordinary(text: str, start: int, end: int, cuts: list[int]) -> list[tuple[str, bool]]:
    bounds = [start, *sorted({c for c in cuts if start < c < end}), end]
    return [(text[a:b], False) for a, b in itertools.pairwise(bounds) if b > a]


def streamed(format: str, special: frozenset[str], parts: list[tuple[str, bool]], truncated: bool = False):
    parser = StreamParser(format, special_tokens=special)
    for text, is_special in parts:
        parser.feed(text, special=is_special)
    parser.close(truncated)
    return parser.result()


@pytest.mark.parametrize("format", format_names())
@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=12), before=st.sampled_from(["", "Sure. ", "Line\n"]))
def test_markers_fed_as_their_tokens_read_as_parse(format: str, cuts: list[int], before: str) -> None:
    text = before + render_calls(CALLS, format)
    special = markers_of(format)
    assert streamed(format, special, pieces(text, special, cuts)) == parse(text, format=format)


@pytest.mark.parametrize("format", TAGGED_ONLY)
@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=12))
def test_markers_spelled_with_ordinary_tokens_are_text(format: str, cuts: list[int]) -> None:
    # A model writing *about* its format: the same characters, no special token among them.
    text = "The format looks like this: " + render_calls(CALLS, format)
    result = streamed(format, markers_of(format), _ordinary(text, 0, len(text), cuts))
    assert (result.content, result.calls, result.errors) == (text, [], [])


def test_prose_about_a_control_marker_is_text_and_the_real_marker_still_calls() -> None:
    special = frozenset({"[TOOL_CALLS]", "[ARGS]", "</s>"})
    prose = [("Mistral starts calls with ", False), ("[TOOL_", False), ("CALLS] then JSON.", False)]
    assert streamed("mistral", special, prose).content == "Mistral starts calls with [TOOL_CALLS] then JSON."
    call = [("Checking. ", False), ("[TOOL_CALLS]", True), ('get_time{"tz": "UTC"}', False)]
    result = streamed("mistral", special, call)
    assert (result.content, result.calls) == ("Checking. ", [ToolCall("get_time", {"tz": "UTC"})])


def test_a_closer_spelled_inside_a_value_does_not_end_the_call() -> None:
    special = frozenset({"<tool_call>", "</tool_call>"})
    parts = [
        ("<tool_call>", True),
        ('{"name": "write", "arguments": {"text": "x</tool_call>', False),
        ('y"}}', False),
        ("</tool_call>", True),
    ]
    result = streamed("hermes", special, parts)
    assert result.calls == [ToolCall("write", {"text": "x</tool_call>y"})]


def test_special_flag_on_a_piece_that_is_not_a_marker_changes_nothing() -> None:
    parts = [("Hello", True), (" world", False)]
    assert streamed("hermes", frozenset({"<tool_call>"}), parts).content == "Hello world"


def test_without_special_tokens_every_marker_counts() -> None:
    parser = StreamParser("mistral")
    parser.feed('[TOOL_CALLS]get_time{"tz": "UTC"}')  # not flagged: no knowledge, so it counts
    parser.close()
    assert parser.result().calls == [ToolCall("get_time", {"tz": "UTC"})]
