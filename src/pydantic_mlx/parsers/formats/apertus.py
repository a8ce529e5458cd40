"""Swiss AI Apertus calls: `<|tools_prefix|>[{"get_weather": {"city": "Paris"}}]<|tools_suffix|>`.

Apertus writes every call of a turn as one JSON list between its tool tokens, each call an
object whose only key is the tool's name and whose value is the arguments::

    <|tools_prefix|>[{"get_weather": {"city": "Paris"}}, {"get_time": {}}]<|tools_suffix|>

Reasoning is `<|inner_prefix|>...<|inner_suffix|>`; `<|assistant_end|>` ends the turn. A list
left without `<|tools_suffix|>` still counts when complete; `<|tools_suffix|>` inside a JSON string
does not end it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._calls import call_from_object
from .._json import loads_lenient
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

NAME = "apertus"
REASONING = (("<|inner_prefix|>", "<|inner_suffix|>"),)
DROP = ("<|assistant_end|>",)
_LIST = ("<|tools_prefix|>", "<|tools_suffix|>")
CALLS = (
    CallSyntax(
        _LIST[0],
        Closers((_LIST[1],), quotes=(Quote('"', ('"',), backslash=True),)),
        ends_prompt_reasoning=True,
    ),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|tools_prefix|>",)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls between the tool tokens: a JSON list of `{NAME: arguments}` objects (or one).
    An object in the `{"name": ..., "arguments": ...}` shape every JSON format reads is read too."""
    try:
        value = loads_lenient(body.strip())
    except ValueError as exc:
        raise CallSyntaxError(f"not a JSON call list: {exc}") from None
    items: list[Any] = value if isinstance(value, list) else [value]
    if not items:
        raise CallSyntaxError("an empty list is not a call")
    return [_call(item, tools) for item in items]


def _call(item: Any, tools: ToolSet) -> ToolCall:
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return call_from_object(item, tools, untagged=False)
    if not isinstance(item, Mapping) or len(item) != 1:
        raise CallSyntaxError("a call is an object whose one key is the tool's name")
    [(name, arguments)] = item.items()
    if arguments is None:  # a call without arguments, as Apertus sometimes writes it
        arguments = {}
    if not isinstance(name, str) or not name.strip() or not isinstance(arguments, Mapping):
        raise CallSyntaxError(f"not a call: {json.dumps(item)[:60]}")
    return ToolCall(name, dict(arguments))


def render(calls: Sequence[ToolCall]) -> str:
    """The text Apertus writes for `calls`."""
    objects = [{call.name: call.arguments} for call in calls]
    return f"{_LIST[0]}{json.dumps(objects, ensure_ascii=False)}{_LIST[1]}"
