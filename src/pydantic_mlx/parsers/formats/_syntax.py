"""How a format marks its calls and reasoning, declared as data the streaming engine runs.

A format module never scans text itself while streaming: it declares its markers here, and the
engine (`parsers/_engine.py`) finds them, holds back only what could still be a marker, and
hands each complete call region's body to the format's `parse_region`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JSON_STRING", "CallSyntax", "Closers", "EndRule", "JsonValue", "Quote", "SpacedTags"]


@dataclass(frozen=True)
class Quote:
    """A span inside a region body where closers don't count: a JSON string, an XML value.

    The span opens at `opener` and ends at the first of `closers`; with `backslash`, a
    backslash escapes the next character (JSON strings).
    """

    opener: str
    closers: tuple[str, ...]
    backslash: bool = False


JSON_STRING = Quote('"', ('"',), backslash=True)
"""A JSON string: a closer written inside one (an argument about the format) is not an end."""


@dataclass(frozen=True)
class Closers:
    """The region ends at the first of these literal markers (which is consumed) that is not
    inside one of `quotes` — so `</tool_call>` written inside an argument value is not an end."""

    markers: tuple[str, ...]
    quotes: tuple[Quote, ...] = ()
    complete_at: tuple[str, ...] = ()
    """Markers that end one call inside a section (`<|tool_call_end|>` in a Kimi section): when
    the section's closer never came, the calls up to the last of these are still complete."""


@dataclass(frozen=True)
class JsonValue:
    """No end marker: the region ends where the JSON value in its body completes.

    The value starts at the body's first non-space character when that is `{` or `[`;
    otherwise right after the first of `after` (e.g. Mistral's `[ARGS]`). When `separator`
    follows a value (spaces allowed), another value follows in the same region (Llama's `;`).
    """

    after: tuple[str, ...] = ()
    separator: str | None = None
    after_name: bool = False
    """The value may also follow a name right away (`[TOOL_CALLS]add{"a": 1}`,
    `<|python_tag|>python.call(code="...")`): `{`, `[` or `(` after a leading identifier."""


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
    ends_reasoning: bool = False
    """The opener also ends a reasoning block that was never closed (Kimi-K2 and DeepSeek may
    start calls inside `<think>`). Only for special-token openers that never occur as prose."""
    ends_prompt_reasoning: bool = False
    """The opener ends a reasoning block that the prompt opened (`in_reasoning`) and the model
    never closed, as llama.cpp reads Qwen3.5/3.6, hermes, Qwen3-Coder and GLM outputs: their
    templates open `<think>` in the prompt, and a call there is the answer, not thinking. A
    block the model opened itself keeps the opener as text (it may be writing about calls)."""
    at_start: bool = False
    """The opener counts only where the answer begins — the start of the output or right after
    a reasoning block, after optional spaces (gpt-oss's ` to=functions.` after a prompt that
    ended in `<|start|>assistant`, Gemma 4's bare `call:`). Elsewhere it is plain text. Such a
    region that cannot be read is the answer's text, unless it holds one of `markup_if_holds`."""
    echoed: bool = False
    """The model may write the region's body again right after its closer (LFM2 echoes its
    call list): that echo, after optional spaces, is dropped rather than read as a second call."""
    may_hold_no_call: bool = False
    """A region whose body reads as no calls at all (`parse_region` returns `[]`: Llama-Nemotron's
    `<TOOLCALL>[]</TOOLCALL>`) is the model saying it calls nothing: dropped, no call and no
    problem. Otherwise such a region is reported (it addressed something that is not a function)."""
    closer_in_body: bool = False
    """The closer that ended the region is left at the end of the body `parse_region` gets, so
    the format can tell a body its closer ended (then a value left open before it is complete:
    GLM-4.7's missing last `</arg_value>`) from one the output's end cut off (never a call)."""
    plain_tag: bool = False
    """The opener is spelled like an ordinary XML tag (`<tool_calls>`, `<function_calls>`), which
    answers also write (an XML reply, a sentence about the format): a region that cannot be read,
    or was cut off, is the answer's text, as for `at_start`, unless it holds one of
    `markup_if_holds`. Read anywhere, not only where the answer begins."""
    markup_if_holds: tuple[str, ...] = ()
    """With `at_start` or `plain_tag`: text that makes a region that cannot be read, or was cut
    off, an unread call rather than the answer's text (gpt-oss's ` to=functions.f<|channel|>`
    cut inside its header, a call object's `{"name"` after Hunyuan's `<tool_calls>`)."""


@dataclass(frozen=True)
class SpacedTags:
    """Markers spelled `OPENER WORD CLOSER` out of special tokens (Kimi-K3's `<|open|>tools<|sep|>`)
    that models sometimes write with spaces around the word (`<|open|>   tools <|sep|>`). A format
    declares them as `SPACED_TAGS`; the parser reads such a marker without its spaces, so the
    format's markers stay plain literals."""

    openers: tuple[str, ...]
    closer: str
