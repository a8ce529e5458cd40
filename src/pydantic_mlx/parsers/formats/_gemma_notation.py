"""The argument notation Google's tool-calling Gemmas write: `call:NAME{key:VALUE,...}`.

Gemma 4 (strings between `<|"|>` tokens) and FunctionGemma (between `<escape>` tokens) write a
call in the same notation, which is not JSON: keys are bare, strings are wrapped in the
delimiter token, numbers and `true`/`false`/`null` are bare, and objects and lists nest with
`{}`/`[]`. Because strings are always delimited, every value's type is known from the text: `3`
is a number, `<|"|>3<|"|>` a string.

Lenient where it cannot be ambiguous: `"JSON strings"` and quoted keys are read too, Python's
`True`/`False`/`None`, and a bare word that is not a number or literal (`unit:celsius`) is the
string the model meant.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import regex

from .._json import LITERALS, BracketReader
from .._scan import skip_space
from .._types import CallSyntaxError, ToolCall

__all__ = ["CALL_PREFIX", "GemmaNotation"]

CALL_PREFIX = "call:"
_NAME = regex.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BARE_KEY = regex.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# JSON numbers, plus a bare trailing point (`108.`), which is still plainly a float.
_NUMBER = regex.compile(r"-?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]*)?(?P<exponent>[eE][+-]?[0-9]+)?")
_MAX_DEPTH = 128
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class GemmaNotation:
    """The notation with `quote` (a token that begins with `<`) around strings."""

    quote: str

    def read_calls(self, text: str) -> list[ToolCall | CallSyntaxError]:
        """The calls `call:a{...}call:b{...}` that `text` holds back to back (usually one).

        Raises `CallSyntaxError` when `text` does not begin with a readable call. What follows a
        complete call must be another call: a bad call, or other text, comes back as a
        `CallSyntaxError` carrying the rest of `text`, so the calls before it are kept."""
        calls: list[ToolCall | CallSyntaxError] = []
        pos = 0
        while True:
            try:
                call, end = self.read_call(text, pos)
            except CallSyntaxError as exc:
                if not calls:
                    raise
                calls.append(CallSyntaxError(str(exc), text=text[pos:]))
                return calls
            calls.append(call)
            pos = skip_space(text, end)
            if pos == len(text):
                return calls
            if not text.startswith(CALL_PREFIX, pos):
                message = f"{call.name}: unexpected text after the arguments"
                calls.append(CallSyntaxError(message, text=text[pos:]))
                return calls

    def read_call(self, text: str, pos: int) -> tuple[ToolCall, int]:
        """The call `call:NAME{...}` at `pos`, and the offset after its closing brace."""
        if not text.startswith(CALL_PREFIX, pos):
            raise CallSyntaxError("expected call:NAME{...}")
        name_match = _NAME.match(text, pos + len(CALL_PREFIX))
        if name_match is None:
            raise CallSyntaxError("expected a tool name after call:")
        name = name_match.group()
        reader = _ArgumentReader(self.quote, text, name_match.end())
        reader.skip_ws()
        if reader.peek() != "{":
            raise CallSyntaxError(f"{name}: expected '{{' after the name")
        arguments = reader.object(0)
        return ToolCall(name=name, arguments=arguments), reader.i

    def render_call(self, call: ToolCall) -> str:
        """`call:NAME{...}`, as the chat templates write it (keys bare where they can be)."""
        return f"{CALL_PREFIX}{call.name}{self._value(call.arguments)}"

    def _value(self, value: Any) -> str:
        if isinstance(value, str):
            return f"{self.quote}{value}{self.quote}"
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + ",".join(self._value(item) for item in value) + "]"
        if isinstance(value, dict):
            members = (f"{self._key(key)}:{self._value(item)}" for key, item in value.items())
            return "{" + ",".join(members) + "}"
        raise TypeError(f"not a JSON value: {value!r}")

    def _key(self, key: str) -> str:
        return key if _BARE_KEY.fullmatch(key) else f"{self.quote}{key}{self.quote}"


@cache
def _bare_text(quote: str) -> tuple[regex.Pattern[str], regex.Pattern[str]]:
    """A bare key's and a bare value's text: up to the next structural character or `quote` (a
    `<` that does not begin the quote is text)."""
    rest = regex.escape(quote[1:])
    key = rf'[^:,{{}}\[\]"<]*+(?:<(?!{rest})[^:,{{}}\[\]"<]*+)*+'
    value = rf"[^,{{}}\[\]<]*+(?:<(?!{rest})[^,{{}}\[\]<]*+)*+"
    return regex.compile(key), regex.compile(value)


class _ArgumentReader(BracketReader):
    """Keys and values in the notation; the containers are JSON's (`BracketReader`)."""

    error = CallSyntaxError
    max_depth = _MAX_DEPTH

    def __init__(self, quote: str, text: str, start: int) -> None:
        super().__init__(text, start)
        self.quote = quote
        self.bare_key, self.bare_value = _bare_text(quote)

    def key(self) -> str:
        if self.text.startswith(self.quote, self.i):
            return self.delimited_string()
        if self.peek() == '"':
            return self.json_string()
        # The templates write keys bare whatever they hold (`max-results`, `a.b`): read to the ':'.
        start = self.i
        match = self.bare_key.match(self.text, start)
        assert match is not None  # the pattern matches the empty string
        key = match.group().strip(_WHITESPACE)
        if not key:
            raise CallSyntaxError(f"expected a key, got {self.text[start : start + 20]!r}")
        self.i = match.end()
        return key

    def value(self, depth: int) -> Any:
        self.skip_ws()
        if self.text.startswith(self.quote, self.i):
            return self.delimited_string()
        ch = self.peek()
        if ch == "{":
            return self.object(depth)
        if ch == "[":
            return self.array(depth)
        if ch == '"':
            return self.json_string()
        return self.bare()

    def delimited_string(self) -> str:
        start = self.i + len(self.quote)
        end = self.text.find(self.quote, start)
        if end < 0:
            raise CallSyntaxError("string cut off")
        self.i = end + len(self.quote)
        return self.text[start:end]

    def json_string(self) -> str:
        text, i = self.text, self.i + 1
        while i < len(text) and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        if i >= len(text):
            raise CallSyntaxError("string cut off")
        try:
            value = json.loads(text[self.i : i + 1])
        except ValueError:
            raise CallSyntaxError("bad escape in a string") from None
        self.i = i + 1
        return value

    def bare(self) -> Any:
        match = self.bare_value.match(self.text, self.i)
        assert match is not None  # the pattern matches the empty string
        word = match.group().strip(_WHITESPACE)
        if not word:
            raise CallSyntaxError("missing value")
        self.i = match.end()
        if word in LITERALS:
            return LITERALS[word]
        number = _NUMBER.fullmatch(word)
        if number is None:
            return word
        if number.group("fraction") is None and number.group("exponent") is None:
            return int(word)
        value = float(word)
        return value if math.isfinite(value) else word
