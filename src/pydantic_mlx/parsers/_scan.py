"""Small scanning helpers shared by format modules."""

from __future__ import annotations

import re

from ._types import CallSyntaxError

__all__ = ["ForwardFinder", "read_attributes", "skip_space", "split_outside", "text_until"]


class ForwardFinder:
    """Finds the next `marker` at or after a position that only moves forward, rescanning
    only when the position has passed the last hit (linear overall)."""

    def __init__(self, text: str, marker: str) -> None:
        self.text, self.marker, self.hit = text, marker, -2

    def next(self, pos: int) -> int:
        """Index of the first `marker` at or after `pos`, or -1."""
        if self.hit == -2 or (self.hit != -1 and self.hit < pos):
            self.hit = self.text.find(self.marker, pos)
        return self.hit


def skip_space(text: str, pos: int) -> int:
    """The offset of the first non-space character of `text` from `pos` (or its end)."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def split_outside(text: str, separator: str) -> list[str]:
    """`text` cut at each `separator` (one character) outside strings (either quote, backslash
    escapes) and brackets, each piece stripped of spaces; empty pieces are kept."""
    pieces: list[str] = []
    depth, quote, escaped, start = 0, "", False, 0
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == separator and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces]


def text_until(text: str, start: int, closer: str, forbidden: str) -> tuple[str, int]:
    """The text from `start` to the next `closer`, and the offset after that closer. Raises
    `CallSyntaxError` when no closer comes, or `forbidden` (an element's opener: the element
    was opened again before it closed) comes first."""
    end = text.find(closer, start)
    if end < 0:
        raise CallSyntaxError(f"no {closer} to end a value")
    value = text[start:end]
    if forbidden in value:
        raise CallSyntaxError(f"{forbidden} inside a value that {closer} ends")
    return value, end + len(closer)


def read_attributes(inside: str, attribute: re.Pattern[str], where: str) -> dict[str, str]:
    """The `name="value"` attributes of a tag, `inside` being its text between the tag's name and
    its end. `attribute` matches one (spaces first), the name in group 1 and the value in the
    first of the following groups that matched. Raises `CallSyntaxError` on anything else."""
    attributes: dict[str, str] = {}
    at = 0
    while at < len(inside):
        match = attribute.match(inside, at)
        if match is None:
            if inside[at:].strip():
                raise CallSyntaxError(f"unreadable attributes in {where}: {inside[:60]!r}")
            break
        attributes[match.group(1)] = next(v for v in match.groups()[1:] if v is not None)
        at = match.end()
    return attributes
