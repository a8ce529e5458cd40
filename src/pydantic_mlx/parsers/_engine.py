"""The streaming engine: a sans-I/O state machine that turns model text into events.

Feed it text in pieces of any size; it returns `TextDelta`, `ThinkingDelta` and `ToolCallDelta`
events. Formats only declare their markers (`formats/_syntax.py`); the engine finds them.

States (one at a time):

- `_Text`: answer text. Looks for the earliest trigger: a call opener, a reasoning opener, a
  drop marker, or (when the format accepts untagged calls) a ``` fence, `{` or `[`.
- `_Reasoning`: reasoning text until one of the closers.
- `_Region`: inside a marked call region until its end rule is met; then the body goes to the
  format's `parse_region`.
- `_Untagged`: a possible untagged call (bare or fenced JSON, bare pythonic) until its value
  closes; then it is a call, or it is emitted as text.
- `_FenceTail`: after calls inside a ``` fence: drops the closing fence.
- `_Separator`: after a bare JSON call: drops a `;` that separates it from the next one.
- `_Trailer`: after a region whose syntax has a trailer: drops it (with the spaces before it).

Where the answer begins (the output's start, or right after reasoning) the text state first
checks the `at_start` openers. A region ends at its closer (outside quoted spans), or where its
own opener comes again (the call lost its closer).

Two rules make streaming equal `parse` for every chunking: a decision is taken only when the
text seen so far settles it (otherwise the engine waits, holding back only the undecided
suffix), and `close()` settles whatever is left. Each character is scanned a bounded number of
times (search positions are kept between feeds), so total work is linear in the text.

Most deltas settle nothing new (more text, more reasoning, more of a call). After each step the
engine prepares a fast path for those (`_prepare_fast_paths`): one search decides such a delta
without a step, reaching exactly the decision a step would (`tests/parsers/test_fast_paths.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import _untagged
from ._calls import calls_from_value
from ._json import ValueScanner, loads_lenient
from ._markers import FENCE, Dialect, RegionEnd, alternation, first_characters, quiet_pattern, tail_pattern
from ._respell import Respeller
from ._tools import ToolSet
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
from ._untagged import Decision
from .formats import Format
from .formats._syntax import CallSyntax, JsonValue, Quote

__all__ = ["Engine"]


_KEEP_BEHIND = 512  # > the untagged look-behind (_untagged._MAX_WS)
# In answer text that may hold untagged calls, `_feed_quiet` decides brackets and fences itself.
_BRACKETS_AND_FENCE, _NOTHING = frozenset({"{", "[", FENCE}), frozenset[str]()
_TRIM_AT = 8192
_TRIM_ABOVE = _TRIM_AT + _KEEP_BEHIND
# Bodies no format could read, remembered with the problem (`Engine._unread_bodies`): a hostile
# output repeats a broken call, and each repeat would raise in every format that shares it.
_REMEMBER_BODY, _REMEMBER_BODIES = 256, 64


def _could_become(buf: str, j: int, marker: str) -> bool:
    """Whether the buffer ends inside `marker` starting at `j` (more text may complete it)."""
    rest = buf[j : j + len(marker)]
    return len(rest) < len(marker) and marker.startswith(rest)


def _fence_run_end(buf: str, i: int) -> int:
    """The end of the run of backticks at `i` (fences may use more than three; a run is cut
    at 16 so a long one is not rescanned on every feed)."""
    end = min(len(buf), i + 16)
    while i < end and buf[i] == "`":
        i += 1
    return i


def _may_wait_past_opener(unit: str, ends: RegionEnd) -> bool:
    """Whether a marker (or a quote's closer) that may begin in `unit`'s last characters could
    run past the opener that follows it: a region's walk could then wait on text after that
    opener, and settle later than the opener alone says (`Engine._settle_streamed_repeats`)."""
    reach = ends.longest - 1 - len(ends.reopen or "")  # past the opener's end
    if reach <= 0:
        return False
    tail = unit[-reach:]
    return ends.wake.search(tail) is not None or any(w.search(tail) for w in ends.wake_inner.values())


def _renumbered(event: ToolCallDelta, shift: int) -> ToolCallDelta:
    """`event` for the call `shift` places further on (`dataclasses.replace`, without its cost)."""
    return ToolCallDelta(event.index + shift, event.name, event.args_delta, event.id)


def _escaped(buf: str, j: int) -> bool:
    """Whether the character at `j` is escaped: an odd run of backslashes stands before it (a
    quoted span's own opener ends the run, so the walk stays inside the span)."""
    k = j
    while k > 0 and buf[k - 1] == "\\":
        k -= 1
    return (j - k) % 2 == 1


_NOT_SPACE = re.compile(r"[^ \t\r\n]")
_NOT_NAME = re.compile(r"[^\w.-]")  # not in a name (`_NAME`)


_SPACES = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[\w.-]*")  # `\w` is `str.isalnum()` and `_`


def _skip_space(buf: str, j: int) -> int:
    found = _SPACES.match(buf, j)
    return found.end() if found is not None else j


@dataclass
class _Text:
    pass


@dataclass
class _Reasoning:
    closers: tuple[str, ...]
    pattern: re.Pattern[str]
    prefixes: frozenset[str]
    quiet: re.Pattern[str]  # the ends or a suffix that may grow into one (`quiet_pattern`)


@dataclass
class _Region:
    start: int  # where the opener (or the fence around it) begins: raw text starts here
    body_start: int
    opener: str
    candidates: tuple[tuple[Format, CallSyntax], ...]
    fenced: bool
    scan: int = 0
    scanner: ValueScanner | None = None
    value_end: int | None = None
    quote: Quote | None = None  # inside a quoted span of the body, where closers don't count
    at_start: bool = False  # opened by an `at_start` opener: failing, it was just the answer's text
    ends: RegionEnd | None = None  # how it ends, once known (None for a `JsonValue` region)
    unreadable: bool = False  # a `JsonValue` region with no readable value: it runs to the end
    first: int | None = None  # where the body's first non-space character is, once seen
    # A `JsonValue` region still looking for its value: only text matching `wake` (searched from
    # `wake_at`) can change what it waits on (`Engine._json_value_start`); None: any text can.
    wake: re.Pattern[str] | None = None
    wake_at: int = 0
    # A `JsonValue` region whose body from here is its opener written again, or part of it
    # (`[TOOL_CALLS]` repeated): it waits on nothing else (`opener_again`); -1: not so.
    again: int = -1

    def restart(self, start: int) -> None:
        """This region's state, fresh, for its opener written again at `start` (a repeat of it:
        `Engine._settle_streamed_repeats`), without building a new one."""
        self.start = start
        self.body_start = self.scan = start + len(self.opener)
        self.scanner = self.value_end = self.quote = self.first = self.wake = None
        self.wake_at = 0
        self.again = -1
        self.unreadable = False

    def in_json_value(self, buf: str, at: int) -> bool:
        """Whether a `"` at `at` may open a JSON string. In a region one format reads, always;
        where formats share the opener (`auto`'s `<tool_call>`: hermes JSON, GLM and Qwen3-Coder
        XML), only when the body begins as JSON (`{`, `[` or a fence)."""
        if len(self.candidates) == 1:
            return True
        if self.first is None:
            j = self.body_start
            while j < at and buf[j] in " \t\r\n":
                j += 1
            if j >= at:
                return False  # only spaces before it: the `"` itself begins the body
            self.first = j
        return buf[self.first] in "{[`"

    def may_be_prose(self, body: str) -> bool:
        """Whether, unread, this region is the answer's text: opened by an `at_start` opener or
        a tag every candidate declares plain (`CallSyntax.plain_tag`), and its body holds none
        of the markers that make it markup (`CallSyntax.markup_if_holds`)."""
        plain = self.at_start or all(s.plain_tag for _, s in self.candidates)
        return plain and not any(m in body for _, s in self.candidates for m in s.markup_if_holds)

    def settles_nothing(self, buf: str) -> bool:
        """Whether the text added to `buf` since the last step cannot end this region, so no
        step is needed: it holds no marker that a step must decide on (quoted spans are walked
        here, as a step walks them), or, for a JSON value, the value is still open."""
        if self.unreadable:
            return True
        if self.scanner is not None:
            return self.scanner.scan(buf) is None and not self.scanner.broken
        if self.ends is None:
            if self.again >= 0:
                return self.opener_again(buf)
            if self.wake is None or self.wake.search(buf, self.wake_at) is not None:
                return False
            self.wake_at = len(buf)
            return True
        return self.no_end_yet(buf)

    def opener_again(self, buf: str) -> bool:
        """`settles_nothing` for a region whose body from `again` is its opener written again:
        each whole one is skipped (moving `body_start`, as `Engine._json_value_start` skips
        it); while the rest is still part of one, the value has not begun."""
        opener, at = self.opener, self.again
        while buf.startswith(opener, at):
            at = self.body_start = self.again = at + len(opener)
        return len(buf) - at < len(opener) and opener.startswith(buf[at:])

    def no_end_yet(self, buf: str) -> bool:
        """`settles_nothing` for a region that ends at closers (`ends` known)."""
        ends = self.ends
        assert ends is not None
        wake = ends.wake if self.quote is None else ends.wake_inner[self.quote.opener]
        if wake.search(buf, self.scan) is None:  # the common case: nothing can even begin
            self.scan = len(buf)
            return True
        if self.next_marker(buf, ends, final=False) is not None:
            return False
        self.scan = max(self.scan, len(buf) - ends.longest + 1)
        return True

    def next_marker(self, buf: str, ends: RegionEnd, *, final: bool) -> re.Match[str] | None:
        """Walk from `scan` in and out of quoted spans (moving `scan` and `quote`) up to the next
        marker outside them that ends the region, is the opener again, or (unless `final`) may
        still grow into a longer marker; None once the buffer is walked."""
        while True:
            if self.quote is None:
                match = ends.outer.search(buf, self.scan)
                if match is None:
                    return None
                marker = match.group()
                if (
                    marker in ends.closers
                    or marker == ends.reopen
                    or (not final and any(_could_become(buf, match.start(), m) for m in ends.longer[marker]))
                ):
                    return match
                quote = ends.quotes[marker]
                if quote.backslash and not self.in_json_value(buf, match.start()):
                    # A JSON string exists only inside a JSON body: a `"` in a GLM key or an XML
                    # value, under `auto`'s shared `<tool_call>`, is text.
                    self.scan = match.end()
                    continue
                self.quote = quote
                self.scan = match.end()
            else:
                match = ends.inner[self.quote.opener].search(buf, self.scan)
                if match is None:
                    return None
                if not (self.quote.backslash and _escaped(buf, match.start())):
                    self.quote = None
                self.scan = match.end()


@dataclass
class _Untagged:
    start: int  # raw text start (the fence opener when fenced)
    value_start: int
    kind: str  # "json" | "pythonic"
    fenced: bool
    name: str | None
    scanner: ValueScanner = field(init=False)

    def __post_init__(self) -> None:
        self.scanner = ValueScanner(self.value_start)

    def settles_nothing(self, buf: str) -> bool:
        """Whether the value is still open after the text added to `buf` (nothing to decide)."""
        return self.scanner.scan(buf) is None and not self.scanner.broken


@dataclass
class _FenceTail:
    pass


@dataclass
class _Separator:
    pass


@dataclass
class _Trailer:
    marker: str


_State = _Text | _Reasoning | _Region | _Untagged | _FenceTail | _Separator | _Trailer


_MAX_PERIOD = 4  # the most regions a cycle of repeats may hold (`_Repeat.find_period`)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What settling one region emitted (a region its own opener interrupted: unread, its text as
    content, or its calls). Its text in the same place settles the same way. A call's event is
    kept with its index counted from the region's first call (`Engine._replay`)."""

    text: str
    events: tuple[Event, ...]
    errors: tuple[ParseProblem, ...]
    content: tuple[str, ...]
    calls: tuple[ToolCall, ...]


@dataclass(slots=True)
class _Repeat:
    """The regions settled back to back, each interrupted by the next one's opener (one opener,
    so they differ only in their bodies), kept to find a cycle (`Engine._settle_repeats`): once
    the last `period` regions came twice in a row, the text that follows is expected to repeat
    them, and each region that does is settled from its outcome, at once where its text is all
    there, streamed on the delta the steps would settle it (`Engine._settle_streamed_repeats`).
    `<tool_call>{` repeated is a cycle of one region; `<tool_call>{a<tool_call>{b`, of two."""

    units: list[_Outcome]  # no period yet: the recent regions, in order; then the cycle
    opener: str
    ends: RegionEnd
    start: int  # where the next region begins (where the last one ended)
    period: int = 0  # the cycle's length in regions, once found (0: none yet)
    index: int = 0  # the cycle's region expected at `start`
    matched: int = 0  # how many characters from `start` on are known to equal `expected`'s
    expected: str = ""  # that region's text and the opener after it (with a period)
    expecteds: tuple[str, ...] = ()  # each region's `expected`
    may_wait: bool | None = None  # whether the steps must settle its regions, once needed
    windows: tuple[str, ...] = ()  # each region's text and what its steps may read past it

    def find_period(self) -> None:
        """Keep the shortest cycle the recent regions repeat twice in a row, if any."""
        units = self.units
        for period in range(1, min(_MAX_PERIOD, len(units) // 2) + 1):
            if units[-2 * period : -period] == units[-period:]:
                self.units, self.period = units[-period:], period
                self.expecteds = tuple(unit.text + self.opener for unit in self.units)
                self.expected = self.expecteds[0]
                return
        del units[: -2 * _MAX_PERIOD]

    def advance(self, start: int) -> None:
        """The region expected at `start` settled as expected: the cycle's next one follows."""
        self.index = index = (self.index + 1) % self.period
        self.start, self.matched, self.expected = start, 0, self.expecteds[index]

    def recent(self) -> list[_Outcome]:
        """The recent regions, in the order they came."""
        return self.units[self.index :] + self.units[: self.index] if self.period else self.units


class Engine:
    """Incremental parser state for one model output. See `StreamParser` for the public face."""

    def __init__(
        self,
        dialect: Dialect,
        tools: ToolSet,
        *,
        in_reasoning: bool,
        special_tokens: frozenset[str] | None = None,
        respeller: Respeller | None = None,
    ) -> None:
        self._d = dialect
        # Reads spaced tag markers (Kimi-K3's `<|open|> tools <|sep|>`) plain before the buffer.
        self._respeller = respeller
        self._tools = tools
        # With the tokenizer's special tokens known, a marker that is one of them counts only
        # where it came as that token (`feed(..., special=True)`); spelled by ordinary tokens
        # (prose about the format), it is text. `_special_at` maps such a piece's start to its end.
        self._guarded = dialect.markers & special_tokens if special_tokens else frozenset[str]()
        self._special_at: dict[int, int] = {}
        self._buf = ""
        self._pos = 0  # everything before this has been decided
        self._scan = 0  # the trigger search resumes here (>= _pos)
        self._code_fence = False  # inside a ``` block that is not a call: no untagged calls
        # Inside a format's explicit answer channel (gpt-oss `final`, Kimi-K3 `response`): the
        # text is the answer, and the small-model habits (untagged calls) never apply there.
        self._answer_channel = False
        self._events: list[Event] = []
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.errors: list[ParseProblem] = []
        self._closed = False
        self._truncated = False
        # Where each run of spaces skipped so far ends, by its start (`_skip_spaces`), and each
        # name, by `~start` (`_name_end`). (One dict: an Engine keeps at most 29 attributes, past
        # which CPython 3.11 gives up its compact instance layout and every attribute read slows.)
        self._runs: dict[int, int] = {}
        # The problem of each short region body that every candidate format failed to read, by
        # (opener, at_start, body, closer): the same body fails the same way (formats are pure).
        self._unread_bodies: dict[tuple[str, bool, str, str], str] = {}
        # The regions settled back to back, and the cycle they repeat once one is found
        # (`_settle_repeats`, `_settle_streamed_repeats`).
        self._repeat: _Repeat | None = None
        # With `in_reasoning`, some models still write the opener the prompt already wrote.
        self._opener_may_repeat = in_reasoning
        # Where the answer begins (output start, or after reasoning), `at_start` openers count.
        self._answer_start = not in_reasoning
        all_closers = tuple(dict.fromkeys(c for cs in dialect.reasoning.values() for c in cs))
        self._state: _State = (
            self._reasoning_state(all_closers, prompt_opened=True) if in_reasoning else _Text()
        )
        # Fast paths for the common delta that settles nothing new (see `_prepare_fast_paths`).
        self._quiet: re.Pattern[str] | None = None
        self._quiet_prefixes = dialect.proper_prefixes
        self._quiet_settles = _NOTHING  # what `_feed_quiet` decides without a step
        self._quiet_pieces = self._content
        self._quiet_event: type[TextDelta] | type[ThinkingDelta] = TextDelta
        self._settles_nothing: Callable[[str], bool] | None = None
        self._prepare_fast_paths()

    # -- public -----------------------------------------------------------------------------

    def feed(self, delta: str, special: bool = False) -> list[Event]:
        # (`StreamParser.feed` is this method itself: one call less on every delta.)
        respeller = self._respeller
        if special:
            delta = self._respell_and_mark(delta)
        elif respeller is not None and (respeller.held or respeller.begins in delta):
            delta = respeller.feed(delta)
        quiet = self._quiet  # None once closed
        if quiet is not None and delta:
            # `_append`, inlined: this path runs once per token of ordinary text.
            buf = self._buf
            self._buf = ""
            buf += delta
            self._buf = buf
            pos = self._pos
            found = quiet.search(buf, pos)
            if found is None:  # the common case, kept short: the undecided text is all text
                end = len(buf)
                self._pos = self._scan = end
                piece = delta if end - len(delta) == pos else buf[pos:]
                self._quiet_pieces.append(piece)
                if end > _TRIM_ABOVE:
                    self._trim()
                return [self._quiet_event(piece)]
            return self._feed_quiet(found)
        settles_nothing = self._settles_nothing  # None once closed
        if settles_nothing is not None and delta:
            buf = self._buf  # (`_append`, inlined)
            self._buf = ""
            buf += delta
            self._buf = buf
            if settles_nothing(buf):  # (what it settles itself, it puts in `_events`)
                return self._take_events() if self._events else []
            self._run(final=False)
            return self._take_events()
        if self._closed:
            raise RuntimeError("feed() after close(): make a new StreamParser for a new output")
        if not delta:
            return []
        self._append(delta)
        self._run(final=False)
        return self._take_events()

    def _respell_and_mark(self, text: str) -> str:
        """`text`, fed as one special token, with spaced tag markers respelled; a guarded token
        is noted where it begins (`_special_at`)."""
        token = text if not self._closed and text in self._guarded else None
        respeller = self._respeller
        if respeller is not None and (respeller.held or respeller.begins in text):
            text = respeller.feed(text)
        if token is not None and text.endswith(token):  # (a respelled marker took it otherwise)
            start = len(self._buf) + len(text) - len(token)
            self._special_at[start] = start + len(token)
        return text

    def close(self, *, truncated: bool) -> list[Event]:
        if not self._closed:
            if self._respeller is not None and self._respeller.held:
                self._append(self._respeller.flush())
            self._closed = True
            self._truncated = truncated
            self._run(final=True)
        return self._take_events()

    def result(self) -> ParseResult:
        content = "".join(self._content)
        reasoning = "".join(self._reasoning)
        return ParseResult(
            content=content if content.strip() else None,
            reasoning=reasoning if reasoning.strip() else None,
            calls=list(self.calls),
            errors=list(self.errors),
        )

    # -- machinery --------------------------------------------------------------------------

    def _append(self, text: str) -> str:
        """Add `text` to the buffer and return it. The buffer drops its reference first, so that
        CPython grows the string in place (it does when nothing else refers to it): appending
        then costs the delta, not the buffer, even in a call region that is never trimmed."""
        buf = self._buf
        self._buf = ""
        buf += text
        self._buf = buf
        return buf

    def _feed_quiet(self, found: re.Match[str] | None) -> list[Event]:
        """`feed` in a quiet state whose search found something in the undecided text: settle
        here what a step would settle the same way, else step."""
        buf, pos, quiet = self._buf, self._pos, self._quiet
        assert quiet is not None
        # A bracket is decided here as `_on_bracket` decides it: text (inside code or a sentence,
        # `x = {...}`), or a wait for what follows it at the end of the text; a step opens a call
        # (or holds a bracket that may begin a longer marker, `[TOOL_CALLS]`). So is a fence in
        # answer text, as `_on_fence` decides it: text (inline code, a run of backticks), or a
        # wait for its info line; a step opens it.
        wait_at = -1
        while found is not None and found.group() in self._quiet_settles:
            i = found.start()
            if buf[i] == "`":
                decision, resume = _untagged.fence_opener_end(buf, i, final=False)
                if decision is Decision.ACCEPT and self._skip_spaces(resume) >= len(buf):
                    decision = Decision.WAIT  # a fence opened; what it holds is not written yet
            else:
                if len(buf) - i < self._d.max_marker and buf[i:] in self._quiet_prefixes:
                    break
                if not _untagged.stands_alone_after(buf, i):
                    decision = Decision.REJECT  # in code or a sentence: text
                elif _untagged.open_at_end(buf, i, json=self._d.untagged_json):
                    decision = Decision.WAIT
                elif (
                    buf[i] == "{"
                    and self._d.untagged_json
                    and _untagged.head_waits(self._tools).match(buf, i)
                ):
                    # A call head that runs to the text's end (`{"name": "rea`, in 1-char deltas):
                    # `json_call_start` waits for what follows it. One match, not the reader.
                    decision = Decision.WAIT
                elif (
                    buf[i] == "["
                    and self._d.untagged_pythonic
                    and _untagged.name_waits(self._tools).match(buf, i)
                ):
                    # A name that runs to the text's end (`[ARGS` of `[ARGS]\n`, in 1-char deltas):
                    # `pythonic_call_start` waits for what follows it. One match, not the readers.
                    decision = Decision.WAIT
                elif buf[i] == "[" and self._d.untagged_pythonic and not _untagged.list_of_objects(buf, i):
                    # `json_call_start` rejects it (no `{` after it): only a pythonic list may open
                    # here (`[ARGS]` on every line, streamed, was decided by both on every line).
                    decision = _untagged.pythonic_call_start(buf, i, self._tools, final=False)[0]
                else:
                    decision = self._bracket_decision(i, False, fenced=False, alone=True)[0]
                resume = i + 1
            if decision is Decision.WAIT:
                wait_at = i
                break
            if decision is Decision.ACCEPT:
                break
            found = quiet.search(buf, resume)
        # The undecided text holds no marker, or only what may still grow into one at its end:
        # all before that is text (or reasoning) now, exactly what a step would decide.
        if found is None:
            end = len(buf)
        elif wait_at >= 0:
            end = wait_at
        elif found.end() == len(buf) and found.group() in self._quiet_prefixes:
            end = found.start()
        else:
            self._run(final=False)
            return self._take_events()
        self._pos = self._scan = end
        if end == pos:
            return []
        piece = buf[pos:end]
        self._quiet_pieces.append(piece)
        if end > _TRIM_ABOVE:
            self._trim()
        return [self._quiet_event(piece)]

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _run(self, *, final: bool) -> None:
        while self._step(final):
            pass
        self._trim()
        self._prepare_fast_paths()

    def _prepare_fast_paths(self) -> None:
        """After a step: what the next `feed` may skip stepping for. In text or reasoning, when
        the undecided text (from `_pos`) has no `quiet` match, it is all text or reasoning;
        inside a call, a delta the state `settles_nothing` on is just kept."""
        self._quiet = self._settles_nothing = None
        if self._closed:
            return
        state = self._state
        settled = self._scan == self._pos  # the next step would search from `_pos`
        if isinstance(state, _Text):
            if self._answer_start and self._d.start_openers:
                self._settles_nothing = self._answer_start_waits
            elif settled:
                no_untagged = self._code_fence or self._answer_channel
                self._quiet = self._d.quiet_code if no_untagged else self._d.quiet_text
                self._quiet_prefixes = self._d.proper_prefixes
                untagged = not no_untagged and (self._d.untagged_json or self._d.untagged_pythonic)
                self._quiet_settles = _BRACKETS_AND_FENCE if untagged else _NOTHING
                self._quiet_pieces, self._quiet_event = self._content, TextDelta
        elif isinstance(state, _Reasoning):
            if settled and not self._opener_may_repeat:
                self._quiet, self._quiet_prefixes = state.quiet, state.prefixes
                self._quiet_settles = _NOTHING
                self._quiet_pieces, self._quiet_event = self._reasoning, ThinkingDelta
        elif isinstance(state, _Region) and state.ends is not None:
            repeat = self._repeat
            if (
                repeat is not None
                and repeat.period
                and repeat.start == state.start
                and repeat.opener == state.opener
            ):
                self._settles_nothing = self._settle_streamed_repeats
            else:
                self._settles_nothing = state.no_end_yet  # (the common region: one check less)
        elif isinstance(state, _Region | _Untagged):
            self._settles_nothing = state.settles_nothing

    def _step(self, final: bool) -> bool:
        state = self._state
        if isinstance(state, _Text):
            return self._step_text(final)
        if isinstance(state, _Reasoning):
            return self._step_reasoning(state, final)
        if isinstance(state, _Region):
            return self._step_region(state, final)
        if isinstance(state, _Untagged):
            return self._step_untagged(state, final)
        if isinstance(state, _FenceTail):
            return self._step_fence_tail(final)
        if isinstance(state, _Trailer):
            return self._step_trailer(state, final)
        return self._step_separator(final)

    def _emit_text(self, end: int, problem: MalformedCall | TruncatedCall | None = None) -> None:
        """Text up to `end`. With `problem`, the text up to `end` is a call that could not be
        read: not content, but an `UnreadCall` carrying the problem (whose `text` is that span)."""
        if problem is not None:
            self.errors.append(problem)
            self._events.append(UnreadCall(problem))
            self._pos = max(self._pos, end)
        elif end > self._pos:
            piece = self._buf[self._pos : end]
            self._content.append(piece)
            self._events.append(TextDelta(piece))
            self._pos = end
        self._scan = max(self._scan, self._pos)

    def _emit_thinking(self, end: int) -> None:
        if end > self._pos:
            piece = self._buf[self._pos : end]
            self._reasoning.append(piece)
            self._events.append(ThinkingDelta(piece))
            self._pos = end
        self._scan = max(self._scan, self._pos)

    def _emit_region_items(self, items: Sequence[ToolCall | CallSyntaxError], raw: str, fmt: str) -> None:
        """A region's calls in order; a bad call among them is an `UnreadCall` of its own text."""
        for item in items:
            if isinstance(item, ToolCall):
                self._emit_calls([item], raw, fmt, tagged=True)
            else:
                problem = MalformedCall(f"{fmt}: {item}", item.text or raw, fmt, item.name)
                self.errors.append(problem)
                self._events.append(UnreadCall(problem))

    def _emit_calls(self, calls: list[ToolCall], raw: str, fmt: str, *, tagged: bool) -> None:
        for call in calls:
            if tagged and self._tools.known and call.name not in self._tools.schemas:
                self.errors.append(
                    UnknownTool(f"{call.name!r} is not one of the declared tools", raw, fmt, call.name)
                )
            self._events.append(ToolCallDelta(len(self.calls), call.name, call.arguments_json(), call.id))
            self.calls.append(call)

    def _pending_prefix(self, start: int, stop: int, prefixes: frozenset[str], max_len: int) -> int | None:
        """The first index in [start, stop] where the buffer's tail could still grow into a marker."""
        buf = self._buf
        k = max(start, len(buf) - max_len + 1)
        if k > stop:
            return None
        found = tail_pattern(prefixes).search(buf, k)
        return found.start() if found is not None and found.start() <= stop else None

    def _trim(self) -> None:
        """Forget decided text, keeping enough before `_pos` for the look-behind of untagged
        calls, so a long output is not copied on every feed. Only in states that hold no
        buffer offsets."""
        cut = self._pos - _KEEP_BEHIND
        if cut > _TRIM_AT and isinstance(self._state, _Text | _Reasoning):
            self._runs.clear()  # their offsets are the untrimmed buffer's
            if self._special_at:
                self._special_at = {i - cut: j - cut for i, j in self._special_at.items() if i >= cut}
            self._buf = self._buf[cut:]
            self._pos -= cut
            self._scan -= cut
            if self._repeat is not None:
                self._repeat.start -= cut  # (one left behind stays before `_pos`: no region opens there)

    def _goto(self, state: _State, pos: int) -> bool:
        self._state = state
        self._pos = pos
        self._scan = pos
        self._runs.clear()
        return True

    def _is_marker(self, i: int, marker: str) -> bool:
        """Whether `marker`, found at `i`, is markup: always, unless it is a special token the
        parser was told of and it did not come as that token."""
        return marker not in self._guarded or self._special_at.get(i) == i + len(marker)

    def _skip_spaces(self, j: int) -> int:
        """The first index from `j` on that is not a space. States that wait for what follows
        spaces (the answer's start, a fence's closer, a trailer, a separator, a JSON value) ask
        again on every feed from the same `j`: resuming where the run was left keeps a long run
        of spaces linear, not quadratic."""
        buf = self._buf
        if j < len(buf) and buf[j] not in " \t\r\n":
            return j  # no run here (the common case)
        end = _skip_space(buf, self._runs.get(j, j))
        self._runs[j] = end
        return end

    def _name_end(self, j: int) -> int:
        """The end of the name (letters, digits, `_.-`) that starts at `j`, resumed on each feed
        like `_skip_spaces`."""
        found = _NAME.match(self._buf, self._runs.get(~j, j))
        k = self._runs[~j] = found.end() if found is not None else j
        return k

    # -- text -------------------------------------------------------------------------------

    def _step_text(self, final: bool) -> bool:
        if self._pos > _TRIM_ABOVE:
            # Calls or markup back to back (`<tool_call>{` repeated) leave the text state within
            # one run, so the trim after the run would never see it: without this, the buffer
            # grew for the whole output and each delta appended to it could copy all of it.
            self._trim()
        if self._answer_start and self._d.start_openers:
            settled = self._step_answer_start(final)
            if settled is not None:
                return settled
        d, buf = self._d, self._buf
        pattern = d.tagged_pattern if self._code_fence or self._answer_channel else d.full_pattern
        match = pattern.search(buf, self._scan)
        stop = match.start() if match else len(buf) - 1
        if not final and stop > len(buf) - d.max_marker:  # (else no marker may start from here)
            pending = self._pending_prefix(self._scan, stop, d.proper_prefixes, d.max_marker)
            if pending is not None:
                self._emit_text(pending)
                self._scan = pending
                return False
        if match is None:
            self._emit_text(len(buf))
            return False
        i, marker = match.start(), match.group()
        if marker == FENCE:
            if self._answer_channel:  # a fence in the answer is the answer's text
                self._scan = _fence_run_end(buf, i)
                return True
            return self._on_fence(i, final)
        if marker in ("{", "["):
            return self._on_bracket(i, final, fence_start=None)
        if not self._is_marker(i, marker):  # a special token's text spelled by ordinary tokens
            self._scan = i + 1
            return True
        self._emit_text(i)
        end = i + len(marker)
        if marker in d.drop:
            while True:
                if marker in d.answer_openers:
                    self._answer_channel = True
                elif marker in d.answer_closers:
                    self._answer_channel = False
                # Markup right after markup (`<eos><eos>...`) is dropped in this step too,
                # exactly where the steps that would follow would drop it.
                following = self._drop_follows(end, final) if d.drop_pattern.match(buf, end) else None
                if following is None:
                    return self._goto(_Text(), end)
                marker, end = following, end + len(following)
        self._answer_channel = False  # a call or reasoning begins: the answer channel ended
        if marker in d.reasoning:
            return self._goto(self._reasoning_state(d.reasoning[marker]), end)
        return self._goto(_Region(i, end, marker, d.openers[marker], fenced=False, scan=end), i)

    def _drop_follows(self, i: int, final: bool) -> str | None:
        """The drop marker at `i` that the next step would drop without deciding anything else
        (no text before it, no start opener or longer marker that may begin there), or None."""
        d, buf = self._d, self._buf
        pattern = d.tagged_pattern if self._code_fence or self._answer_channel else d.full_pattern
        found = pattern.match(buf, i)
        if found is None or found.group() not in d.drop or self._guarded:
            return None
        if found.group() in (FENCE, "{", "["):  # (`drop=` text): a step reads these first
            return None
        if not final and self._pending_prefix(i, i, d.proper_prefixes, d.max_marker) is not None:
            return None
        if self._answer_start and d.start_openers:
            if buf[i] in " \t\r\n" or d.start_pattern.match(buf, i):
                return None
            if not final and len(buf) - i < d.start_longest and buf[i:] in d.start_prefixes:
                return None
        return found.group()

    def _step_answer_start(self, final: bool) -> bool | None:
        """At the start of the answer: open an `at_start` region if one begins here (after
        spaces). None once it is settled that none does."""
        buf, d = self._buf, self._d
        j = self._skip_spaces(self._pos)
        if j >= len(buf) and not final:
            return False
        # The first start opener (in the dialect's order) that begins here, if any does.
        for opener, candidates in d.start_openers.items() if d.start_pattern.match(buf, j) else ():
            if buf.startswith(opener, j) and self._is_marker(j, opener):
                self._answer_start = False
                self._emit_text(j)
                end = j + len(opener)
                region = _Region(j, end, opener, candidates, fenced=False, scan=end, at_start=True)
                return self._goto(region, j)
        if not final and len(buf) - j < d.start_longest and buf[j:] in d.start_prefixes:
            return False  # may still grow into a start opener or dropped markup
        # Dropped markup (a control token the tokenizer leaked) is not the answer: the answer
        # still begins after it. The text loop drops it; this check runs again after it. (One
        # search, not a test per marker: a hostile output repeats such markers without end.)
        dropped = d.drop_pattern.match(buf, j) is not None
        if dropped and self._guarded:
            dropped = any(buf.startswith(m, j) and self._is_marker(j, m) for m in d.drop)
        if not dropped:
            self._answer_start = False
        return None

    def _answer_start_waits(self, buf: str) -> bool:
        """`settles_nothing` where the answer begins: while the text from `_pos` is spaces, then
        at most a part of a start opener or of dropped markup (none whole), `_step_answer_start`
        waits (dropped markup repeated at the output's start, `<eos><eos>...` in 1-char deltas,
        was a step per delta). Whole dropped markup right at `_pos` is dropped here first, as
        the text state's step drops it (`_drop_follows`: what it drops deciding nothing else;
        the answer still begins after it); none of it is an event."""
        d, j = self._d, self._pos
        if buf[j] in " \t\r\n":
            if (j := self._skip_spaces(j)) >= len(buf):
                return True
        elif self._scan == j and (marker := self._drop_follows(j, False)) is not None:
            while marker is not None and marker not in d.answer_openers and marker not in d.answer_closers:
                j += len(marker)
                marker = self._drop_follows(j, False) if j < len(buf) else None
            if j > self._pos:
                self._goto(_Text(), j)
                if j > _TRIM_ABOVE:
                    self._trim()
                    buf, j = self._buf, self._pos
                if j >= len(buf):
                    return True
        return (
            len(buf) - j < d.start_longest
            and buf[j:] in d.start_prefixes
            and not d.start_pattern.match(buf, j)
        )

    def _on_fence(self, i: int, final: bool) -> bool:
        if self._code_fence:
            self._code_fence = False
            self._scan = _fence_run_end(self._buf, i)
            return True
        decision, opener_end = _untagged.fence_opener_end(self._buf, i, final=final)
        if decision is Decision.WAIT:
            self._emit_text(i)
            return False
        if decision is Decision.REJECT:
            self._scan = opener_end
            return True
        return self._fenced_content(opener_end, i, final, on_other="code")

    def _fenced_content(self, j: int, fence_start: int, final: bool, *, on_other: str) -> bool:
        """Decide what the fence opened at `fence_start` holds, looking from `j` on: a call
        (untagged or marked) or something else. `on_other` says what "something else" means:
        "code" (a fresh fence: its text is code, no untagged calls inside) or "text" (the text
        after calls in a fence: the fence ended without its closer)."""
        buf = self._buf
        j = self._skip_spaces(j)
        if j >= len(buf):
            if final:
                return self._goto(_Text(), self._pos) if on_other == "text" else self._emit_all_text()
            self._emit_text(fence_start)
            return False
        if buf[j] in "{[":
            return self._on_bracket(j, final, fence_start=fence_start)
        d = self._d
        # The first opener (in the dialect's order) that begins here or may still: one search
        # says whether there is any before they are tried one by one.
        may_open = d.opener_pattern.match(buf, j) is not None or (
            not final and len(buf) - j < d.max_marker and buf[j:] in d.opener_prefixes
        )
        for opener in d.openers if may_open else ():
            if buf.startswith(opener, j):
                self._emit_text(fence_start)
                end = j + len(opener)
                region = _Region(fence_start, end, opener, d.openers[opener], fenced=True, scan=end)
                return self._goto(region, fence_start)
            if not final and _could_become(buf, j, opener):
                self._emit_text(fence_start)
                return False
        if on_other == "text":
            return self._goto(_Text(), self._pos)
        self._code_fence = True  # a fence that holds something else: code, prose, a JSON example
        self._scan = j
        return True

    def _emit_all_text(self) -> bool:
        self._emit_text(len(self._buf))
        return False

    def _on_bracket(self, i: int, final: bool, *, fence_start: int | None) -> bool:
        """A `{` or `[` at `i` in text (or first inside a fence opened at `fence_start`)."""
        buf = self._buf
        start = i if fence_start is None else fence_start
        decision, kind, name = self._bracket_decision(i, final, fenced=fence_start is not None)
        if decision is Decision.WAIT:
            self._emit_text(start)
            return False
        if decision is Decision.REJECT:
            self._state = _Text()
            if fence_start is not None:
                self._code_fence = True
            # Plain text: keep searching; the text is emitted in one piece when something else
            # settles (coalescing keeps brace-heavy prose to a few events). A bracket right after
            # a bracket never stands alone: a run of them is passed in one step (`"{" * n` cost a
            # step each), all but the last, which may open a marker (`[[TOOL_CALLS]`).
            self._scan = max(i + 1, _untagged.bracket_run_end(buf, i + 1) - 1)
            return True
        self._emit_text(start)
        return self._goto(_Untagged(start, i, kind, fence_start is not None, name), start)

    def _bracket_decision(
        self, i: int, final: bool, *, fenced: bool, alone: bool = False
    ) -> tuple[Decision, str, str | None]:
        """Whether the `{` or `[` at `i` opens an untagged call: the decision, the kind of call
        ("json" or "pythonic") and its name, if read. `alone`: the caller found that it stands
        alone (`_untagged.stands_alone_after`)."""
        d, buf = self._d, self._buf
        # Inside code or a sentence (`x = {...}`, `print([f()])`, `` `{...}` ``) it is text.
        if not (fenced or alone or _untagged.stands_alone_after(buf, i)):
            return Decision.REJECT, "json", None
        decision, name = Decision.REJECT, None
        if d.untagged_json:
            decision, name = _untagged.json_call_start(buf, i, self._tools, final=final)
        if decision is Decision.REJECT and d.untagged_pythonic and buf[i] == "[":
            decision, name = _untagged.pythonic_call_start(buf, i, self._tools, final=final)
            return decision, "pythonic", name
        return decision, "json", name

    # -- reasoning --------------------------------------------------------------------------

    def _reasoning_state(self, closers: tuple[str, ...], *, prompt_opened: bool = False) -> _Reasoning:
        # Some call openers end only a block the prompt opened (`CallSyntax.ends_prompt_reasoning`).
        ends = set(closers) | (self._d.prompt_reasoning_enders if prompt_opened else self._d.reasoning_enders)
        prefixes = frozenset(c[:k] for c in ends for k in range(1, len(c)))
        return _Reasoning(closers, alternation(ends), prefixes, quiet_pattern(frozenset(ends), prefixes))

    def _step_reasoning(self, state: _Reasoning, final: bool) -> bool:
        buf = self._buf
        if self._opener_may_repeat:
            for opener in self._d.reasoning:
                if buf.startswith(opener):
                    self._opener_may_repeat = False
                    return self._goto(state, len(opener))
                if not final and _could_become(buf, 0, opener):
                    return False
            self._opener_may_repeat = False
        match = state.pattern.search(buf, self._scan)
        while match is not None and not self._is_marker(match.start(), match.group()):
            match = state.pattern.search(buf, match.start() + 1)
        if match is not None and not final:
            longest = max((len(c) for c in state.prefixes), default=0) + 1
            if self._pending_prefix(match.start(), match.start(), state.prefixes, longest) is not None:
                match = None  # a longer marker may still be forming at the match
        if match is None:
            end = len(buf)
            if not final:
                longest = max((len(c) for c in state.prefixes), default=0) + 1
                pending = self._pending_prefix(self._scan, len(buf) - 1, state.prefixes, longest)
                end = pending if pending is not None else end
            self._emit_thinking(end)
            self._scan = end
            return False
        self._emit_thinking(match.start())
        self._answer_start = True
        if match.group() in state.closers:
            self._answer_channel = match.group() in self._d.answer_openers
            return self._goto(_Text(), match.end())
        return self._goto(
            _Text(), match.start()
        )  # a call opener that ends reasoning: the text state opens it

    # -- marked call regions ----------------------------------------------------------------

    def _step_region(self, state: _Region, final: bool) -> bool:
        ends = state.ends
        if ends is None:
            ends = state.ends = self._d.region_ends.get(state.opener)
        if ends is not None:
            return self._region_closers(state, ends, final)
        rule = state.candidates[0][1].end
        assert isinstance(rule, JsonValue)
        return self._region_json(state, rule, final)

    def _region_closers(self, state: _Region, ends: RegionEnd, final: bool) -> bool:
        buf = self._buf
        while (match := state.next_marker(buf, ends, final=final)) is not None:
            if not final and any(_could_become(buf, match.start(), m) for m in ends.longer[match.group()]):
                state.scan = match.start()  # a longer marker may still be forming here
                return False
            if not self._is_marker(match.start(), match.group()):
                state.scan = match.start() + 1  # spelled by ordinary tokens: part of the body
                continue
            if match.group() in ends.closers:
                body = buf[state.body_start : match.start()]
                return self._resolve_region(state, body, match.end(), closed=True, closer=match.group())
            body = buf[state.body_start : match.start()]  # the opener again
            if body.strip():
                marks = len(self._events), len(self.errors), len(self._content), len(self.calls)
                self._resolve_region(state, body, match.start(), closed=False, interrupted=True)
                self._settle_repeats(state, ends, match.start(), marks)
                return True
            # A doubled opener: part of this region's body (the format reads past it).
            state.scan = match.end()
        if final and state.quote is not None:
            # A quote that never closed was not a quote (prose with a stray `"`): fall back to
            # the first closer, quoted or not.
            first = min(
                ((j, c) for c in ends.closers if (j := buf.find(c, state.body_start)) >= 0), default=None
            )
            if first is not None:
                j, closer = first
                body = buf[state.body_start : j]
                return self._resolve_region(state, body, j + len(closer), closed=True, closer=closer)
        if final:
            return self._resolve_region(state, buf[state.body_start :], len(buf), closed=False)
        state.scan = max(state.scan, len(buf) - ends.longest + 1)
        return False

    def _settle_repeats(
        self, state: _Region, ends: RegionEnd, end: int, marks: tuple[int, int, int, int]
    ) -> None:
        """After a region that its own opener interrupted was settled (unread: `<tool_call>{` then
        `<tool_call>` again; or as text, or as calls), found from `marks` (the lengths of
        the events, errors, content and calls before it): kept with the regions settled back to
        back before it, to find a cycle they repeat (`_Repeat`). While the text that follows
        repeats the cycle, each region would be opened, walked, interrupted and settled by the same
        steps as the one it repeats, so its events are written here without them. A region's
        steps read its text and, past its end, at most `ahead` characters (the longest marker that
        may begin there), start from a fresh region state, and look behind it only at the
        character before it (`_in_inline_code`): the same text over that window, in a cycle seen
        twice in a row (so each region was preceded by the region before it in the cycle), is the
        same outcome. A hostile output repeating a call opener costs a comparison per repeat, not
        a region and a parse.

        Streamed, the next region is rarely all there yet: the cycle is kept (`_repeat`), and
        the regions that come later are settled from it as they arrive
        (`_settle_streamed_repeats`)."""
        previous, self._repeat = self._repeat, None
        n_events, n_errors, n_content, n_calls = marks
        if not isinstance(self._state, _Text) or self._pos != end or state.at_start or state.fenced:
            return
        events = self._events[n_events:]
        if len(self.calls) > n_calls:
            events = [_renumbered(e, -n_calls) if isinstance(e, ToolCallDelta) else e for e in events]
        outcome = _Outcome(
            self._buf[state.start : end],
            tuple(events),
            tuple(self.errors[n_errors:]),
            tuple(self._content[n_content:]),
            tuple(self.calls[n_calls:]),
        )
        if previous is None or previous.start != state.start or previous.opener != state.opener:
            repeat = _Repeat([outcome], state.opener, ends, end)
        elif previous.period and previous.units[previous.index] == outcome:
            repeat = previous  # the steps settled the cycle's next region as expected
            repeat.advance(end)
        else:
            repeat = _Repeat([*previous.recent(), outcome], state.opener, ends, end)
            repeat.find_period()
        self._repeat = repeat
        if repeat.period:
            self._settle_cycle_at_once(repeat)

    def _settle_cycle_at_once(self, repeat: _Repeat) -> None:
        """Settle the cycle's regions whose text (and what their steps read past it) is all in the
        buffer, from `repeat.start` on, without their steps."""
        units, opener, period = repeat.units, repeat.opener, repeat.period
        if not all(self._repeats_read_alike(unit.text, opener) for unit in units):
            return
        d, buf = self._d, self._buf
        windows = repeat.windows or self._windows(repeat)
        pattern = d.tagged_pattern if self._code_fence or self._answer_channel else d.full_pattern
        k = start = repeat.start
        first = i = repeat.index
        count = 0
        while (
            buf.startswith(windows[i], k)
            and (found := pattern.match(buf, k)) is not None
            and found.group() == opener  # the text state opens the same region here
        ):
            k += len(units[i].text)
            i = (i + 1) % period
            count += 1
        if k == start:
            return
        # Each region emits what the one it repeats emitted (frozen, equal values: the same objects).
        order = units[first:] + units[:first]
        if any(unit.calls for unit in units):
            for j in range(count):
                self._replay(order[j % period])
        else:
            cycles, rest = divmod(count, period)
            for part, times in ((order, cycles), (order[:rest], 1)):
                if times:
                    self._events.extend([e for unit in part for e in unit.events] * times)
                    self.errors.extend([e for unit in part for e in unit.errors] * times)
                    self._content.extend([c for unit in part for c in unit.content] * times)
        repeat.start, repeat.index, repeat.matched, repeat.expected = k, i, 0, repeat.expecteds[i]
        self._pos = self._scan = k

    def _replay(self, unit: _Outcome) -> None:
        """Emit what the region `unit` describes emitted, its calls numbered on from the last."""
        self.errors.extend(unit.errors)
        self._content.extend(unit.content)
        if not unit.calls:
            self._events.extend(unit.events)
            return
        first = len(self.calls)
        self._events.extend(_renumbered(e, first) if isinstance(e, ToolCallDelta) else e for e in unit.events)
        self.calls.extend(unit.calls)

    def _windows(self, repeat: _Repeat) -> tuple[str, ...]:
        """Each of the cycle's regions' text and the characters its steps may read past it."""
        ahead = max(self._d.max_marker, repeat.ends.longest)
        cycle = "".join(unit.text for unit in repeat.units)
        periodic = cycle * (ahead // len(cycle) + 2)
        windows: list[str] = []
        at = 0
        for unit in repeat.units:
            windows.append(periodic[at : at + len(unit.text) + ahead])
            at += len(unit.text)
        repeat.windows = tuple(windows)
        return repeat.windows

    def _repeats_read_alike(self, unit: str, opener: str) -> bool:
        """Whether the text state would open the next repeat of a region of `unit` as it opened
        that region, and read it the same way (checked once a repeat is there)."""
        d = self._d
        return not (
            (self._answer_start and d.start_openers)
            or self._guarded  # (where a marker counts depends on where special tokens came)
            or unit[-1] == "`"  # the next opener would be inline code (`_in_inline_code`)
            or opener in d.reasoning  # (the text state would open reasoning there)
        )

    def _settle_streamed_repeats(self, buf: str) -> bool:
        """`settles_nothing` for a region that began where the last region of a cycle (`_repeat`)
        ended, with the same opener: while its text is the cycle's next region's text so far, no
        step can settle anything; once the opener comes again at its end, the steps would settle
        it as they settled the region it repeats, exactly on this delta: the text it holds decides
        it the same way (a region whose walk `_may_wait_past_opener` is not settled here), and its
        outcome depends on its text (and the region before it) alone. Each such region is then
        settled here, with the text state's next step (opening the next region) taken here too;
        anything else goes to the steps. Emits what it settles into `_events`."""
        repeat = self._repeat
        assert repeat is not None
        # The common delta, kept short: the text so far is the region's text (and part of the
        # opener after it), and the steps would wait for more.
        expected = repeat.expected
        if len(buf) < repeat.start + len(expected):
            matched = repeat.matched
            if expected.startswith(buf[repeat.start + matched :], matched):
                repeat.matched = len(buf) - repeat.start
                return True
            return self._stop_repeating(buf)  # another text
        opener, ends = repeat.opener, repeat.ends
        if repeat.may_wait is None:
            repeat.may_wait = any(
                _may_wait_past_opener(unit.text, ends) or not self._repeats_read_alike(unit.text, opener)
                for unit in repeat.units
            )
        if repeat.may_wait:
            return False  # the steps settle it (the cycle is kept: its outcomes hold for the next)
        longer = ends.longer[opener]
        d = self._d
        state = self._state
        assert isinstance(state, _Region)
        pattern = d.tagged_pattern if self._code_fence or self._answer_channel else d.full_pattern
        while True:
            start, matched, expected = repeat.start, repeat.matched, repeat.expected
            end = start + len(expected)
            if not expected.startswith(buf[start + matched : end], matched):
                break  # another text
            if len(buf) < end:
                repeat.matched = len(buf) - start
                return True
            at = end - len(opener)
            found = ends.outer.match(buf, at)
            if found is None or found.group() != opener:
                break  # a longer marker there
            if longer and any(_could_become(buf, at, m) for m in longer):
                repeat.matched = len(expected)
                return True  # a longer marker may still be forming there: the region waits
            # The region settles as the one it repeats did (frozen, equal values: the same objects).
            unit = repeat.units[repeat.index]
            if unit.calls:
                self._replay(unit)
            else:
                self._events += unit.events
                self.errors += unit.errors
                self._content += unit.content
            # The text state's step at `at`, as `_step_text` takes it: it opens the same region
            # there, unless a longer marker may still be forming (or is there).
            self._pos = self._scan = at
            if at > _TRIM_ABOVE:
                self._state = _Text()
                self._trim()
                buf, at = self._buf, self._pos
                self._state = state
            repeat.advance(at)
            found = pattern.match(buf, at)
            if (
                found is None
                or found.group() != opener
                or (len(buf) - at < d.max_marker and buf[at:] in d.proper_prefixes)
            ):
                self._goto(_Text(), at)
                return False  # it waits or reads something else: the steps go on from there
            state.restart(at)
        return self._stop_repeating(buf)

    def _stop_repeating(self, buf: str) -> bool:
        """The region is not a repeat after all: it is read as any region (`_Region.no_end_yet`)."""
        self._repeat = None
        state = self._state
        assert isinstance(state, _Region)
        self._settles_nothing = state.no_end_yet
        return state.no_end_yet(buf)

    def _region_json(self, state: _Region, rule: JsonValue, final: bool) -> bool:
        buf = self._buf
        while True:
            if state.unreadable:
                return self._region_unreadable(state, final)
            if state.scanner is None:
                start = self._json_value_start(state, rule)
                if start is None:
                    return self._region_unfinished(state, final)
                opening = "{[(" if rule.after_name else "{["
                if buf[start] not in opening:  # the body holds no value where one must be
                    state.unreadable = True
                    continue
                state.scanner = ValueScanner(start)
            end = state.scanner.scan(buf)
            if state.scanner.broken:
                state.unreadable = True
                continue
            if end is None:
                return self._region_unfinished(state, final)
            state.value_end = end
            if rule.separator is None:
                return self._resolve_region(state, buf[state.body_start : end], end, closed=True)
            nxt = self._after_separator(end, rule.separator)
            if nxt is None and not final:
                return False
            if nxt is None or nxt >= len(buf) or buf[nxt] not in "{[":
                return self._resolve_region(state, buf[state.body_start : end], end, closed=True)
            state.scanner = ValueScanner(nxt)

    def _json_value_start(self, state: _Region, rule: JsonValue) -> int | None:
        """Index of the first character of the region's JSON value (which the caller checks is
        `{` or `[`), or None while the buffer ends before that is known."""
        buf = self._buf
        state.wake, state.again = None, -1
        j = self._skip_spaces(state.body_start)
        while buf.startswith(state.opener, j):
            # The opener written twice (`[TOOL_CALLS] [TOOL_CALLS] [...]`): one region. (A loop:
            # a hostile output repeats it without end, and a recursion per repeat overflowed.)
            state.body_start = j + len(state.opener)
            j = self._skip_spaces(state.body_start)
        if j == state.body_start == len(buf) or _could_become(buf, j, state.opener):
            state.again = j  # the opener again, or the start of it, may follow
            return None
        if j >= len(buf):
            return self._wait_for(state, _NOT_SPACE, len(buf))
        if buf[j] in "{[":
            starts_marker = any(buf.startswith(a, j) or _could_become(buf, j, a) for a in rule.after)
            if not starts_marker:
                return j
        if rule.after_name and (buf[j].isalpha() or buf[j] == "_"):
            name_end = self._name_end(j)
            k = self._skip_spaces(name_end)
            if k >= len(buf):
                return self._wait_for(state, _NOT_NAME if name_end == k else _NOT_SPACE, len(buf))
            if buf[k] != "[":
                return k  # `{` or `(`: the value; anything else: no value (the caller settles it)
            if k + 1 >= len(buf):
                return None
            if not buf[k + 1].isupper():
                return k
            # `[ARGS]`, `[CALL_ID]`: a control marker; the value follows `after`
        if not rule.after:
            return j
        found = [(k, a) for a in rule.after if (k := buf.find(a, state.scan)) >= 0]
        if not found:
            longest = max(len(a) for a in rule.after)
            state.scan = max(state.body_start, len(buf) - longest + 1)
            return self._wait_for(state, first_characters(rule.after), state.scan)
        k, marker = min(found)
        k = self._skip_spaces(k + len(marker))
        return k if k < len(buf) else None

    @staticmethod
    def _wait_for(state: _Region, wake: re.Pattern[str], at: int) -> None:
        """The region's value is not known yet, and only text matching `wake` from `at` on can
        change that: until such text comes, a delta needs no step (`_Region.settles_nothing`)."""
        state.wake, state.wake_at = wake, at

    def _after_separator(self, end: int, separator: str) -> int | None:
        """Index of the value after `separator` (spaces allowed), `len(buf)` when there is none,
        or None when the buffer ends before that is known."""
        buf = self._buf
        j = self._skip_spaces(end)
        if j >= len(buf):
            return None
        if not buf.startswith(separator, j):
            return None if _could_become(buf, j, separator) else len(buf)
        j = self._skip_spaces(j + len(separator))
        return None if j >= len(buf) else j

    def _region_unreadable(self, state: _Region, final: bool) -> bool:
        """A marker followed by no readable value (`<|python_tag|>x = 1`, `[TOOL_CALLS]get time`):
        nothing after the marker says where the call ends, and none of it is an answer, so the
        rest of the output is the unread call (the model is asked to write it again)."""
        if not final:
            return False
        body = self._buf[state.body_start :]
        if state.may_be_prose(body):
            return self._region_as_text(state, len(self._buf))
        return self._resolve_region(state, body, len(self._buf), closed=True)

    def _region_unfinished(self, state: _Region, final: bool) -> bool:
        if not final:
            return False
        if state.value_end is not None:
            return self._resolve_region(
                state, self._buf[state.body_start : state.value_end], state.value_end, closed=True
            )
        return self._resolve_region(state, self._buf[state.body_start :], len(self._buf), closed=False)

    def _resolve_region(
        self,
        state: _Region,
        body: str,
        end: int,
        *,
        closed: bool,
        interrupted: bool = False,
        closer: str = "",
    ) -> bool:
        """Settle a region: its calls, or its raw text as content plus a problem. `interrupted`:
        the same opener came again before the closer (not a truncation of the output). `closer`:
        the marker that ended the region, handed on to syntaxes with `closer_in_body`."""
        raw = self._buf[state.start : end]
        fmt_name = state.candidates[0][0].NAME
        cut_off = not closed and not interrupted and self._truncated
        if cut_off or (not closed and state.opener not in self._d.closer_optional):
            if self._complete_calls_of_section(state, body, end):
                return True
            if state.may_be_prose(body):  # an answer that merely begins like a bare call is just text
                return self._region_as_text(state, end)
            cut = TruncatedCall("the call was cut off before its end marker", raw, fmt_name)
            return self._region_as_text(state, end, cut)
        key = (state.opener, state.at_start, body, closer)
        problem = self._unread_bodies.get(key, "")
        for fmt, syntax in () if problem else state.candidates:
            try:
                calls = fmt.parse_region(
                    syntax, body + closer if syntax.closer_in_body else body, self._tools
                )
            except CallSyntaxError as exc:
                problem = problem or f"{fmt.NAME}: {exc}"
                continue
            except Exception as exc:  # a format bug must not take the caller down; report it
                problem = problem or f"{fmt.NAME}: internal error {type(exc).__name__}: {exc}"
                continue
            if calls:
                self._emit_region_items(calls, raw, fmt.NAME)
            elif not syntax.may_hold_no_call:
                # The format read the region as addressed to something that is not a function
                # (e.g. gpt-oss's built-in `python` tool): not a call, not text, but reported.
                message = "the region addresses a built-in tool, not a function"
                self.errors.append(UnknownTool(message, raw, fmt.NAME))
            if state.fenced:
                return self._goto(_FenceTail(), end)
            if syntax.trailer:
                return self._goto(_Trailer(syntax.trailer), end)
            if syntax.echoed and body.strip():  # the body written again is dropped like a trailer
                return self._goto(_Trailer(body.strip()), end)
            return self._goto(_Text(), end)
        if problem and len(body) <= _REMEMBER_BODY:
            if len(self._unread_bodies) >= _REMEMBER_BODIES:
                self._unread_bodies.clear()
            self._unread_bodies[key] = problem
        if not closed and self._complete_calls_of_section(state, body, end):
            return True
        if state.may_be_prose(body) or self._in_inline_code(state):
            # An answer that merely begins like a bare call, or a marker quoted as code in prose
            # (`<tool_call>`), is just text.
            return self._region_as_text(state, end)
        error_type = MalformedCall if closed else TruncatedCall
        return self._region_as_text(state, end, error_type(problem or "empty call region", raw, fmt_name))

    def _in_inline_code(self, state: _Region) -> bool:
        """Whether the region's opener is quoted as inline code (right after a backtick)."""
        return not state.fenced and state.start > 0 and self._buf[state.start - 1] == "`"

    def _complete_calls_of_section(self, state: _Region, body: str, end: int) -> bool:
        """A section whose closer never came may still hold complete calls (each ended by its
        own marker): emit those, and the unfinished rest as text with a `TruncatedCall`."""
        markers = state.ends.complete_at if state.ends is not None else ()
        if not markers:
            return False
        cut = max((body.rfind(m) + len(m) for m in markers if m in body), default=-1)
        if cut <= 0:
            return False
        for fmt, syntax in state.candidates:
            try:
                calls = fmt.parse_region(syntax, body[:cut], self._tools)
            except Exception:  # CallSyntaxError, or a format bug: fall back to the whole region
                continue
            if not any(isinstance(c, ToolCall) for c in calls):
                continue
            rest_start = state.body_start + cut
            self._emit_region_items(calls, self._buf[state.start : rest_start], fmt.NAME)
            rest = self._buf[rest_start:end]
            unfinished = None
            if rest.strip():
                unfinished = TruncatedCall("a call was cut off after the complete ones", rest, fmt.NAME)
            self._state = _Text()
            self._pos = self._scan = rest_start
            self._emit_text(end, unfinished)
            return True
        return False

    def _region_as_text(
        self, state: _Region, end: int, problem: MalformedCall | TruncatedCall | None = None
    ) -> bool:
        self._state = _Text()
        if state.fenced:
            self._code_fence = True
        self._emit_text(end, problem)
        return True

    # -- untagged calls ---------------------------------------------------------------------

    def _step_untagged(self, state: _Untagged, final: bool) -> bool:
        buf = self._buf
        end = state.scanner.scan(buf)
        if state.scanner.broken:
            if state.fenced:
                self._code_fence = True
            return self._untagged_as_text(state.scanner.end or len(buf))
        if end is None:
            if not final:
                return False
            cut = TruncatedCall("an untagged call was cut off", buf[state.start :], self._d.name, state.name)
            return self._untagged_as_text(len(buf), cut)
        if not state.fenced:
            after = _untagged.stands_alone_before(buf, end, final=final)
            if after is Decision.WAIT:
                return False
            if after is Decision.REJECT:  # followed by code: `[f(x)](link)`, `{...}.get`, `` ` ``
                return self._untagged_as_text(end)
        text = buf[state.value_start : end]
        try:
            if state.kind == "pythonic":
                calls = self._pythonic_calls(text)
            else:
                calls = calls_from_value(loads_lenient(text), self._tools, untagged=True)
        except (CallSyntaxError, ValueError):
            if state.fenced:
                self._code_fence = True
            return self._untagged_as_text(end)
        self._emit_calls(calls, buf[state.start : end], self._d.name, tagged=False)
        if state.fenced:
            return self._goto(_FenceTail(), end)
        if state.kind == "json":
            return self._goto(_Separator(), end)
        return self._goto(_Text(), end)

    def _pythonic_calls(self, text: str) -> list[ToolCall]:
        from ._pythonic import parse_pythonic_calls

        calls = [ToolCall(name, args) for name, args in parse_pythonic_calls(text)]
        for call in calls:
            if not self._tools.allows(call.name):
                raise CallSyntaxError(f"{call.name!r} is not a declared tool")
        return calls

    def _untagged_as_text(self, end: int, problem: TruncatedCall | None = None) -> bool:
        self._state = _Text()
        self._emit_text(end, problem)
        return True

    def _step_fence_tail(self, final: bool) -> bool:
        buf = self._buf
        j = self._skip_spaces(self._pos)
        if not final and j < len(buf) and _could_become(buf, j, FENCE):
            return False
        if buf.startswith(FENCE, j):
            end = _fence_run_end(buf, j)
            if end >= len(buf) and not final:
                return False
            return self._goto(_Text(), end)
        return self._fenced_content(self._pos, self._pos, final, on_other="text")

    def _step_trailer(self, state: _Trailer, final: bool) -> bool:
        buf = self._buf
        j = self._skip_spaces(self._pos)
        if buf.startswith(state.marker, j):
            return self._goto(_Text(), j + len(state.marker))
        if not final and (j >= len(buf) or _could_become(buf, j, state.marker)):
            return False
        return self._goto(_Text(), self._pos)

    def _step_separator(self, final: bool) -> bool:
        nxt = self._after_separator(self._pos, ";")
        if nxt is None and not final:
            return False
        if nxt is not None and nxt < len(self._buf) and self._buf[nxt] == "{":
            return self._goto(_Text(), nxt)
        return self._goto(_Text(), self._pos)
