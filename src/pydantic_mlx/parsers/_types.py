"""Public value types of the parsers: calls, results, problems and streaming events.

Everything here is a frozen dataclass with no behaviour beyond small conveniences, so results
and events compare by value (the property tests rely on it) and can be shared across threads.
Events use slots: a stream makes one per delta, and a slotted one is about twice as fast to make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CallSyntaxError",
    "Event",
    "MalformedCall",
    "ParseProblem",
    "ParseResult",
    "TextDelta",
    "ThinkingDelta",
    "ToolCall",
    "ToolCallDelta",
    "TruncatedCall",
    "UnknownTool",
]


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for.

    `arguments` is always a JSON object (a `dict`); values keep the types the model wrote
    (`3` is not `"3"`), except in string-carrying formats (XML-style), where values are
    converted by the tool's JSON schema. `id` is set only when the format itself carries one.
    """

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def arguments_json(self) -> str:
        """The arguments as compact JSON text (what `ToolCallDelta.args_delta` fragments join to)."""
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class MalformedCall:
    """A call region whose body could not be read as a call; its text stayed in `content`."""

    message: str
    text: str
    format: str
    name: str | None = None
    kind: Literal["malformed_call"] = "malformed_call"


@dataclass(frozen=True)
class TruncatedCall:
    """A call that never finished (its end marker or body never came); its text stayed in `content`."""

    message: str
    text: str
    format: str
    name: str | None = None
    kind: Literal["truncated_call"] = "truncated_call"


@dataclass(frozen=True)
class UnknownTool:
    """A marked-up call to a tool that was not declared. The call is still returned in `calls`
    (the model clearly meant to call something; the agent answers with a retry), and noted here."""

    message: str
    text: str
    format: str
    name: str | None = None
    kind: Literal["unknown_tool"] = "unknown_tool"


ParseProblem = MalformedCall | TruncatedCall | UnknownTool
"""A problem found while parsing. Problems are reported, never raised."""


@dataclass(frozen=True)
class ParseResult:
    """What one model output contained.

    `content` is all text outside calls and reasoning, concatenated verbatim in order (`None`
    when that text is empty or only whitespace); `reasoning` likewise for reasoning text.
    """

    content: str | None
    reasoning: str | None
    calls: list[ToolCall] = field(default_factory=lambda: list[ToolCall]())
    errors: list[ParseProblem] = field(default_factory=lambda: list[ParseProblem]())


@dataclass(frozen=True, slots=True)
class TextDelta:
    """More answer text.

    `problem` is set when this text is a call the parser could not read (malformed, or cut off):
    it is content, as `parse` reports it, but a consumer that acts on calls (an agent) can ask the
    model to write the call again rather than take the markup for an answer.
    """

    content: str
    problem: MalformedCall | TruncatedCall | None = None


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """More reasoning text."""

    content: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """Part of the call number `index` (0-based, in order of appearance).

    `name` (and `id`, when the format carries one) is set on the first delta of a call; the
    `args_delta` fragments of one call concatenate to the JSON text of its arguments object.
    """

    index: int
    name: str | None
    args_delta: str
    id: str | None = None


Event = TextDelta | ThinkingDelta | ToolCallDelta
"""What `StreamParser.feed` and `StreamParser.close` return."""


class CallSyntaxError(ValueError):
    """Raised by a format's `parse_region` when a region's body is not a valid call.

    Internal to the parsers: `parse` and `StreamParser` catch it and report a `MalformedCall`.
    """
