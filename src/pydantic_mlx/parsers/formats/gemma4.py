"""Google Gemma 4 tool calls: `<|tool_call>call:get_weather{city:<|"|>Paris<|"|>,days:3}<tool_call|>`.

Gemma 4's chat template writes the arguments in its own notation, not JSON: keys are bare,
strings are wrapped in the `<|"|>` token, numbers and `true`/`false` are bare, and objects and
lists nest with `{}`/`[]`. Because strings are always delimited, every value's type is known
from the text: `3` is a number, `<|"|>3<|"|>` a string. Several calls are consecutive
`<|tool_call>` blocks. Reasoning is `<|channel>thought\\n` … `<channel|>`; the turn ends with
`<turn|>`, and after a call the model writes `<|tool_response>` to hand over to the tool.

Lenient where it cannot be ambiguous: `"JSON strings"` and quoted keys are read too, and a bare
word that is not a number, boolean or null (`unit:celsius`) is the string the model meant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import regex

from .._json import LITERALS, BracketReader
from .._scan import skip_space
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "gemma4"
REASONING = (
    ("<|channel>thought\n", "<channel|>"),
    ("<|channel>thought", "<channel|>"),
)
# A stray channel token (`<|channel><|channel>thought`, a second `<channel|>`) is markup too
# (llama.cpp's Gemma 4 edge-case tests).
DROP = ("<turn|>", "<|tool_response>", "<tool_response|>", "<eos>", "<|channel>", "<channel|>")
# Gemma 4 sometimes ends a call with the end-of-turn token instead of `<tool_call|>`, and
# sometimes drops `<|tool_call>` where its answer begins (`<channel|>call:bash{...}`).
_CALL_END = Closers(("<tool_call|>", "<turn|>"), quotes=(Quote('<|"|>', ('<|"|>',)),))
_CALL_PREFIX = _BARE_CALL_OPENER = "call:"
CALLS = (
    CallSyntax("<|tool_call>", _CALL_END),
    CallSyntax(_BARE_CALL_OPENER, _CALL_END, at_start=True),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|tool_call>call:", "<|tool_call>")

STRING_DELIMITER = '<|"|>'
_NAME = regex.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BARE_KEY = regex.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Text up to the next structural character or `<|"|>` (a `<` that does not start one is text).
_BARE_KEY_TEXT = regex.compile(r'[^:,{}\[\]"<]*+(?:<(?!\|"\|>)[^:,{}\[\]"<]*+)*+')
_BARE_VALUE_TEXT = regex.compile(r'[^,{}\[\]<]*+(?:<(?!\|"\|>)[^,{}\[\]<]*+)*+')
# JSON numbers, plus a bare trailing point (`108.`), which is still plainly a float.
_NUMBER = regex.compile(r"-?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]*)?(?P<exponent>[eE][+-]?[0-9]+)?")
_MAX_DEPTH = 128
_WHITESPACE = " \t\r\n"


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in a `<|tool_call>` block: `call:NAME{...}`, usually one, sometimes several
    back to back (`call:a{...}call:b{...}`, as mlx-lm reads them). Also read: the bare opener
    `<|tool_call>:NAME{...}` (the `call` word left out) and a stray colon (`:call:NAME{...}`).

    Raises `CallSyntaxError` when the block does not begin with a readable call. What follows a
    complete call must be another call: a bad call, or other text, comes back as a
    `CallSyntaxError` carrying the rest of the block, so the calls before it are kept."""
    text = body.strip(_WHITESPACE)
    if syntax.opener == _BARE_CALL_OPENER:
        text = _CALL_PREFIX + text
    if text.startswith(":" + _CALL_PREFIX):  # a stray colon after the token: `<|tool_call>:call:f{}`
        text = text[1:]
    elif text.startswith(":"):  # the bare opener: `<|tool_call>:get_weather{...}` (vLLM reads it)
        text = "call" + text
    calls: list[ToolCall | CallSyntaxError] = []
    pos = 0
    while True:
        try:
            call, end = _read_call(text, pos)
        except CallSyntaxError as exc:
            if not calls:
                raise
            calls.append(CallSyntaxError(str(exc), text=text[pos:]))
            return calls
        calls.append(call)
        if syntax.opener == _BARE_CALL_OPENER and end < len(text):
            # Where the answer begins, `call:f{...}` followed by more is prose that looks like a call.
            raise CallSyntaxError(f"{call.name}: unexpected text after the arguments")
        pos = skip_space(text, end)
        if pos == len(text):
            return calls
        if not text.startswith(_CALL_PREFIX, pos):
            calls.append(
                CallSyntaxError(f"{call.name}: unexpected text after the arguments", text=text[pos:])
            )
            return calls


def _read_call(text: str, pos: int) -> tuple[ToolCall, int]:
    """The call `call:NAME{...}` at `pos`, and the offset after its closing brace."""
    if not text.startswith(_CALL_PREFIX, pos):
        raise CallSyntaxError("expected call:NAME{...}")
    name_match = _NAME.match(text, pos + len(_CALL_PREFIX))
    if name_match is None:
        raise CallSyntaxError("expected a tool name after call:")
    name = name_match.group()
    reader = _ArgumentReader(text, name_match.end())
    reader.skip_ws()
    if reader.peek() != "{":
        raise CallSyntaxError(f"{name}: expected '{{' after the name")
    arguments = reader.object(0)
    return ToolCall(name=name, arguments=arguments), reader.i


class _ArgumentReader(BracketReader):
    """Gemma's argument notation: keys bare or quoted, strings between `<|"|>` tokens."""

    error = CallSyntaxError
    max_depth = _MAX_DEPTH

    def key(self) -> str:
        if self.text.startswith(STRING_DELIMITER, self.i):
            return self.delimited_string()
        if self.peek() == '"':
            return self.json_string()
        # The template writes keys bare whatever they hold (`max-results`, `a.b`): read to the ':'.
        start = self.i
        match = _BARE_KEY_TEXT.match(self.text, start)
        assert match is not None  # the pattern matches the empty string
        key = match.group().strip(_WHITESPACE)
        if not key:
            raise CallSyntaxError(f"expected a key, got {self.text[start : start + 20]!r}")
        self.i = match.end()
        return key

    def value(self, depth: int) -> Any:
        self.skip_ws()
        if self.text.startswith(STRING_DELIMITER, self.i):
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
        start = self.i + len(STRING_DELIMITER)
        end = self.text.find(STRING_DELIMITER, start)
        if end < 0:
            raise CallSyntaxError("string cut off")
        self.i = end + len(STRING_DELIMITER)
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
        match = _BARE_VALUE_TEXT.match(self.text, self.i)
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


def render(calls: Sequence[ToolCall]) -> str:
    """What Gemma 4's chat template writes for `calls`: one `<|tool_call>` block per call."""
    return "".join(
        f"<|tool_call>call:{call.name}{_render_value(call.arguments)}<tool_call|>" for call in calls
    )


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return f"{STRING_DELIMITER}{value}{STRING_DELIMITER}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(_render_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_render_key(key)}:{_render_value(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _render_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else f"{STRING_DELIMITER}{key}{STRING_DELIMITER}"
