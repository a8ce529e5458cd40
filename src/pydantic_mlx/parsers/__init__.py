"""Tool-call parsing for model output: every common format, `auto` detection and streaming.

Pure Python (stdlib + `regex`); importable without MLX or pydantic-ai.

```python
from pydantic_mlx.parsers import parse, StreamParser

r = parse(text, format="auto", tools=None, in_reasoning=False, truncated=False)
r.content, r.reasoning, r.calls, r.errors

p = StreamParser(format="auto")
events = p.feed(delta)          # TextDelta / ThinkingDelta / ToolCallDelta
events += p.close()
assert p.result() == parse(whole_text)
```
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from ._engine import Engine
from ._markers import Dialect
from ._respell import Respeller, spaced_tags
from ._tools import ToolsArg, ToolSet, tool_set
from ._types import (
    CallSyntaxError,
    Event,
    MalformedCall,
    ParseProblem,
    ParseResult,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    TruncatedCall,
    UnknownTool,
    UnreadCall,
)
from .formats import format_names, get_format

__all__ = [
    "CallSyntaxError",
    "Event",
    "MalformedCall",
    "ParseProblem",
    "ParseResult",
    "StreamParser",
    "TextDelta",
    "ThinkingDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolSet",
    "TruncatedCall",
    "UnknownTool",
    "UnreadCall",
    "available_formats",
    "detect_format",
    "parse",
    "render_calls",
]

# `auto` tries formats that share an opener in this order (each rejects bodies not its own).
_AUTO_FIRST = ("hermes", "qwen3_coder", "glm")
# Template detection checks the most specific formats first; hermes' `<tool_call>` is generic,
# and Seed-OSS's template writes Qwen3-Coder's `<parameter=` inside its own `<seed:tool_call>`.
_DETECT_FIRST = (
    "harmony",
    "kimi_k2",
    "deepseek",
    "minimax_m2",
    "seed_oss",
    "glm",
    "qwen3_coder",
    "gemma4",
    "mistral",
    "minicpm3",
    "pythonic",
)
_DETECT_LAST = ("llama3_json", "hermes")


def available_formats() -> list[str]:
    """Names accepted by `format=`: `"auto"` and every format module."""
    return ["auto", *format_names()]


@cache
def _dialect(format: str, drop: frozenset[str] = frozenset()) -> Dialect:
    if format == "auto":
        names = format_names()
        ordered = [n for n in _AUTO_FIRST if n in names] + [n for n in names if n not in _AUTO_FIRST]
        return Dialect.of("auto", ordered, drop)
    get_format(format)  # raises ValueError naming the known formats
    return Dialect.of(format, [format], drop)


class StreamParser:
    """Incremental parser for one model output (sans-I/O, like h11).

    Feed text deltas of any size with `feed`; each call returns the events that the text so
    far settles. Only a suffix that could still be the start of a marker (or an undecided
    untagged call) is held back. `close(truncated=...)` flushes the rest; afterwards
    `result()` equals `parse(whole_text, ...)` with the same arguments, whatever the chunking.
    Calls are emitted once complete (never a half call that could turn out truncated).

    `drop`: more text to remove wherever it appears outside calls, as each format removes its own
    end-of-turn tokens (e.g. a tokenizer's control tokens, `<|im_start|>`); the formats' own
    markers are never dropped.

    `special_tokens`: the texts of the tokenizer's special tokens, when the caller knows which
    generated pieces are special tokens (`MLXModel` does). Then a marker that is one of them
    (`[TOOL_CALLS]`, `<|tool_calls_section_begin|>`, `<|channel|>`, ...) counts only where it
    was fed as that token, `feed(text, special=True)`; spelled with ordinary tokens (a model
    writing about the format) it is text. Without it, every marker counts, as in `parse`.
    """

    def __init__(
        self,
        format: str = "auto",
        tools: ToolsArg | ToolSet = None,
        in_reasoning: bool = False,
        drop: Iterable[str] = (),
        special_tokens: Iterable[str] | None = None,
    ) -> None:
        self.format = format
        dialect = _dialect(format, frozenset(t for t in drop if t))
        special = None if special_tokens is None else frozenset(t for t in special_tokens if t)
        tags = spaced_tags(dialect.formats)
        respeller = Respeller(tags) if tags else None
        self._engine = Engine(
            dialect, tool_set(tools), in_reasoning=in_reasoning, special_tokens=special, respeller=respeller
        )
        # The engine's own method, bound here: a Python call less per delta (about 6% of the
        # cost of a 1-character delta of ordinary text).
        self.feed = self._engine.feed

    def feed(self, delta: str, special: bool = False) -> list[Event]:
        """Add model text; returns the events it settles. `special=True` says `delta` is exactly
        one special token's text (see `special_tokens`). (Replaced by the engine's own `feed` on
        each instance; this is its documentation.)"""
        return self._engine.feed(delta, special)

    def close(self, truncated: bool = False) -> list[Event]:
        """End of output. `truncated=True` when generation hit its token limit: then a call
        whose end never came is not a call. Returns the remaining events."""
        return self._engine.close(truncated=truncated)

    def result(self) -> ParseResult:
        """Everything parsed so far (all of it after `close`)."""
        return self._engine.result()


def parse(
    text: str,
    format: str = "auto",
    tools: ToolsArg | ToolSet = None,
    in_reasoning: bool = False,
    truncated: bool = False,
    drop: Iterable[str] = (),
) -> ParseResult:
    """Parse one complete model output into content, reasoning, calls and problems.

    Never raises on any text (only on a bad `format` or `tools` argument). `tools=None` means
    the declared tools are unknown; `tools=[]` means nothing may be called.
    """
    parser = StreamParser(format, tools, in_reasoning, drop)
    parser.feed(text)
    parser.close(truncated)
    return parser.result()


def detect_format(chat_template: str | None) -> str:
    """The format a chat template's model writes its calls in, or `"auto"` if unknown."""
    if not chat_template:
        return "auto"
    names = format_names()
    order = [n for n in _DETECT_FIRST if n in names]
    order += [n for n in names if n not in _DETECT_FIRST and n not in _DETECT_LAST]
    order += [n for n in _DETECT_LAST if n in names]
    for name in order:
        if any(hint in chat_template for hint in get_format(name).TEMPLATE_HINTS):
            return name
    return "auto"


def render_calls(calls: list[ToolCall], format: str) -> str:
    """The text a model of `format`'s family writes for `calls` (used to round-trip tests)."""
    return get_format(format).render(calls)
