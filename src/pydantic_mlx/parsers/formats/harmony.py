"""OpenAI harmony (gpt-oss): messages on channels.

The model writes a sequence of messages, each `<|channel|>NAME<|message|>TEXT` ended by
`<|end|>` (or the stop tokens `<|call|>` / `<|return|>`), later ones opened by
`<|start|>assistant`:

- `analysis` → reasoning;
- `final`, and `commentary` without a recipient (a "preamble" to a call) → content;
- a message addressed to `functions.NAME` → a call whose arguments are the JSON message. The
  recipient sits in the channel header (`<|channel|>commentary to=functions.get_weather
  <|constrain|>json<|message|>{...}<|call|>`) or before it (`<|start|>assistant
  to=functions.get_weather<|channel|>commentary json<|message|>{...}`), on the commentary or
  analysis channel. When the prompt ended with `<|start|>assistant`, the output begins
  directly with ` to=functions.NAME<|channel|>...`.
- a message to a built-in tool (`python`, `browser.search`) is neither a call nor content.

Header tokens are dropped, so no `<|...|>` marker reaches content or reasoning. Generation
usually stops on `<|call|>` / `<|return|>` and the stop token may be missing from the text: a
call whose JSON is complete still counts unless the output was truncated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import regex

from .._json import loads_lenient
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, Quote

__all__ = [
    "ANSWER",
    "CALLS",
    "DROP",
    "NAME",
    "REASONING",
    "TEMPLATE_HINTS",
    "UNTAGGED",
    "parse_region",
    "render",
]

NAME = "harmony"
_MESSAGE_ENDS = ("<|end|>", "<|return|>", "<|call|>")
# A message normally ends with <|end|>; `<|start|>assistant` means the next message began
# without one (consumed whole, so "assistant" never leaks).
_ENDS = (*_MESSAGE_ENDS, "<|start|>assistant")
# The bare forms (`analysis<|message|>`) start an output whose prompt already ended with
# `<|channel|>`; they hold a special token, so they are never prose. An analysis message ends
# with <|end|> only: <|call|> ends a call and <|return|> the final answer, so either written in
# the analysis text is reasoning (the channel grammar; vLLM reads it by tokens).
_ANALYSIS = ("<|channel|>analysis<|message|>", "analysis<|message|>")
REASONING = tuple((opener, closer) for opener in _ANALYSIS for closer in ("<|end|>", "<|start|>assistant"))
# Headers of messages whose text is content (the final answer, a commentary preamble), with the
# content type some outputs give them (`<|channel|>final <|constrain|>json<|message|>`, llama.cpp's
# tests): the type is markup, never part of the answer.
_CONTENT_TYPES = ("", " <|constrain|>json", "<|constrain|>json", " json")
_CONTENT_HEADERS = tuple(
    f"{prefix}{channel}{content_type}<|message|>"
    for prefix in ("<|channel|>", "")
    for channel in ("final", "commentary")
    for content_type in _CONTENT_TYPES
)
# A message addressed to the assistant itself (`<|channel|>commentary to=assistant<|channel|>final`,
# llama.cpp's tests) is no call: its header is markup and the channel it names decides the rest.
_TO_ASSISTANT = tuple(
    f"<|channel|>{channel} to=assistant{after}"
    for channel in ("commentary", "analysis", "final")
    for after in ("<|channel|>", "<|message|>")
)
DROP = (
    "<|start|>assistant",
    *_CONTENT_HEADERS,
    *_TO_ASSISTANT,
    "<|channel|>final",
    "<|channel|>commentary",
    "<|channel|>analysis",
    *_MESSAGE_ENDS,
    "<|start|>",
    "<|channel|>",
    "<|message|>",
    "<|constrain|>",
)
# A `<|call|>` (or any end) written inside a JSON string of the arguments is part of them.
_CALL_END = Closers(_ENDS, quotes=(Quote('"', ('"',), backslash=True),))
_RECIPIENT_OPENERS = (
    "<|channel|>commentary to=",
    "<|channel|>analysis to=",
    "<|start|>assistant to=",
)
# The output right after a `<|start|>assistant` prompt begins with the recipient
# (" to=functions.f<|channel|>..."); only there is a bare "to=functions." a header. Unread, it is
# prose unless it holds a header token: then it is a call cut off or garbled, not the answer.
_BARE_FUNCTIONS_OPENER = "to=functions."
_HEADER_TOKENS = ("<|channel|>", "<|constrain|>", "<|message|>")
CALLS = (
    *(CallSyntax(opener, _CALL_END) for opener in _RECIPIENT_OPENERS),
    CallSyntax(_BARE_FUNCTIONS_OPENER, _CALL_END, at_start=True, markup_if_holds=_HEADER_TOKENS),
)
UNTAGGED: frozenset[str] = frozenset()
# The final answer and preambles are the explicit answer: text there is content even when it
# looks like a JSON call (with `format="auto"`, whose other formats read untagged calls).
ANSWER = (_CONTENT_HEADERS, (*_MESSAGE_ENDS, "<|start|>assistant", "<|start|>"))
TEMPLATE_HINTS = ("<|channel|>", "<|constrain|>")

_FUNCTIONS = "functions."
# Recipients that are not functions: gpt-oss's built-in tools and the conversation's roles.
_NOT_FUNCTIONS = frozenset({"python", "browser", "container", "assistant", "user", "system", "developer"})
_MESSAGE = "<|message|>"
_RECIPIENT = regex.compile(r"[^\s<]+")
# What may stand between the recipient and <|message|>: the channel, the content type.
# Possessive quantifiers: a word is never re-split on failure, so matching stays linear.
_HEADER = regex.compile(r"(?:\s++|<\|channel\|>\w++|<\|constrain\|>\s*+[\w./+-]++|[\w./+-]++)*+")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The call in one recipient-addressed message: `RECIPIENT HEADER<|message|>JSON`.

    A recipient without the `functions.` namespace is a function too, unless it is a built-in
    tool (`python`, `browser.*`, `container.*`) or a role that was not declared as a tool: a
    well-formed message to one of those returns no calls (it is neither a call nor content). Raises
    `CallSyntaxError` when the header is not a harmony header or the message to a function is not
    a JSON object."""
    recipient = _RECIPIENT.match(body)
    if recipient is None:
        raise CallSyntaxError("expected a recipient after to=")
    target = recipient.group()
    if syntax.opener == _BARE_FUNCTIONS_OPENER:
        target = _FUNCTIONS + target
    header_end = body.find(_MESSAGE, recipient.end())
    if header_end < 0:
        raise CallSyntaxError(f"to={target[:80]}: no <|message|> after the header")
    if _HEADER.fullmatch(body, recipient.end(), header_end) is None:
        raise CallSyntaxError(f"to={target[:80]}: not a harmony message header")
    if target.startswith(_FUNCTIONS):
        name = target[len(_FUNCTIONS) :]
        if not name:
            raise CallSyntaxError("to=functions. without a name")
    elif target.split(".", 1)[0] in _NOT_FUNCTIONS and not (tools.known and target in tools.schemas):
        # A message to a built-in tool (`python`, `browser.search`) or a stray `to=assistant`:
        # not a function call, and not meant for the user either.
        return []
    else:
        # A function recipient written without its `functions.` namespace (`to=get_weather`).
        name = target
    payload = body[header_end + len(_MESSAGE) :].strip()
    try:
        arguments = loads_lenient(payload) if payload else {}
    except ValueError as exc:
        raise CallSyntaxError(f"{name}: arguments are not JSON: {exc}") from None
    if isinstance(arguments, str):
        # A JSON string holding the JSON object: the arguments were encoded twice.
        try:
            arguments = loads_lenient(arguments)
        except ValueError:
            raise CallSyntaxError(f"{name}: arguments must be a JSON object") from None
    if not isinstance(arguments, dict):
        raise CallSyntaxError(f"{name}: arguments must be a JSON object")
    return [ToolCall(name=name, arguments=arguments)]


def render(calls: Sequence[ToolCall]) -> str:
    """Each call as its own commentary message, as gpt-oss writes them (`<|call|>`-terminated,
    the next one opened with `<|start|>assistant`)."""
    messages = (
        f"<|channel|>commentary to=functions.{call.name} <|constrain|>json<|message|>"
        f"{json.dumps(call.arguments, ensure_ascii=False)}<|call|>"
        for call in calls
    )
    return "<|start|>assistant".join(messages)
