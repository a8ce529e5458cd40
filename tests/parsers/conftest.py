"""Shared helpers for parser tests: feed a text in chunks and compare with `parse`."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_mlx.parsers import (
    Event,
    MalformedCall,
    ParseResult,
    StreamParser,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    TruncatedCall,
    UnreadCall,
)


def stream(
    text: str,
    cuts: Sequence[int],
    *,
    format: str = "auto",
    tools: object = None,
    in_reasoning: bool = False,
    truncated: bool = False,
    drop: Sequence[str] = (),
) -> tuple[ParseResult, list[Event]]:
    """Feed `text` cut at the given offsets; return the final result and every event."""
    parser = StreamParser(format, tools, in_reasoning, drop)  # type: ignore[arg-type]
    events = feed_in_pieces(parser, text, cuts, truncated)
    return parser.result(), events


def feed_in_pieces(parser: StreamParser, text: str, cuts: Sequence[int], truncated: bool) -> list[Event]:
    """Feed `text` to `parser` cut at the given offsets, then close it; every event, in order."""
    events: list[Event] = []
    last = 0
    for cut in sorted({c for c in cuts if 0 < c < len(text)}):
        events += parser.feed(text[last:cut])
        last = cut
    events += parser.feed(text[last:])
    return events + parser.close(truncated)


def events_agree(result: ParseResult, events: list[Event]) -> bool:
    """Events rebuild exactly the result's content, reasoning and calls."""
    text = "".join(e.content for e in events if isinstance(e, TextDelta))
    thinking = "".join(e.content for e in events if isinstance(e, ThinkingDelta))
    calls: dict[int, list[str]] = {}
    names: dict[int, str | None] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            if e.index not in calls:
                names[e.index] = e.name
            calls.setdefault(e.index, []).append(e.args_delta)
    import json

    rebuilt = [(names[i], json.loads("".join(calls[i]))) for i in sorted(calls)]
    # Every call that could not be read is an `UnreadCall` event carrying exactly its problem.
    flagged = [e.problem for e in events if isinstance(e, UnreadCall)]
    unread = [p for p in result.errors if isinstance(p, MalformedCall | TruncatedCall)]
    return (
        (text if text.strip() else None) == result.content
        and (thinking if thinking.strip() else None) == result.reasoning
        and rebuilt == [(c.name, c.arguments) for c in result.calls]
        and flagged == unread
    )


def unread(result: ParseResult) -> str | None:
    """The raw text of the calls that could not be read, when the output held nothing else
    (no content): markup that was not read is never the answer."""
    if result.content is not None:
        return f"<content {result.content!r}>"
    texts = [e.text for e in result.errors if isinstance(e, MalformedCall | TruncatedCall)]
    return "".join(texts) or None
