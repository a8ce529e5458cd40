"""GLM-4.5 / 4.6 / 4.7 (and GLM-5) calls: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>`.

GLM-4.5 and 4.6 put a newline after the name and between the tags::

    <tool_call>get_weather
    <arg_key>city</arg_key>
    <arg_value>Paris</arg_value>
    <arg_key>days</arg_key>
    <arg_value>3</arg_value>
    </tool_call>

GLM-4.7 writes the same without newlines (`<tool_call>get_weather<arg_key>city</arg_key>...`),
and a call without arguments is just `<tool_call>NAME</tool_call>`. The template writes a string
value as is and anything else as JSON, so each value is typed by the tool's schema
(`parsers/_schema.py`); string values are kept byte for byte. Reasoning is `<think>...</think>`;
`<|user|>`, `<|observation|>` and `<|endoftext|>` end the turn and are dropped.

Shapes GLM models also write are read too: a name and then one JSON object of arguments, a
whole hermes-style call object (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`), and
GLM-4.7's last `</arg_value>` left out right before `</tool_call>` (the region's closer is kept
at the end of the body, `closer_in_body`, so a value cut off by the end of the output is told
apart). `<tool_call>` is shared with hermes and qwen3_coder, so a body that starts with
`<function=` or is anything but these shapes is rejected here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import arguments_from_json, calls_from_value
from .._json import loads_lenient
from .._scan import ForwardFinder, text_until
from .._schema import coerce_arguments
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "glm"
REASONING = (("<think>", "</think>"),)
DROP = ("<|user|>", "<|observation|>", "<|endoftext|>")
CALLS = (
    CallSyntax(
        "<tool_call>",
        Closers(("</tool_call>",), quotes=(Quote("<arg_value>", ("</arg_value>",)),)),
        closer_in_body=True,
        ends_prompt_reasoning=True,  # GLM-4.7's prompt opens `<think>`; a call there ends it
    ),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<arg_key>",)

_BLOCK_OPEN, _BLOCK_CLOSE = "<tool_call>", "</tool_call>"
_KEY_OPEN, _KEY_CLOSE = "<arg_key>", "</arg_key>"
_VALUE_OPEN, _VALUE_CLOSE = "<arg_value>", "</arg_value>"
# Characters no tool name contains: they mean the body is prose, JSON or another format's XML.
_NOT_IN_NAME = frozenset("<>{}[]()\"'`,;=\\")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The call in a `<tool_call>` body: a name, then `<arg_key>`/`<arg_value>` pairs (or, as
    GLM sometimes writes, a name and then a JSON object of arguments, or a JSON call object). When
    the model left out a `</tool_call>`, the body holds the next `<tool_call>` too: each block is
    one call. The body ends with `</tool_call>` when that closer ended the region."""
    closed = body.endswith(_BLOCK_CLOSE)
    if closed:
        body = body[: -len(_BLOCK_CLOSE)]
    if body.lstrip().startswith(("{", "[")):
        return _json_call(body, tools)
    calls: list[ToolCall] = []
    keys, blocks = ForwardFinder(body, _KEY_OPEN), ForwardFinder(body, _BLOCK_OPEN)
    start = 0
    while True:
        key, block = keys.next(start), blocks.next(start)
        if key >= 0 and (block < 0 or key < block):
            name = _name(body[start:key])
            raw, end = _pairs(body, key, closed=closed)
            calls.append(ToolCall(name=name, arguments=coerce_arguments(name, raw, tools)))
        else:
            end = block if block >= 0 else len(body)
            head = body[start:end]
            calls.append(_name_and_json(head) if "{" in head else ToolCall(_name(head), {}))
        if end == len(body):
            return calls
        start = end + len(_BLOCK_OPEN)  # body[end:] starts the next `<tool_call>` block


