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
    "UnreadCall",
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
    """A call region whose body could not be read as a call. Its raw text is here, in `text`,
    never in `content`: markup is not an answer."""

    message: str
    text: str
    format: str
    name: str | None = None
    kind: Literal["malformed_call"] = "malformed_call"


@dataclass(frozen=True)
class TruncatedCall:
    """A call that never finished (its end marker or body never came). Its raw text is here, in
    `text`, never in `content`: a cut-off call is neither an answer nor a call."""

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
    """More answer text."""

    content: str


@dataclass(frozen=True, slots=True)
class UnreadCall:
    """A call region the parser could not read (malformed, or cut off): not answer text, not a call.

    `problem.text` holds its raw text. A consumer that acts on calls (an agent) asks the model to
    write the call again; one that shows text may show it as an error, never as the answer.
    """

    problem: MalformedCall | TruncatedCall


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


Event = TextDelta | ThinkingDelta | ToolCallDelta | UnreadCall
"""What `StreamParser.feed` and `StreamParser.close` return."""


class CallSyntaxError(ValueError):
    """A region's body, or one call in it, is not a valid call.

    Internal to the parsers. A format's `parse_region` raises it when the whole region is
    unreadable; in a region that holds several calls (a Kimi section, a Mistral list, a DSML
    block) it may instead return one in place of each bad call, with `text` set to that call's
    raw text, so the well-formed calls beside it are kept. `parse` and `StreamParser` report
    each as a `MalformedCall`.
    """

    def __init__(self, message: str, text: str | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.name = name
