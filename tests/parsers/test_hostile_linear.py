"""The parser's work grows linearly with hostile text, for every format (issue 21).

Hostile texts are a unit repeated after a prefix that puts the parser in some state
(`hostile.py`, generated from each format's markers). The work is counted, not timed: the lines
the parser's own code runs (a count does not depend on how busy the machine is, so a quadratic
regression fails every time and a noisy machine never does). With `c(n)` the count for `n`
characters, a linear parser has `c(4n) - c(2n)` twice `c(2n) - c(n)`; a rescan of the text so far
on every delta makes it four times. One timed check (ratios, best of several) covers the work
no line count sees: a search in C rescanning from the same place on every delta. The timings
themselves, against the 1 s per MB target, are in `benchmarks/parsers.py --worst-case`.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import pydantic_mlx.parsers
from pydantic_mlx.parsers import StreamParser, available_formats, parse

from .hostile import Shape, hostile_shapes, interleavings

TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
PARSERS = str(Path(pydantic_mlx.parsers.__file__).parent)
N = 300  # characters: past the parser's bounded look-aheads (256), few enough to count fast
CHUNKS = (1, 3, 8, 2, 5)  # delta sizes, cycled: a token is 1 to 8 characters
SHAPES_PER_FORMAT = 16


def lines_run(fn: Callable[[], object]) -> int:
    """How many lines of the parsers package `fn` runs."""
    count = 0

    def in_parsers(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        return count_lines if frame.f_code.co_filename.startswith(PARSERS) else None

    def count_lines(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal count
        count += event == "line"
        return count_lines

    sys.settrace(in_parsers)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def streamed(text: str, format: str) -> None:
    parser = StreamParser(format, tools=TOOLS)
    i = k = 0
    while i < len(text):
        size = CHUNKS[k % len(CHUNKS)]
        parser.feed(text[i : i + size])
        i, k = i + size, k + 1
    parser.close()


def growth(shape: Shape, run: Callable[[str], object]) -> tuple[float, list[int]]:
    """`(c(4n) - c(2n)) / (c(2n) - c(n))`, about 2 for linear work (and the counts). The texts
    hold whole units, at least `N` characters of them, so their ends are alike."""
    units = -(-N // len(shape.unit))
    texts = [shape.prefix + shape.unit * (units * k) for k in (1, 2, 4)]
    run(texts[0])  # what is built once (patterns for the states it reaches) is not counted
    counts = [lines_run(lambda text=text: run(text)) for text in texts]
    first, second = counts[1] - counts[0], counts[2] - counts[1]
    # Work that hardly grows at all (a text settled in one search) is linear too.
    return (second / first if first > N else 2.0), counts


def sample(format: str) -> list[Shape]:
    """The format's hostile shapes this test runs: a fixed sample (a different one per format)
    and a few interleavings; `test_every_shape_is_linear` runs them all, on request."""
    shapes = hostile_shapes(format)
    rng = random.Random(format)
    return rng.sample(shapes, min(SHAPES_PER_FORMAT, len(shapes))) + interleavings(format, 4)


@pytest.mark.parametrize("format", available_formats())
def test_hostile_text_costs_linear_work(format: str) -> None:
    slow: list[str] = []
    for shape in sample(format):
        for mode, run in (
            ("parse", lambda text: parse(text, format, tools=TOOLS)),
            ("stream", lambda text: streamed(text, format)),
        ):
            ratio, counts = growth(shape, run)
            if ratio > 2.6:
                slow.append(f"{mode} {shape.label}: lines {counts}, growth {ratio:.2f}")
    assert not slow, "\n".join(slow)


@pytest.mark.skipif(not os.environ.get("HOSTILE_ALL"), reason="every shape of every format: minutes")
@pytest.mark.parametrize("format", available_formats())
def test_every_shape_is_linear(format: str) -> None:
    """All shapes, not a sample: `HOSTILE_ALL=1 pytest tests/parsers/test_hostile_linear.py`."""
    slow = [
        shape.label
        for shape in hostile_shapes(format) + interleavings(format, 40)
        if growth(shape, lambda text: streamed(text, format))[0] > 2.6
        or growth(shape, lambda text: parse(text, format, tools=TOOLS))[0] > 2.6
    ]
    assert not slow, slow


# A state that keeps its place in the text, for each kind of wait: in answer text, in reasoning,
# in a marked region (closers, quoted spans, a JSON value, a name), in an untagged call, in a fence.
TIMED = [
    ("auto", Shape("", "{\n")),
    ("auto", Shape("<think>", "<think")),
    ("auto", Shape("<tool_call>", '"')),
    ("auto", Shape("<tool_call>" + '{"name": "read_file", "arguments": {"a": "', "x")),
    ("mistral", Shape("[TOOL_CALLS]", "<")),
    ("llama3_json", Shape("<|python_tag|>", "a")),
    ("auto", Shape('{"name": "read_file", "arguments": {"a": "', "x")),
    ("auto", Shape("```json\n", " ")),
    ("kimi_k2", Shape("<|tool_call_begin|>", "<|tool_call_begin|")),
]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


@pytest.mark.parametrize(("format", "shape"), TIMED, ids=[f"{f}-{s.label}" for f, s in TIMED])
def test_stream_time_grows_linearly(format: str, shape: Shape) -> None:
    # 4x the text, 4-char deltas: linear work takes ~4x, a rescan per delta ~16x (the search in C
    # on 64k characters is then most of the time). Best of 3, short and long in turns; a ratio
    # over 8 is measured once more (a busy machine can slow one run, a rescan slows every one).
    short, long = shape.text(16_000), shape.text(64_000)
    ratios: list[float] = []
    for _ in range(2):
        best = [float("inf"), float("inf")]
        for _ in range(3):
            for k, text in enumerate((short, long)):
                best[k] = min(best[k], _seconds(lambda text=text: streamed4(text, format)))
        ratios.append(best[1] / max(best[0], 1e-3))
        if ratios[-1] < 8:
            break
    assert min(ratios) < 8, ratios


def streamed4(text: str, format: str) -> None:
    parser = StreamParser(format, tools=TOOLS)
    for i in range(0, len(text), 4):
        parser.feed(text[i : i + 4])
    parser.close()
