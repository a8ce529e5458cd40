"""The tool-call formats. The folder is the registry: every public module here is a format.

Each format module exposes the same few names:

- `NAME: str` — the format's name (`parse(text, format=NAME)`), equal to the module name.
- `REASONING: tuple[tuple[str, str], ...]` — (opener, closer) pairs of reasoning blocks.
- `DROP: tuple[str, ...]` — special-token text that is markup only (end-of-turn tokens, channel
  headers); removed wherever it appears outside calls, never returned as content.
- `CALLS: tuple[CallSyntax, ...]` — how call regions open and end (see `_syntax.py`).
- `UNTAGGED: frozenset[str]` — small-model habits this format also accepts without markers:
  `"json"` (fenced or bare call objects) and/or `"pythonic"` (`[f(a=1)]`).
- `TEMPLATE_HINTS: tuple[str, ...]` — substrings of a chat template that mean this format.
- `parse_region(syntax, body, tools) -> list[ToolCall | CallSyntaxError]` — the calls in one
  region's body (opener and closer removed); raises `CallSyntaxError` when the body is not a
  valid call. In a region of several calls, a bad one is returned as a `CallSyntaxError` carrying
  its raw text, in its place, so its well-formed neighbours are kept.
- `render(calls) -> str` — the text a model of this family writes for `calls`, markers included
  (tests round-trip it through `parse`).

Optional names (most formats have none):

- `ANSWER: tuple[tuple[str, ...], tuple[str, ...]]` — drop markers that open and that end the
  format's explicit answer channel (gpt-oss `final`, Kimi-K3 `response`): untagged calls are
  never read inside it.
- `DROP_WHEN_NAMED: tuple[str, ...]` — like `DROP`, for markup spelled like an ordinary XML tag
  (ERNIE's `<response>`, Hunyuan's `<answer>`): removed only where this format is named (or
  detected from the chat template); under `auto` it stays the answer's text.
- `SPACED_TAGS: tuple[SpacedTags, ...]` — markers built around a word that models sometimes
  write with spaces around it (Kimi-K3's `<|open|> tools <|sep|>`), read without them.

Keep a format's knowledge in its own module; shared helpers live in `parsers/_json.py`,
`parsers/_calls.py`, `parsers/_scan.py` and `parsers/_schema.py`, and the shapes several
families write in `_tagged.py` (function elements of parameter elements), `_arg_pairs.py` (a
name, then key and value tags), `_invokes.py` (DSML-style invokes) and `_gemma_notation.py`
(Google's `call:NAME{...}`). `parse_region` and `render` may be the bound methods of such a
shape (`parse_region = _CALLS.parse_region`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from functools import cache
from types import ModuleType
from typing import Any, Protocol, cast

from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax

__all__ = ["Format", "call_enders", "format_names", "get_format", "reasoning_enders", "reasoning_pairs"]


class Format(Protocol):
    """The interface every format module satisfies (checked structurally)."""

    NAME: str
    REASONING: tuple[tuple[str, str], ...]
    DROP: tuple[str, ...]
    CALLS: tuple[CallSyntax, ...]
    UNTAGGED: frozenset[str]
    TEMPLATE_HINTS: tuple[str, ...]

    def parse_region(
        self, syntax: CallSyntax, body: str, tools: ToolSet
    ) -> Sequence[ToolCall | CallSyntaxError]: ...

    def render(self, calls: Sequence[ToolCall]) -> str: ...


@cache
def format_names() -> tuple[str, ...]:
    """Names of every format module in this folder, sorted."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


@cache
def get_format(name: str) -> Format:
    """The format module called `name`. Raises `ValueError` listing the known names otherwise."""
    if name not in format_names():
        raise ValueError(
            f"unknown tool-call format {name!r}; known formats: auto, {', '.join(format_names())}"
        )
    module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    return cast(Any, module)


_GENERIC_REASONING = ("<think>", "</think>")


@cache
def reasoning_pairs(name: str) -> tuple[tuple[str, str], ...]:
    """The reasoning blocks format `name`'s parser reads, (opener, closer), its own first; under
    `"auto"` every format's, `<think>` first. A block the prompt opened ends at any of the
    closers; one the model opened, at its opener's."""
    if name != "auto":
        return get_format(name).REASONING
    pairs = [_GENERIC_REASONING, *(pair for n in format_names() for pair in get_format(n).REASONING)]
    return tuple(dict.fromkeys(pairs))


@cache
def reasoning_enders(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """`call_enders` of format `name` (every format's under `"auto"`), for what must follow the
    parser's reasoning state outside it (grammar masks, the thinking budget)."""
    return call_enders([get_format(n) for n in (format_names() if name == "auto" else (name,))])


def call_enders(formats: Iterable[Format]) -> tuple[frozenset[str], frozenset[str]]:
    """The call openers that end a reasoning block the model never closed: those that end any
    block (`CallSyntax.ends_reasoning`), and those that end a block the prompt opened
    (`ends_prompt_reasoning` too). `at_start` openers count only where the answer begins, never
    inside a block."""
    syntaxes = [syntax for fmt in formats for syntax in fmt.CALLS if not syntax.at_start]
    anywhere = frozenset(s.opener for s in syntaxes if s.ends_reasoning)
    return anywhere, anywhere | {s.opener for s in syntaxes if s.ends_prompt_reasoning}
