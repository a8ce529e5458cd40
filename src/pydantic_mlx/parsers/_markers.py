"""Markers as compiled patterns: a format's (or all formats') markers merged into a `Dialect`,
and how the regions of one opener end (`RegionEnd`). Everything here is built once per process
and shared by every parser.

The patterns use the stdlib `re`: they are literal alternations, character classes and tries of
literals, which cannot backtrack, and `re` runs them faster than `regex`, with about a third of
its overhead per call (the engine searches a few characters on every delta)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ._untagged import may_open_pattern
from .formats import Format, call_enders, get_format
from .formats._syntax import CallSyntax, Closers, Quote

__all__ = [
    "FENCE",
    "Dialect",
    "RegionEnd",
    "alternation",
    "first_characters",
    "quiet_pattern",
    "tail_pattern",
]

FENCE = "```"


@cache
def tail_pattern(prefixes: frozenset[str]) -> re.Pattern[str]:
    """Matches, anchored at the end of the text, a suffix that is one of `prefixes` (which
    are closed under taking prefixes). Written as a trie, so one search over the last few
    characters settles the hold-back in C, however many markers there are."""
    trie: dict[str, Any] = {}
    for prefix in prefixes:
        node = trie
        for ch in prefix:
            node = node.setdefault(ch, {})

    def branch(node: dict[str, Any]) -> str:
        return (
            "(?:\\Z" + "".join(f"|{re.escape(ch)}{branch(child)}" for ch, child in sorted(node.items())) + ")"
        )

    alternatives = [f"{re.escape(ch)}{branch(child)}" for ch, child in sorted(trie.items())]
    return re.compile("|".join(alternatives) if alternatives else r"(?!)")


@cache
def quiet_pattern(markers: frozenset[str], prefixes: frozenset[str], extra: str = "") -> re.Pattern[str]:
    """Matches where one of `markers` starts, or a suffix that is one of `prefixes` (see
    `tail_pattern`). Text with no match, in a state that holds nothing undecided, settles as
    plain text at once: one search in C instead of a step of the state machine per delta.

    At a position, the match is the rest of the text when that is a prefix (to be held back,
    as a step would), else the longest marker there. Written as one trie, so a character that
    begins many markers (`<`, or harmony's `a` of `analysis<|message|>`) is tried once. `extra`
    is a regex of more triggers, tried after the markers (the brackets that may open a call)."""
    trie: dict[str, Any] = {}
    for word in markers | prefixes:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})

    def branch(node: dict[str, Any], path: str) -> str:
        # Longer paths first (the longest marker wins); then a marker ending here, or a prefix
        # ending the text.
        alternatives = [f"{re.escape(ch)}{branch(child, path + ch)}" for ch, child in sorted(node.items())]
        if path in markers:
            alternatives.append("")
        elif path in prefixes:
            alternatives.append(r"\Z")
        return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"

    alternatives = [f"{re.escape(ch)}{branch(child, ch)}" for ch, child in sorted(trie.items())]
    alternatives += [extra] if extra else []
    return re.compile("|".join(alternatives) if alternatives else r"(?!)")


@cache
def first_characters(markers: frozenset[str] | tuple[str, ...]) -> re.Pattern[str]:
    """Matches any character a marker can begin with: before one, no marker can start."""
    characters = sorted({m[0] for m in markers if m})
    return re.compile(f"[{''.join(re.escape(c) for c in characters)}]" if characters else r"(?!)")


@dataclass(frozen=True)
class Dialect:
    """The merged markers of one format (or, for `auto`, of all of them)."""

    name: str
    formats: tuple[Format, ...]
    reasoning: dict[str, tuple[str, ...]]
    drop: frozenset[str]
    openers: dict[str, tuple[tuple[Format, CallSyntax], ...]]
    start_openers: dict[str, tuple[tuple[Format, CallSyntax], ...]]  # only where the answer begins
    reasoning_enders: frozenset[str]  # call openers that also end an unclosed reasoning block
    prompt_reasoning_enders: frozenset[str]  # ... and those that end only one the prompt opened
    untagged_json: bool
    untagged_pythonic: bool
    answer_openers: frozenset[str]  # drop markers that open an explicit answer channel (`ANSWER`)
    answer_closers: frozenset[str]  # drop markers that end one
    tagged_pattern: re.Pattern[str]
    full_pattern: re.Pattern[str]
    proper_prefixes: frozenset[str]
    max_marker: int
    quiet_text: re.Pattern[str]  # `quiet_pattern` of the text state (`full_pattern`'s markers)
    quiet_code: re.Pattern[str]  # the same inside a code fence (`tagged_pattern`'s markers)
    markers: frozenset[str]  # every literal marker: openers, closers, reasoning and drop markers
    opener_pattern: re.Pattern[str]  # the call openers (`openers`), longest first
    opener_prefixes: frozenset[str]  # proper prefixes of `openers`
    region_ends: dict[str, RegionEnd]  # per call opener whose regions end at closers
    closer_optional: frozenset[str]  # call openers whose every syntax has `closer_optional`
    drop_pattern: re.Pattern[str]  # the drop markers, longest first (`alternation`)
    start_pattern: re.Pattern[str]  # the `start_openers`, longest first
    start_prefixes: frozenset[str]  # proper prefixes of `start_openers` and `drop`
    start_longest: int  # the longest of `start_openers` and `drop`

    @classmethod
    def of(cls, name: str, format_names: Sequence[str], extra_drop: frozenset[str] = frozenset()) -> Dialect:
        """The formats' markers together; `extra_drop` adds text to remove outside calls (a
        tokenizer's control tokens), except where it is one of the formats' own markers."""
        formats = tuple(get_format(n) for n in format_names)
        reasoning: dict[str, tuple[str, ...]] = {}
        openers: dict[str, list[tuple[Format, CallSyntax]]] = {}
        start_openers: dict[str, list[tuple[Format, CallSyntax]]] = {}
        drop: set[str] = set()
        ends: set[str] = set()
        for fmt in formats:
            for opener, closer in fmt.REASONING:
                closers = reasoning.setdefault(opener, ())
                if closer not in closers:
                    reasoning[opener] = (*closers, closer)
            for syntax in fmt.CALLS:
                table = start_openers if syntax.at_start else openers
                candidates = table.setdefault(syntax.opener, [])
                # A format with another's syntax and reader (ernie: hermes'; jamba: hunyuan's)
                # reads its regions already: trying it again would only repeat a failure.
                if not any(s == syntax and f.parse_region == fmt.parse_region for f, s in candidates):
                    candidates.append((fmt, syntax))
                ends.update(getattr(syntax.end, "markers", ()), getattr(syntax.end, "after", ()))
            drop.update(fmt.DROP)
            if len(formats) == 1:
                # Optional in a format module: markup spelled like an ordinary XML tag (ERNIE's
                # `<response>`), dropped only where the format is named: under `auto` it is text.
                drop.update(getattr(fmt, "DROP_WHEN_NAMED", ()))
        untagged_json = any("json" in f.UNTAGGED for f in formats)
        untagged_pythonic = any("pythonic" in f.UNTAGGED for f in formats)
        # A marker that is also a call opener or reasoning opener is not dropped.
        drop -= set(openers) | set(reasoning)
        # Nor is extra text that is, or is inside, any marker the formats know (gpt-oss's markers
        # start with `<|channel|>`).
        closers = {closer for pair in reasoning.values() for closer in pair}
        own = set(openers) | set(start_openers) | set(reasoning) | closers | ends | drop
        drop |= {text for text in extra_drop if not any(text in marker for marker in own)}
        tagged = set(openers) | set(reasoning) | drop
        untagged: set[str] = set()
        if untagged_json or untagged_pythonic:
            untagged = {FENCE, "["}
            if untagged_json:
                untagged.add("{")
        markers = tagged | untagged
        # The text state stops at a bracket only where a call may open (`may_open_pattern`); a
        # bracket that begins a longer marker (`[TOOL_CALLS]`) is that marker, tried first.
        literal = tagged | (untagged - {"{", "["})
        brackets = may_open_pattern(json=untagged_json, pythonic=untagged_pythonic)
        text_pattern = alternation(literal).pattern + (f"|{brackets}" if brackets else "")
        code_markers = tagged | ({FENCE} if untagged else set())
        prefixes = frozenset(m[:k] for m in markers for k in range(1, len(m)))
        enders, prompt_enders = call_enders(formats)
        return cls(
            name=name,
            formats=formats,
            reasoning=reasoning,
            drop=frozenset(drop),
            openers={k: tuple(v) for k, v in openers.items()},
            start_openers={k: tuple(v) for k, v in start_openers.items()},
            reasoning_enders=enders,
            prompt_reasoning_enders=prompt_enders,
            untagged_json=untagged_json,
            untagged_pythonic=untagged_pythonic,
            # Optional in a format module: `ANSWER = (openers, closers)`, its explicit answer channel.
            answer_openers=frozenset(o for f in formats for o in getattr(f, "ANSWER", ((), ()))[0]),
            answer_closers=frozenset(c for f in formats for c in getattr(f, "ANSWER", ((), ()))[1]),
            tagged_pattern=alternation(code_markers),
            full_pattern=re.compile(text_pattern),
            proper_prefixes=prefixes,
            max_marker=max((len(m) for m in markers), default=1),
            quiet_text=quiet_pattern(frozenset(literal), prefixes, brackets),
            quiet_code=quiet_pattern(frozenset(code_markers), prefixes),
            markers=frozenset(own | drop),
            opener_pattern=alternation(set(openers)),
            opener_prefixes=frozenset(o[:k] for o in openers for k in range(1, len(o))),
            region_ends=_region_ends({**start_openers, **openers}),
            closer_optional=frozenset(
                o for o, c in {**start_openers, **openers}.items() if all(s.closer_optional for _, s in c)
            ),
            drop_pattern=alternation(drop),
            start_pattern=alternation(set(start_openers)),
            start_prefixes=frozenset(m[:k] for m in (*start_openers, *drop) for k in range(1, len(m))),
            start_longest=max((len(m) for m in (*start_openers, *drop)), default=0),
        )


def _region_ends(openers: dict[str, list[tuple[Format, CallSyntax]]]) -> dict[str, RegionEnd]:
    """How the regions of each opener end, for openers with `Closers` end rules (a region whose
    syntaxes all end at a JSON value's end has none)."""
    ends: dict[str, RegionEnd] = {}
    for opener, candidates in openers.items():
        rules = tuple(s.end for _, s in candidates if isinstance(s.end, Closers))
        if rules:
            ends[opener] = RegionEnd.of(opener, rules)
    return ends


def alternation(markers: set[str] | frozenset[str]) -> re.Pattern[str]:
    return _compiled_alternation(frozenset(markers))


@cache
def _compiled_alternation(markers: frozenset[str]) -> re.Pattern[str]:
    # At one position the longest marker wins. Written as a trie (`quiet_pattern` with no
    # prefixes), not as a list of the markers: `re` would try each of them at every character
    # that begins one (every `{` or `a` in auto: 0.4 s per MB of them).
    return quiet_pattern(markers, frozenset())


@dataclass(frozen=True)
class RegionEnd:
    """How regions opened by one opener end: closers, and quoted spans that hide them."""

    closers: frozenset[str]
    outer: re.Pattern[str]  # closers and quote openers
    quotes: dict[str, Quote]
    inner: dict[str, re.Pattern[str]]  # per quote opener: its closers (and escapes)
    longest: int
    reopen: str | None  # the region's own opener again: the previous call lost its closer
    complete_at: tuple[str, ...]
    longer: dict[str, tuple[str, ...]]  # per marker: the longer markers it begins
    wake: re.Pattern[str]  # a character that may begin one of `outer`'s markers
    wake_inner: dict[str, re.Pattern[str]]  # per quote opener: the same for `inner`

    @classmethod
    @cache
    def of(cls, opener: str, rules: tuple[Closers, ...]) -> RegionEnd:
        closers = frozenset(m for r in rules for m in r.markers)
        quotes = {q.opener: q for r in rules for q in r.quotes}
        inner: dict[str, re.Pattern[str]] = {}
        wake_inner: dict[str, re.Pattern[str]] = {}
        for q in quotes.values():
            # Only a closer can end a quoted span (an escaped one is told by the backslashes
            # before it, `_Region.next_marker`), so a backslash wakes nothing: JSON full of `\\n`
            # streams without a step per escape.
            wake_inner[q.opener] = first_characters(q.closers)
            alternatives = [re.escape(c) for c in sorted(q.closers, key=len, reverse=True)]
            inner[q.opener] = re.compile("|".join(alternatives), re.DOTALL)
        reopen = None if opener in closers or opener in quotes else opener
        markers = closers | set(quotes) | ({reopen} if reopen else set())
        longest = max(len(m) for m in (*markers, *(c for q in quotes.values() for c in q.closers)))
        complete_at = tuple(dict.fromkeys(m for r in rules for m in r.complete_at))
        longer = {m: tuple(n for n in markers if len(n) > len(m) and n.startswith(m)) for m in markers}
        return cls(
            closers,
            alternation(set(markers)),
            quotes,
            inner,
            longest + 1,
            reopen,
            complete_at,
            longer,
            first_characters(frozenset(markers)),
            wake_inner,
        )