def _name(text: str) -> str:
    name = text.strip()
    while name.endswith("\\n"):  # the literal `\n` some outputs write after the name
        name = name[:-2].rstrip()
    if not name:
        raise CallSyntaxError("a GLM call needs a function name")
    if any(c.isspace() or c in _NOT_IN_NAME for c in name):
        raise CallSyntaxError(f"not a GLM function name: {name[:40]!r}")
    return name


def _json_call(body: str, tools: ToolSet) -> list[ToolCall]:
    """A hermes-style call object (or list of them) written inside GLM's `<tool_call>`."""
    try:
        value = loads_lenient(body)
    except ValueError as exc:
        raise CallSyntaxError(f"not a GLM call: the JSON body does not read: {exc}") from None
    return calls_from_value(value, tools, untagged=False)


def _name_and_json(body: str) -> ToolCall:
    """`NAME {"k": "v"}` / `NAME\\n{...}`: the name, then JSON arguments (types kept)."""
    head, _, tail = body.partition("{")
    name = head.strip()
    if not name or any(c.isspace() or c in _NOT_IN_NAME for c in name):
        raise CallSyntaxError("not a GLM call: a JSON body needs a function name before it")
    return ToolCall(name=name, arguments=arguments_from_json("{" + tail, name))


def render(calls: Sequence[ToolCall]) -> str:
    """The text GLM-4.5's chat template writes for `calls`."""
    blocks: list[str] = []
    for call in calls:
        lines = [f"<tool_call>{call.name}"]
        for key, value in call.arguments.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines += [f"{_KEY_OPEN}{key}{_KEY_CLOSE}", f"{_VALUE_OPEN}{text}{_VALUE_CLOSE}"]
        blocks.append("\n".join(lines) + "</tool_call>")
    return "\n".join(blocks)


def _pairs(body: str, pos: int, *, closed: bool) -> tuple[dict[str, str], int]:
    """`<arg_key>K</arg_key><arg_value>V</arg_value>` pairs from `pos` to the end of `body` or to
    the next `<tool_call>`, and where they ended. With `closed` (the region's `</tool_call>` came
    right after `body`), the last value may lack its `</arg_value>`: the closer ends it."""
    raw: dict[str, str] = {}
    while True:
        pos = _skip_separator(body, pos)
        if pos == len(body) or body.startswith(_BLOCK_OPEN, pos):
            return raw, pos
        key, pos = _element(body, pos, _KEY_OPEN, _KEY_CLOSE)
        key = key.strip()
        if not key:
            raise CallSyntaxError("an empty <arg_key>")
        value, pos = _value(body, _skip_separator(body, pos), closed=closed)
        if key in raw:  # which value did the model mean? It must say again
            raise CallSyntaxError(f"argument {key!r} given twice")
        raw[key] = value


def _value(body: str, pos: int, *, closed: bool) -> tuple[str, int]:
    """An `<arg_value>` element at `pos`, or, in a closed region, the last one left open (its
    text up to `</tool_call>`, less the newline GLM-4.5's template writes before that)."""
    if not closed or _VALUE_CLOSE in body[pos:] or _BLOCK_OPEN in body[pos:]:
        return _element(body, pos, _VALUE_OPEN, _VALUE_CLOSE)
    if not body.startswith(_VALUE_OPEN, pos):
        raise CallSyntaxError(f"expected {_VALUE_OPEN} in a GLM call")
    text = body[pos + len(_VALUE_OPEN) :]
    if _VALUE_OPEN in text:
        raise CallSyntaxError(f"{_VALUE_OPEN} opened twice")
    return text.removesuffix("\n"), len(body)


def _element(body: str, pos: int, opener: str, closer: str) -> tuple[str, int]:
    if not body.startswith(opener, pos):
        raise CallSyntaxError(f"expected {opener} in a GLM call")
    return text_until(body, pos + len(opener), closer, opener)


def _skip_separator(body: str, pos: int) -> int:
    """Skip whitespace and the literal two characters `\\n` some GLM outputs put between tags."""
    while pos < len(body):
        if body[pos].isspace():
            pos += 1
        elif body.startswith("\\n", pos):
            pos += 2
        else:
            break
    return pos
