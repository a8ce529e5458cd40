"""Calls that write a name, then each argument as a key tag and a value tag, the shape GLM,
LongCat and Hunyuan Hy3 share::

    <tool_call>get_weather                     <longcat_tool_call>get_weather
    <arg_key>city</arg_key>                    <longcat_arg_key>city</longcat_arg_key>
    <arg_value>Paris</arg_value>               <longcat_arg_value>Paris</longcat_arg_value>
    </tool_call>                               </longcat_tool_call>

The newlines are GLM-4.5's layout; GLM-4.7 writes none (`<tool_call>NAME<arg_key>...`), and a
call without arguments is just the name. The templates write a string value as is and anything
else as JSON, so each value is typed by the tool's schema (`parsers/_schema.py`); string values
are kept byte for byte.

Shapes these models also write are read too: a name and then one JSON object of arguments, a
whole JSON call object (`{"name": ..., "arguments": {...}}`, LongCat-Flash-Chat's own shape),
and the last value's closer left out right before the block's closer (GLM-4.7). The format's
syntax keeps the block's closer at the end of the body (`closer_in_body`), so a value cut off by
the end of the output is told apart. When the model left out a block's closer, the body holds
the next block too: each block is one call.

Hy3 writes a separator after the name (`<tool_call>NAME<tool_sep>`) and all of a turn's blocks
in one section (`<tool_calls>...</tool_calls>`), which is then the region. Solar Open writes a
value with no tag of its own: the key's closer opens it (`<|tool_arg:start|>city<|tool_arg:value|>
Paris<|tool_arg:end|>`), so nothing between them is layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._calls import arguments_from_json, calls_from_value
from .._json import loads_lenient
from .._scan import ForwardFinder, skip_space, text_until
from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = ["ArgPairCalls"]

# Characters no tool name contains: they mean the body is prose, JSON or another format's XML.
_NOT_IN_NAME = frozenset("<>{}[]()\"'`,;=\\")


@dataclass(frozen=True)
class ArgPairCalls:
    """One family's tags, each an (opener, closer) pair."""

    block: tuple[str, str]
    key: tuple[str, str]
    value: tuple[str, str]
    """The value's tags; an empty opener means the key's closer opens the value (Solar Open)."""
    sep: str = ""
    """What the template writes right after a call's name (Hy3's `<tool_sep>`)."""
    section: tuple[str, str] | None = None
    """The tags around all of a turn's blocks (Hy3's `<tool_calls>`), then the region."""

    def syntax(self, **options: Any) -> CallSyntax:
        """The region's syntax: a block (or section) ends at its closer, which a value may hold,
        and which stays at the end of the body (`closer_in_body`). `options` are more
        `CallSyntax` fields."""
        opener, closer = self.section or self.block
        value_quote = Quote(self.value[0] or self.key[1], (self.value[1],))
        return CallSyntax(opener, Closers((closer,), quotes=(value_quote,)), closer_in_body=True, **options)

    def parse_region(self, syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
        """The calls in a block's `body` (which ends with the block's closer when that ended it),
        or in a section's: blocks and spaces. Raises `CallSyntaxError` for anything else."""
        if self.section is not None:
            return self._section(syntax, body.removesuffix(self.section[1]), tools)
        closed = body.endswith(self.block[1])
        if closed:
            body = body[: -len(self.block[1])]
        if body.lstrip().startswith(("{", "[")):
            return _json_calls(body, tools)
        calls: list[ToolCall] = []
        keys, blocks = ForwardFinder(body, self.key[0]), ForwardFinder(body, self.block[0])
        start = 0
        while True:
            key, block = keys.next(start), blocks.next(start)
            if key >= 0 and (block < 0 or key < block):
                name = _name(self._head(body[start:key]))
                raw, end = self._pairs(body, key, closed=closed)
                calls.append(ToolCall(name=name, arguments=coerce_arguments(name, raw, tools)))
            else:
                end = block if block >= 0 else len(body)
                head = self._head(body[start:end])
                calls.append(_name_and_json(head) if "{" in head else ToolCall(_name(head), {}))
            if end == len(body):
                return calls
            start = end + len(self.block[0])  # body[end:] starts the next block

    def render(self, calls: Sequence[ToolCall]) -> str:
        """The blocks GLM-4.5's chat template writes for `calls`, one per call (LongCat-Flash-
        Thinking's too, in its tags); with a section, Hy3's: a newline after each tag."""
        blocks: list[str] = []
        for call in calls:
            lines = [f"{self.block[0]}{call.name}{self.sep}"]
            for key, value in call.arguments.items():
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                pair = (f"{self.key[0]}{key}{self.key[1]}", f"{self.value[0]}{text}{self.value[1]}")
                lines += pair if self.value[0] else ["".join(pair)]
            if self.section is None:
                blocks.append("\n".join(lines) + self.block[1])
            else:
                blocks.append("\n".join([*lines, self.block[1]]))
        if self.section is None:
            return "\n".join(blocks)
        return "\n".join([self.section[0], *blocks, self.section[1]])

    def _head(self, text: str) -> str:
        """A call's name as written before its first key: the separator after it removed."""
        head = text.strip()
        return head.removesuffix(self.sep).rstrip() if self.sep else head

    def _section(self, syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
        """The blocks of a section's body, each a call, spaces between them; a block's closer
        inside a value does not end it."""
        opener, closer = self.block
        blocks = replace(self, section=None)
        calls: list[ToolCall] = []
        pos = skip_space(body, 0)
        while pos < len(body):
            if not body.startswith(opener, pos):
                raise CallSyntaxError(f"expected {opener} in a call section, got {body[pos : pos + 20]!r}")
            end = body.find(closer, pos)
            while end >= 0 and body.count(self.value[0], pos, end) > body.count(self.value[1], pos, end):
                end = body.find(closer, end + 1)  # that closer is inside a value
            if end < 0:
                raise CallSyntaxError(f"{opener} never closed")
            calls += blocks.parse_region(syntax, body[pos + len(opener) : end + len(closer)], tools)
            pos = skip_space(body, end + len(closer))
        if not calls:
            raise CallSyntaxError(f"a call section without {opener}")
        return calls

    def _pairs(self, body: str, pos: int, *, closed: bool) -> tuple[dict[str, str], int]:
        """Key and value pairs from `pos` to the end of `body` or to the next block, and where
        they ended. With `closed` (the block's closer came right after `body`), the last value
        may lack its closer: the block's closer ends it."""
        raw: dict[str, str] = {}
        while True:
            pos = _skip_separator(body, pos)
            if pos == len(body) or body.startswith(self.block[0], pos):
                return raw, pos
            key, pos = _element(body, pos, self.key)
            key = key.strip()
            if not key:
                raise CallSyntaxError(f"an empty {self.key[0]}")
            # A value the key's closer opens starts right there: its spaces are its own.
            value, pos = self._value(
                body, _skip_separator(body, pos) if self.value[0] else pos, closed=closed
            )
            if key in raw:  # which value did the model mean? It must say again
                raise CallSyntaxError(f"argument {key!r} given twice")
            raw[key] = value

    def _value(self, body: str, pos: int, *, closed: bool) -> tuple[str, int]:
        """A value element at `pos`, or, in a closed block, the last one left open (its text up
        to the block's closer, less the newline GLM-4.5's template writes before that)."""
        opener, closer = self.value
        # What may not stand inside a value: its own opener, else the next argument's key.
        forbidden = opener or self.key[0]
        if not closed or closer in body[pos:] or self.block[0] in body[pos:]:
            return _element(body, pos, self.value, forbidden)
        if not body.startswith(opener, pos):
            raise CallSyntaxError(f"expected {opener}")
        text = body[pos + len(opener) :]
        if forbidden in text:
            raise CallSyntaxError(f"{forbidden} inside a value left open")
        return text.removesuffix("\n"), len(body)


def _name(text: str) -> str:
    name = text.strip()
    while name.endswith("\\n"):  # the literal `\n` some outputs write after the name
        name = name[:-2].rstrip()
    if not name:
        raise CallSyntaxError("a call needs a function name")
    if any(c.isspace() or c in _NOT_IN_NAME for c in name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
    return name


def _json_calls(body: str, tools: ToolSet) -> list[ToolCall]:
    """A JSON call object (or a list of them) written inside the block."""
    try:
        value = loads_lenient(body)
    except ValueError as exc:
        raise CallSyntaxError(f"the JSON body does not read: {exc}") from None
    return calls_from_value(value, tools, untagged=False)


def _name_and_json(body: str) -> ToolCall:
    """`NAME {"k": "v"}` / `NAME\\n{...}`: the name, then JSON arguments (types kept)."""
    head, _, tail = body.partition("{")
    name = head.strip()
    if not name or any(c.isspace() or c in _NOT_IN_NAME for c in name):
        raise CallSyntaxError("a JSON body needs a function name before it")
    return ToolCall(name=name, arguments=arguments_from_json("{" + tail, name))


def _element(body: str, pos: int, tags: tuple[str, str], forbidden: str = "") -> tuple[str, int]:
    opener, closer = tags
    if not body.startswith(opener, pos):
        raise CallSyntaxError(f"expected {opener}")
    return text_until(body, pos + len(opener), closer, forbidden or opener)


def _skip_separator(body: str, pos: int) -> int:
    """Skip whitespace and the literal two characters `\\n` some outputs put between tags."""
    while pos < len(body):
        if body[pos].isspace():
            pos += 1
        elif body.startswith("\\n", pos):
            pos += 2
        else:
            break
    return pos
