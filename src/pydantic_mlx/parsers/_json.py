"""Lenient JSON reading and a resumable scanner that finds where a JSON value ends.

Small models write "JSON" with single quotes, Python's `True`/`False`/`None` and trailing commas.
`loads_lenient` reads those too, but never invents structure: a value that is cut off, has
unbalanced brackets or trailing garbage is an error, so a truncated call can't be "repaired".
Nor does it guess: a key given twice (which value did the model mean?) and a number JSON does
not allow (`01234`, a zip code that would lose its zero) are errors too.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

__all__ = ["LITERALS", "BracketReader", "ValueScanner", "loads_lenient"]

_MAX_DEPTH = 512
LITERALS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
"""The words that are values: JSON's, and Python's, which small models write instead."""
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WS = " \t\r\n"
_DIGITS = frozenset("0123456789")  # not str.isdigit(): int() would read "١٢" or "²" as digits


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # 1e999: JSON text cannot carry infinity back out
        raise ValueError(f"number {literal} is out of range")
    return value


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} given twice")
        result[key] = value
    return result


def loads_lenient(text: str) -> Any:
    """Read one JSON value, accepting single quotes, Python literals and trailing commas.

    Raises `ValueError` (never anything else) when `text` is not exactly one such value, or
    when an object in it gives a key twice.
    """
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_object_once
        )
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    except ValueError:
        pass
    reader = _LenientReader(text)
    value = reader.value(0)
    reader.skip_ws()
    if reader.i != len(text):
        raise ValueError(f"unexpected text after the JSON value at offset {reader.i}")
    return value


class BracketReader:
    """Recursive descent over `{...}` objects and `[...]` arrays, from `start` in `text`.

    The containers' grammar is shared by the notations models write arguments in (JSON, lenient
    JSON, Gemma 4's): `,` between members, a trailing `,` allowed, a key given twice an error
    (which value did the model mean?). A subclass reads keys and values in its own notation.
    Depth-limited, so it never overflows the stack; every error is `error` (a `ValueError`).
    """

    error: type[ValueError] = ValueError
    max_depth = _MAX_DEPTH

    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self.i = start

    def key(self) -> str:
        """An object key at `i` (spaces skipped); `i` moves past it."""
        raise NotImplementedError

    def value(self, depth: int) -> Any:
        """A value at `i`, at nesting `depth`; `i` moves past it."""
        raise NotImplementedError

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def skip_ws(self) -> None:
        text, i = self.text, self.i
        while i < len(text) and text[i] in _WS:
            i += 1
        self.i = i

    def object(self, depth: int) -> dict[str, Any]:
        """The object whose `{` is at `i`."""
        self._enter(depth)
        result: dict[str, Any] = {}
        while True:
            self.skip_ws()
            if self.peek() == "}":
                self.i += 1
                return result
            key_at = self.i
            key = self.key()
            self.skip_ws()
            if self.peek() != ":":
                raise self.error(f"':' expected after key {key[:40]!r} at offset {self.i}")
            self.i += 1
            if key in result:
                raise self.error(f"key {key[:40]!r} given twice at offset {key_at}")
            result[key] = self.value(depth + 1)
            if not self._more("}"):
                return result

    def array(self, depth: int) -> list[Any]:
        """The array whose `[` is at `i`."""
        self._enter(depth)
        result: list[Any] = []
        while True:
            self.skip_ws()
            if self.peek() == "]":
                self.i += 1
                return result
            result.append(self.value(depth + 1))
            if not self._more("]"):
                return result

    def _enter(self, depth: int) -> None:
        if depth > self.max_depth:
            raise self.error("nested too deeply")
        self.i += 1  # the opening bracket

    def _more(self, closer: str) -> bool:
        """After a member: True when a `,` follows (more may come), False once `closer` is read."""
        self.skip_ws()
        ch = self.peek()
        self.i += 1
        if ch == ",":
            return True
        if ch == closer:
            return False
        raise self.error(f"',' or {closer!r} expected at offset {self.i - 1}, got {ch or 'the end'!r}")


class _LenientReader(BracketReader):
    """Lenient JSON: quotes of both kinds, Python's literals."""

    def key(self) -> str:
        if self.peek() not in ("'", '"'):
            raise ValueError(f"object key expected at offset {self.i}")
        return self._string()

    def value(self, depth: int) -> Any:
        self.skip_ws()
        if self.i >= len(self.text):
            raise ValueError("JSON value expected, got end of text")
        ch = self.text[self.i]
        if ch == "{":
            return self.object(depth)
        if ch == "[":
            return self.array(depth)
        if ch in "\"'":
            return self._string()
        if ch == "-" or ch in _DIGITS:
            return self._number()
        return self._literal()

    def _string(self) -> str:
        text = self.text
        quote = text[self.i]
        i = self.i + 1
        parts: list[str] = []
        start = i
        while True:
            if i >= len(text):
                raise ValueError("unterminated string")
            ch = text[i]
            if ch == quote:
                parts.append(text[start:i])
                self.i = i + 1
                return "".join(parts)
            if ch == "\\":
                parts.append(text[start:i])
                if i + 1 >= len(text):
                    raise ValueError("unterminated string")
                esc = text[i + 1]
                if esc == "u":
                    hex_digits = text[i + 2 : i + 6]
                    if len(hex_digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in hex_digits):
                        raise ValueError(f"bad \\u escape at offset {i}")
                    code = int(hex_digits, 16)
                    i += 6
                    # Join a UTF-16 surrogate pair the way json.loads does.
                    if 0xD800 <= code < 0xDC00 and text[i : i + 2] == "\\u":
                        low_digits = text[i + 2 : i + 6]
                        if len(low_digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in low_digits):
                            low = int(low_digits, 16)
                            if 0xDC00 <= low < 0xE000:
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                                i += 6
                    parts.append(chr(code))
                elif esc in _ESCAPES:
                    parts.append(_ESCAPES[esc])
                    i += 2
                else:
                    raise ValueError(f"bad escape \\{esc} at offset {i}")
                start = i
                continue
            i += 1

    def _number(self) -> int | float:
        text = self.text
        i = self.i
        if text[i] == "-":
            i += 1
        digits_start = i
        while i < len(text) and text[i] in _DIGITS:
            i += 1
        if i == digits_start:
            raise ValueError(f"number expected at offset {self.i}")
        if i - digits_start > 1 and text[digits_start] == "0":
            raise ValueError(f"a number may not start with 0 at offset {self.i}")
        is_float = False
        if i < len(text) and text[i] == ".":
            i += 1
            frac_start = i
            while i < len(text) and text[i] in _DIGITS:
                i += 1
            if i == frac_start:
                raise ValueError(f"digits expected after '.' at offset {i}")
            is_float = True
        if i < len(text) and text[i] in "eE":
            i += 1
            if i < len(text) and text[i] in "+-":
                i += 1
            exp_start = i
            while i < len(text) and text[i] in _DIGITS:
                i += 1
            if i == exp_start:
                raise ValueError(f"exponent digits expected at offset {i}")
            is_float = True
        literal = text[self.i : i]
        self.i = i
        if not is_float:
            return int(literal)
        value = float(literal)
        if math.isinf(value):  # 1e999: JSON text cannot carry infinity back out
            raise ValueError(f"number {literal} is out of range")
        return value

    def _literal(self) -> Any:
        text = self.text
        i = self.i
        while i < len(text) and (text[i].isalpha()):
            i += 1
        word = text[self.i : i]
        if word not in LITERALS:
            raise ValueError(f"unexpected {text[self.i : self.i + 10]!r} at offset {self.i}")
        self.i = i
        return LITERALS[word]


