"""How a format marks its calls and reasoning, declared as data the streaming engine runs.

A format module never scans text itself while streaming: it declares its markers here, and the
engine (`parsers/_engine.py`) finds them, holds back only what could still be a marker, and
hands each complete call region's body to the format's `parse_region`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallSyntax", "Closers", "EndRule", "JsonValue", "Quote"]


@dataclass(frozen=True)
class Quote:
    """A span inside a region body where closers don't count: a JSON string, an XML value.

    The span opens at `opener` and ends at the first of `closers`; with `backslash`, a
    backslash escapes the next character (JSON strings).
    """

    opener: str
    closers: tuple[str, ...]
    backslash: bool = False


@dataclass(frozen=True)
class Closers:
    """The region ends at the first of these literal markers (which is consumed) that is not
    inside one of `quotes` — so `</tool_call>` written inside an argument value is not an end."""

    markers: tuple[str, ...]
    quotes: tuple[Quote, ...] = ()


@dataclass(frozen=True)
class JsonValue:
    """No end marker: the region ends where the JSON value in its body completes.

    The value starts at the body's first non-space character when that is `{` or `[`;
    otherwise right after the first of `after` (e.g. Mistral's `[ARGS]`). When `separator`
    follows a value (spaces allowed), another value follows in the same region (Llama's `;`).
    """

    after: tuple[str, ...] = ()
    separator: str | None = None


EndRule = Closers | JsonValue


@dataclass(frozen=True)
class CallSyntax:
    """One way a format opens a call region.

    `opener` is the literal text that starts the region (never part of the body). With
    `closer_optional`, a region whose closer never came still counts when generation was not
    truncated and the body parses as complete calls.
    """

    opener: str
    end: EndRule
    closer_optional: bool = True
    trailer: str | None = None
    """A marker that may follow the region after spaces and belongs to it (Qwen3-Coder's
    `</tool_call>` after a `<function=...>` region whose `<tool_call>` opener was left out)."""
