"""Hostile texts for the parsers, generated from each format's own markers (issue 21).

A hostile or broken model can write any text; the texts that cost a parser most are a short
unit repeated without end, after a prefix that puts the parser in some state: a marker
repeated, half a marker, a call opener whose value never closes, a quote or a backslash run in
a call, deep brackets. `hostile_shapes(format)` lists such (prefix, unit) pairs from the
format's markers (openers, closers, quoted spans, reasoning and dropped markers), plus the
generic ones every format meets; `interleavings` adds pairs of markers. Shared by
`benchmarks/parsers.py --worst-case` (timings at 1 MB) and `test_hostile_linear.py` (growth).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic_mlx.parsers import available_formats
from pydantic_mlx.parsers.formats import get_format
from pydantic_mlx.parsers.formats._syntax import Closers, JsonValue

__all__ = ["Shape", "hostile_shapes", "interleavings", "vocabulary"]

CALL_HEAD = '{"name": "read_file", "arguments": '
OPEN_STRING = CALL_HEAD + '{"path": "'

GENERIC: tuple[tuple[str, str], ...] = (
    ("", "{"),
    ("", "["),
    ("", "{\n"),
    ("", "[\n"),
    ("", "{ "),
    ("", "[{"),
    ("", "{["),
    ("", '{"'),
    ("", '"'),
    ("", "'"),
    ("", "\\"),
    ("", '\\"'),
    ("", "`"),
    ("", "```"),
    ("", "```json\n"),
    ("", '{"name": '),
    ("", CALL_HEAD),
    ("", '[{"name": "read_file", "arguments": {}}'),
    ("", '{"name": "read_file", "arguments": {}}'),
    ("", '{"a": '),
    ("", '{"a": ['),
    ("", "("),
    ("", "[read_file("),
    ("", "read_file("),
    ("", " "),
    ("", "\n"),
    ("", "<"),
    ("", "</"),
    ("", "<|"),
    ("", "|>"),
    ("", ";{"),
    ("", "a"),
    ("", "x = {"),
    (OPEN_STRING, "x"),
    (OPEN_STRING, '\\"'),
    (OPEN_STRING, "\\"),
    ("```json\n", " "),
    ("```json\n", "{"),
    ("```json\n", '{"name": '),
    ("[", " "),
    ("{", " "),
    ("[", "\n"),
    ('{"name": "read_file", "arguments": {}}', " "),
    ('{"name": "read_file", "arguments": {}}', ";"),
)
"""Shapes any format meets: brackets, quotes, backslashes, fences, call heads, deep JSON, long
strings without their closing quote, and spaces where a call may still begin."""


@dataclass(frozen=True)
class Shape:
    """`prefix`, then `unit` repeated: `text(size)` is `size` characters of it."""

    prefix: str
    unit: str

    def text(self, size: int) -> str:
        body = size - len(self.prefix)
        return self.prefix + (self.unit * (body // len(self.unit) + 1))[: max(body, 0)]

    @property
    def label(self) -> str:
        return f"{self.prefix!r}+{self.unit!r}*" if self.prefix else f"{self.unit!r}*"


def _formats(format: str) -> list[str]:
    return [f for f in available_formats() if f != "auto"] if format == "auto" else [format]


def vocabulary(format: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """The markers `format` knows (every literal it looks for), its call openers, and its
    quoted spans in call bodies as (opener, closer) pairs."""
    markers: set[str] = set()
    openers: set[str] = set()
    quotes: set[tuple[str, str]] = set()
    for name in _formats(format):
        fmt = get_format(name)
        for opener, closer in fmt.REASONING:
            markers.update((opener, closer))
        markers.update(fmt.DROP)
        for syntax in fmt.CALLS:
            openers.add(syntax.opener)
            if syntax.trailer:
                markers.add(syntax.trailer)
            end = syntax.end
            if isinstance(end, Closers):
                markers.update(end.markers)
                markers.update(end.complete_at)
                for quote in end.quotes:
                    quotes.update((quote.opener, closer) for closer in quote.closers)
            elif isinstance(end, JsonValue):
                markers.update(end.after)
                if end.separator:
                    markers.add(end.separator)
    markers |= openers | {q for pair in quotes for q in pair}
    return sorted(markers), sorted(openers), sorted(quotes)


def hostile_shapes(format: str) -> list[Shape]:
    """Every hostile shape for `format`: the generic ones, and for each of its markers the
    marker repeated, half of it repeated, and it followed by a bracket, a quote or a newline;
    inside each call opener, spaces, names, brackets, quotes, backslashes, the opener's own
    first part, a value that never closes and deep JSON; inside each quoted span, its text
    without a closer."""
    markers, openers, quotes = vocabulary(format)
    shapes = [Shape(prefix, unit) for prefix, unit in GENERIC]
    for marker in markers:
        half = marker[: max(1, len(marker) // 2)]
        shapes += [Shape("", unit) for unit in (marker, half, marker + "{", marker + '"', marker + "\n")]
    for opener in openers:
        units = (" ", "a", "{", "[", '"', "\\", "<", opener[:-1] or opener, opener + "{")
        shapes += [Shape(opener, unit) for unit in units]
        shapes += [
            Shape(opener + OPEN_STRING, "x"),
            Shape(opener + OPEN_STRING, '\\"'),
            Shape(opener + "{", '"a": {'),
            Shape(opener + "[", "["),
            Shape(opener + "read_file", "a"),
        ]
    for quote, closer in quotes:
        for opener in openers:
            shapes += [Shape(opener + quote, "x"), Shape(opener + quote, closer[:-1] or "x")]
    return list(dict.fromkeys(shapes))


def interleavings(format: str, count: int, seed: int = 0) -> list[Shape]:
    """`count` shapes whose unit joins two to four of the format's markers and pieces of calls
    (a marker opening what the next one interrupts), drawn with `seed`."""
    markers, openers, _ = vocabulary(format)
    pieces = [*markers, *openers, "{", "[", '"', "\\", "\n", " ", "x", CALL_HEAD, '{"name": ']
    rng = random.Random(f"{format}:{seed}")
    shapes: list[Shape] = []
    for _ in range(count):
        unit = "".join(rng.choice(pieces) for _ in range(rng.randint(2, 4)))
        shapes.append(Shape(rng.choice(["", *openers]), unit))
    return shapes
