"""Invokes in a markup namespace, the shape DeepSeek's DSML (V3.2, V4) and GigaChat's GCML share::

    <｜DSML｜function_calls>
    <｜DSML｜invoke name="get_weather">
    <｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>
    <｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>
    </｜DSML｜invoke>
    </｜DSML｜function_calls>

A block holds invokes and spaces. `string="true"` values are text, kept byte for byte, and
`string="false"` values are JSON, unless the tool's schema says otherwise (a number the model
marked as a string is still a number when the schema allows no string); a parameter without the
attribute is typed by the schema (`parsers/_schema.py`). Also read: a self-closing invoke
(`<｜DSML｜invoke name="x"/>`, no arguments) and an invoke whose body is one JSON object of
arguments instead of parameters (as SGLang's V3.2 reader accepts). A bad invoke among good ones
is returned in its place, carrying its own text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._calls import arguments_from_json
from .._json import ValueScanner
from .._scan import read_attributes, skip_space
from .._schema import coerce_argument, unwrap_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import Quote

__all__ = ["MarkupInvokes", "at_least_one_call", "is_name"]

_WRITTEN_AS: dict[str, Literal["string", "json"]] = {"true": "string", "false": "json"}
_ATTRIBUTE = re.compile(r"""\s*([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True)
class MarkupInvokes:
    """Invokes whose tags begin with one of `spellings` after `<` or `</` (`｜DSML｜`, and
    DeepSeek-V4.1's `｜DSML｜ ` with a space after the bar)."""

    spellings: tuple[str, ...]

    def tags(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Every spelling of the element `name`'s opening tag start (`<｜DSML｜invoke`) and of its
        closing tag (`</｜DSML｜invoke>`)."""
        return tuple(f"<{s}{name}" for s in self.spellings), tuple(f"</{s}{name}>" for s in self.spellings)

    @property
    def value_quotes(self) -> tuple[Quote, ...]:
        """Where a block's closer written inside a parameter's value does not end the block."""
        opens, closes = self.tags("parameter")
        return tuple(Quote(opener, closes) for opener in opens)

    def read_block(self, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
        """The invokes of a block's `body`, a bad one as a `CallSyntaxError` in its place."""
        items: list[ToolCall | CallSyntaxError] = []
        pos = skip_space(body, 0)
        while pos < len(body):
            try:
                call, end = self.read_invoke(body, pos, tools)
            except CallSyntaxError as exc:
                end = self._bad_invoke_end(body, pos)
                items.append(CallSyntaxError(str(exc), body[pos:end], exc.name))
            else:
                items.append(call)
            pos = skip_space(body, end)
        return items

    def read_invoke(self, body: str, pos: int, tools: ToolSet) -> tuple[ToolCall, int]:
        """The invoke at `pos` (any spelling) and the offset after it: parameters, one JSON
        object of arguments (types kept), or nothing (a self-closing invoke)."""
        attributes, pos, self_closing = _tag(body, pos, self.tags("invoke")[0])
        name = attributes.get("name", "")
        if not is_name(name):
            raise CallSyntaxError(f"not a function name: {name[:40]!r}")
        if self_closing:
            return ToolCall(name=name, arguments={}), pos
        value = skip_space(body, pos)
        if body.startswith("{", value):
            return self._json_invoke(body, value, name)
        try:
            raw_arguments, pos = self._parameters(body, pos, name, tools)
        except CallSyntaxError as exc:
            raise CallSyntaxError(str(exc), name=name) from None
        return ToolCall(name=name, arguments=unwrap_arguments(name, raw_arguments, tools)), pos

    def render(self, calls: Sequence[ToolCall], block: str) -> str:
        """`calls` in one block named `block`, tags one per line, as the templates write them."""
        ns = self.spellings[0]
        lines = [f"<{ns}{block}>"]
        for call in calls:
            lines.append(f'<{ns}invoke name="{call.name}">')
            for key, value in call.arguments.items():
                written = "true" if isinstance(value, str) else "false"
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                lines.append(f'<{ns}parameter name="{key}" string="{written}">{text}</{ns}parameter>')
            lines.append(f"</{ns}invoke>")
        lines.append(f"</{ns}{block}>")
        return "\n".join(lines)

    def _bad_invoke_end(self, body: str, pos: int) -> int:
        """Where an invoke at `pos` that could not be read ends: at the first invoke closer
        followed by another invoke or by the end of the block (so a value holding that closer
        does not split it), or at the next invoke when `pos` is noise rather than an invoke."""
        opens, closes = self.tags("invoke")
        if _opener_at(body, pos, opens) < 0:
            found = [i for opener in opens if (i := body.find(opener, pos)) >= 0]
            return min(found, default=len(body))
        at = pos
        while True:
            found = [(i, c) for c in closes if (i := body.find(c, at)) >= 0]
            if not found:
                return len(body)
            i, closer = min(found)
            after = skip_space(body, i + len(closer))
            if after == len(body) or _opener_at(body, after, opens) >= 0:
                return i + len(closer)
            at = i + len(closer)

    def _json_invoke(self, body: str, start: int, name: str) -> tuple[ToolCall, int]:
        """`<｜DSML｜invoke name="x">{"k": 1}</｜DSML｜invoke>`: JSON arguments, types kept."""
        end = ValueScanner(start).scan(body)
        if end is None:
            raise CallSyntaxError(f"JSON arguments of {name!r} never closed", name=name)
        try:
            arguments = arguments_from_json(body[start:end], name)
        except CallSyntaxError as exc:
            raise CallSyntaxError(str(exc), name=name) from None
        after = _opener_at(body, skip_space(body, end), self.tags("invoke")[1])
        if after < 0:
            raise CallSyntaxError("an invoke without its closer after its JSON arguments", name=name)
        return ToolCall(name=name, arguments=arguments), after

    def _parameters(self, body: str, pos: int, name: str, tools: ToolSet) -> tuple[dict[str, Any], int]:
        """The parameters of the invoke whose body starts at `pos`, read one after the other (so
        an end marker inside a value stays in it), and the offset after the invoke's closer."""
        invoke_closes = self.tags("invoke")[1]
        opens, closes = self.tags("parameter")
        arguments: dict[str, Any] = {}
        while True:
            pos = skip_space(body, pos)
            after = _opener_at(body, pos, invoke_closes)
            if after >= 0:
                return arguments, after
            if pos == len(body):
                raise CallSyntaxError(f"an invoke without its {invoke_closes[0]}")
            attributes, pos, _ = _tag(body, pos, opens)
            key = attributes.get("name", "")
            if not key:
                raise CallSyntaxError("a parameter without a name")
            found = [(i, c) for c in closes if (i := body.find(c, pos)) >= 0]
            if not found:
                raise CallSyntaxError(f"a parameter without its {closes[0]}")
            end, closer = min(found)
            value = body[pos:end]
            if any(opener in value for opener in opens):
                raise CallSyntaxError("a parameter opened inside another")
            if key in arguments:  # which value did the model mean? It must say again
                raise CallSyntaxError(f"parameter {key!r} given twice")
            written_as = _WRITTEN_AS.get(attributes.get("string", ""))
            arguments[key] = coerce_argument(name, key, value, tools, written_as=written_as)
            pos = end + len(closer)


def at_least_one_call(items: list[ToolCall | CallSyntaxError]) -> list[ToolCall | CallSyntaxError]:
    """The items of a region that holds at least one good call; otherwise the region as a whole
    is unreadable (its raw text, markers included, goes on one problem)."""
    if not any(isinstance(item, ToolCall) for item in items):
        errors = [item for item in items if isinstance(item, CallSyntaxError)]
        raise CallSyntaxError(str(errors[0]) if errors else "an empty call region")
    return items


def is_name(text: str) -> bool:
    """Whether `text` can be a function's name (no spaces, quotes or brackets)."""
    return bool(text) and not any(c.isspace() or c in "<>{}[]\"'`" for c in text)


def _opener_at(text: str, pos: int, markers: tuple[str, ...]) -> int:
    """The offset after whichever of `markers` starts at `pos`, or -1."""
    for marker in markers:
        if text.startswith(marker, pos):
            return pos + len(marker)
    return -1


def _tag(text: str, pos: int, openers: tuple[str, ...]) -> tuple[dict[str, str], int, bool]:
    """Read an `<｜DSML｜invoke name="...">`-style tag at `pos` (any spelling in `openers`): its
    attributes, the end offset, and whether it closed itself (`/>`)."""
    start = _opener_at(text, pos, openers)
    if start < 0 or (start < len(text) and not (text[start].isspace() or text[start] in "/>")):
        raise CallSyntaxError(f"expected {openers[0]}")
    gt = text.find(">", start)
    if gt < 0:
        raise CallSyntaxError(f"{openers[0]} without its closing '>'")
    inside = text[start:gt]
    self_closing = inside.endswith("/")
    if self_closing:
        inside = inside[:-1]
    return read_attributes(inside, _ATTRIBUTE, openers[0]), gt + 1, self_closing