class ValueScanner:
    """Finds where a bracketed value that starts at `start` ends, across growing buffers.

    Tracks `{}`, `[]`, `()` nesting and single- or double-quoted strings with escapes. Call
    `scan(buf)` after each feed: each character is looked at once in total (linear time).
    `end` is set (exclusive index) once the value closes; `broken` once a closing bracket does
    not match, with `end` at the offending character.
    """

    _CLOSER: ClassVar[dict[str, str]] = {"{": "}", "[": "]", "(": ")"}

    def __init__(self, start: int) -> None:
        self._i = start
        self._stack: list[str] = []
        self._quote = ""
        self._escaped = False
        self.end: int | None = None
        self.broken = False

    def scan(self, buf: str) -> int | None:
        """Advance over `buf`; return the end index once the value is complete, else None."""
        if self.end is not None:
            return self.end
        i, stack, quote, escaped = self._i, self._stack, self._quote, self._escaped
        n = len(buf)
        closers = self._CLOSER
        while i < n:
            ch = buf[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = ""
            elif ch in closers:
                stack.append(closers[ch])
            elif ch in "}])":
                if not stack or stack.pop() != ch:
                    self.broken = True
                    self.end = i
                    break
                if not stack:
                    self.end = i + 1
                    break
            elif ch in "\"'":
                quote = ch
            i += 1
        self._i, self._quote, self._escaped = i, quote, escaped
        return None if self.broken else self.end
