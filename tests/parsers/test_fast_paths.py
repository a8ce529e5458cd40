"""The streaming fast paths (a delta that settles nothing new skips the state machine's step)
decide exactly what a step decides: the same events, cut at the same places."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pydantic_mlx.parsers import StreamParser, TextDelta, _pythonic, available_formats
from pydantic_mlx.parsers import _dialect as dialect_of  # pyright: ignore[reportPrivateUsage]

from .conftest import feed_in_pieces
from .test_properties import SETTINGS, TOOLS_CHOICES, marked_text

FORMATS = available_formats()


def without_fast_paths(parser: StreamParser) -> StreamParser:
    """`parser` with every delta stepped through the state machine."""
    engine: Any = parser._engine  # pyright: ignore[reportPrivateUsage]
    engine._prepare_fast_paths = lambda: None
    engine._quiet = engine._settles_nothing = None
    return parser


@SETTINGS
@given(
    text=marked_text,
    format=st.sampled_from(FORMATS),
    tools=TOOLS_CHOICES,
    truncated=st.booleans(),
    in_reasoning=st.booleans(),
    data=st.data(),
)
def test_fast_paths_emit_the_same_events_as_stepping(
    text: str, format: str, tools: Any, truncated: bool, in_reasoning: bool, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=30))
    fast = StreamParser(format, tools, in_reasoning)
    slow = without_fast_paths(StreamParser(format, tools, in_reasoning))
    assert feed_in_pieces(fast, text, cuts, truncated) == feed_in_pieces(slow, text, cuts, truncated)
    assert fast.result() == slow.result()


@SETTINGS
@given(text=marked_text, format=st.sampled_from(FORMATS), in_reasoning=st.booleans())
def test_fast_paths_one_character_at_a_time(text: str, format: str, in_reasoning: bool) -> None:
    cuts = list(range(len(text)))
    fast = StreamParser(format, None, in_reasoning)
    slow = without_fast_paths(StreamParser(format, None, in_reasoning))
    assert feed_in_pieces(fast, text, cuts, False) == feed_in_pieces(slow, text, cuts, False)


def _starts_no_marker(format: str) -> st.SearchStrategy[str]:
    """Text with no character that may begin a marker (or an untagged call) of `format`."""
    dialect = dialect_of(format)
    first = {p for p in dialect.proper_prefixes if len(p) == 1} | {"{", "["}
    return st.text(alphabet=st.characters(blacklist_characters="".join(first)), max_size=300)


@SETTINGS
@given(format=st.sampled_from(FORMATS), data=st.data())
def test_text_without_markers_streams_one_text_event_per_delta(format: str, data: st.DataObject) -> None:
    text = data.draw(_starts_no_marker(format))
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=40))
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    deltas = [text[a:b] for a, b in pairwise(bounds)]
    parser = StreamParser(format)
    assert parser.feed("ok\n") == [TextDelta("ok\n")]  # past the answer's start (`at_start` openers)
    events = [parser.feed(delta) for delta in deltas]
    assert events == [[TextDelta(delta)] if delta else [] for delta in deltas]
    assert parser.close() == []


python_pieces = st.sampled_from(
    [
        "f(",
        "g(",
        "from",
        "class",
        "if",
        "x",
        "=",
        "==",
        ",",
        " ",
        "\\\n",
        "\n",
        "#c",
        "1",
        "'s'",
        ")",
        "[",
        "]",
    ]
)


@SETTINGS
@given(text=st.lists(python_pieces, max_size=16).map("".join))
def test_keyword_argument_check_skips_only_text_without_one(text: str) -> None:
    """The pre-check before tokenizing never hides a keyword argument tokenizing would find."""
    found = _pythonic._alias_keyword_arguments(text)  # pyright: ignore[reportPrivateUsage]
    if found is not None:
        assert _pythonic._MAYBE_KEYWORD_ARGUMENT.search(text)  # pyright: ignore[reportPrivateUsage]
    every = re.compile("")
    original = _pythonic._MAYBE_KEYWORD_ARGUMENT  # pyright: ignore[reportPrivateUsage]
    try:
        _pythonic._MAYBE_KEYWORD_ARGUMENT = every  # pyright: ignore[reportPrivateUsage]
        unchecked = _pythonic._alias_keyword_arguments(text)  # pyright: ignore[reportPrivateUsage]
    finally:
        _pythonic._MAYBE_KEYWORD_ARGUMENT = original  # pyright: ignore[reportPrivateUsage]
    assert found == unchecked


def test_the_engine_keeps_a_compact_instance_layout() -> None:
    # CPython (3.11) shares an instance dict's keys across instances only up to 29 of them; past
    # that each engine's attributes live in a plain dict, and every attribute read in `feed` is
    # slower: one attribute more cost 5-7% per 1-char delta of ordinary output. Counted, not timed.
    parser = StreamParser("auto", tools=[{"type": "function", "function": {"name": "f"}}])
    for text in ("<think>x</think>hi [ARGS]\n{", '<tool_call>{"a"<tool_call>{"a"<tool_call>', "`x` [f(a=1)]"):
        parser.feed(text)
    parser.close()
    assert len(vars(parser._engine)) <= 29  # pyright: ignore[reportPrivateUsage]
