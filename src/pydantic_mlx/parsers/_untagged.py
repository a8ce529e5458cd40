"""Look-ahead for calls written without markers: ```json fences, bare JSON and bare `[f(a=1)]`.

Each check looks at a bounded window after a trigger character and answers ACCEPT (this may
be a call: hold it until it completes), REJECT (plain text: emit it now) or WAIT (need more
text). Only objects whose first key is a call key, naming a tool that may be called, are held,
so prose with braces streams out at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

from ._calls import UNTAGGED_FIRST_KEYS
from ._tools import ToolSet

__all__ = [
    "Decision",
    "fence_opener_end",
    "json_call_start",
    "may_open_pattern",
    "open_at_end",
    "pythonic_call_start",
    "stands_alone_after",
    "stands_alone_before",
]

_NAME_VALUE_KEYS = frozenset({"name", "function", "tool", "tool_name"})
_MAX_KEY = 16
_MAX_WS = 256
_MAX_UNKNOWN_NAME = 128
_MAX_FENCE_INFO = 40
_MAX_FENCE_RUN = 16


class Decision(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    WAIT = "wait"


# What may come right before an untagged call on its line (besides spaces): nothing (line or
# output start), sentence punctuation, a marker's `>` or Llama's `;` separator. Anything else
# (an identifier, `=`, `(`, `,`, a backtick) means the brackets are part of code or a sentence.
_ALONE_AFTER = frozenset(".:!?>;")
# What may come right after one: end, space, a separator, a marker (or sentence punctuation).
_ALONE_BEFORE = frozenset(" \t\r\n;<")


def stands_alone_after(buf: str, i: int) -> bool:
    """Whether the bracket at `buf[i]` starts a standalone value rather than part of code."""
    j = i - 1
    limit = max(-1, i - _MAX_WS)
    while j > limit and buf[j] in " \t":
        j -= 1
    return j < 0 or buf[j] in "\r\n" or buf[j] in _ALONE_AFTER


_BRACKET_RUN = re.compile(r"[{\[]*")
_BACKTICKS = re.compile("`*")


def bracket_run_end(buf: str, i: int) -> int:
    """The end of the run of `{` and `[` that starts at `buf[i]` (`i` itself if there is none)."""
    found = _BRACKET_RUN.match(buf, i)
    return found.end() if found is not None else i


def may_open_pattern(*, json: bool, pythonic: bool) -> str:
    """A regex matching each `{` or `[` that may open an untagged call: one that may stand alone
    (`stands_alone_after`: right after a line's start, spaces or sentence punctuation) and that
    `json_call_start` or `pythonic_call_start` may not reject by what follows it (a call's first
    key or a name after spaces, or the text's end: undecided). Any other bracket is text, so the text
    state need not stop there (`"{\\n" * n` or `"<eos>{" * n` cost a step per bracket). A superset
    of what the checks accept (`[^\\W\\d]` holds every letter `str.isalpha` knows); they decide."""
    # Not right after a character that makes the bracket code (checked after the bracket, so
    # that every alternative begins with a literal character: `re` then skips to candidates).
    after = re.escape("".join(sorted(_ALONE_AFTER)))
    ws = f"[ \\t\\r\\n]{{0,{_MAX_WS}}}"

    def alone(bracket: str) -> str:
        return f"{bracket}(?<![^ \\t\\r\\n{after}]{bracket})"

    def quoted(keys: Iterable[str]) -> str:
        words = "|".join(re.escape(k) for k in sorted(keys))
        return f"(?:\"(?:{words})\"|'(?:{words})')"

    # What `json_call_start` reads after `{`: an envelope key (accepted), a name key then `:` and
    # a quoted name (or `{` after `function`), or any of that cut off by the text's end.
    key = (
        f"{ws}(?:{quoted(UNTAGGED_FIRST_KEYS - _NAME_VALUE_KEYS)}"
        f"|{quoted(_NAME_VALUE_KEYS - {'function'})}{ws}(?:\\Z|:{ws}(?:\\Z|[\"']))"
        f"|{quoted({'function'})}{ws}(?:\\Z|:{ws}(?:\\Z|[\"'{{]))"
        f"|\"[^\"]{{0,{_MAX_KEY}}}\\Z|'[^']{{0,{_MAX_KEY}}}\\Z|\\Z)"
    )
    alternatives: list[str] = []
    if json:
        alternatives.append(f"{alone(re.escape('{'))}(?={key})")
    # What `pythonic_call_start` reads after `[`: a name (a letter first), then `(` after spaces,
    # or the text's end (`[ARGS]` on every line cost a step per line). Possessive: no backtracking.
    name = f"[^\\W\\d][\\w.-]*+(?:\\Z|{ws}(?:\\Z|\\())"
    after_list = ([f"\\{{{key}"] if json else []) + ([name] if pythonic else [])
    if after_list:
        alternatives.append(f"{alone(re.escape('['))}(?={ws}(?:\\Z|{'|'.join(after_list)}))")
    return "|".join(alternatives)


_WS_RUN = f"[ \\t\\r\\n]{{0,{_MAX_WS}}}"
_WS = re.compile(_WS_RUN)
_NAME_CHARS = re.compile(r"[\w.-]*")
_OPEN_AT_END = {  # by whether JSON calls are read
    True: re.compile(f"(?:\\{{|\\[(?:{_WS_RUN}\\{{)?){_WS_RUN}\\Z"),
    False: re.compile(f"\\[{_WS_RUN}\\Z"),
}


_NAME_WAITS: dict[int, re.Pattern[str]] = {}  # `name_waits`, by the longest name


def name_waits(tools: ToolSet) -> re.Pattern[str]:
    """Texts from a `[` on which `pythonic_call_start` waits with a name begun: `[`, spaces, a
    name no longer than a tool's may be, spaces, the text's end (matched from the `[`: one
    match instead of the readers, on every delta of a name cut by the deltas). Only part of
    what it waits on (a name's first letter in ASCII), so a match is always a wait."""
    limit = _name_limit(tools)
    pattern = _NAME_WAITS.get(limit)
    if pattern is None:
        name = f"[A-Za-z_][\\w.-]{{0,{limit - 1}}}" if limit > 0 else "(?!)"
        pattern = _NAME_WAITS[limit] = re.compile(f"\\[{_WS_RUN}{name}{_WS_RUN}\\Z")
    return pattern


_HEAD_WAITS: dict[int, re.Pattern[str]] = {}  # `head_waits`, by the longest name


def head_waits(tools: ToolSet) -> re.Pattern[str]:
    """Texts from a `{` on which `json_call_start` waits: `{`, spaces, and a key not closed yet,
    or a name key (`"name"`), spaces, `:`, spaces and a name no longer than a tool's may be, not
    closed yet, each to the text's end (matched from the `{`: one match instead of the reader,
    on every delta of a call head cut by the deltas). Only part of what it waits on (keys and
    names in double quotes), so a match is always a wait."""
    limit = _name_limit(tools)
    pattern = _HEAD_WAITS.get(limit)
    if pattern is None:
        keys = "|".join(re.escape(k) for k in sorted(_NAME_VALUE_KEYS & UNTAGGED_FIRST_KEYS))
        name = f'"[^"]{{0,{limit}}}'
        key = f'"(?:[^"]{{0,{_MAX_KEY}}}|(?:{keys})"{_WS_RUN}(?::{_WS_RUN}(?:{name})?)?)'
        pattern = _HEAD_WAITS[limit] = re.compile(f"\\{{{_WS_RUN}{key}\\Z")
    return pattern


def open_at_end(buf: str, i: int, *, json: bool) -> bool:
    """Whether the bracket at `i` is followed by nothing but what `json_call_start` (when `json`)
    and `pythonic_call_start` skip before they can decide (spaces, and the `{` after a `[`):
    when it stands alone, they wait. One search instead of running them, on every delta of a
    text that keeps ending in a bracket."""
    return _OPEN_AT_END[json].match(buf, i) is not None


def stands_alone_before(buf: str, end: int, *, final: bool) -> Decision:
    """Whether the value that ends at `end` is followed by nothing that makes it code."""
    if end >= len(buf):
        return Decision.ACCEPT if final else Decision.WAIT
    if buf[end] in ".!?":  # ends a sentence only when space or the end follows: not `{...}.get`
        return (
            stands_alone_before(buf, end + 1, final=final)
            if end + 1 >= len(buf) or buf[end + 1] in " \t\r\n"
            else Decision.REJECT
        )
    return Decision.ACCEPT if buf[end] in _ALONE_BEFORE else Decision.REJECT


def list_of_objects(buf: str, i: int) -> bool:
    """Whether the `[` at `i` is followed (after spaces) by `{` or the text's end: only then may
    `json_call_start` read a call list there."""
    j = _skip_ws(buf, i + 1)
    return j >= len(buf) or buf[j] == "{"


def _skip_ws(buf: str, j: int) -> int:
    """The index after at most `_MAX_WS` spaces from `j` on."""
    found = _WS.match(buf, j)
    return found.end() if found is not None else j


def _name_limit(tools: ToolSet) -> int:
    return tools.longest_name if tools.known else _MAX_UNKNOWN_NAME


def json_call_start(buf: str, i: int, tools: ToolSet, *, final: bool) -> tuple[Decision, str | None]:
    """Whether the `{` or `[` at `buf[i]` may open an untagged JSON call; also the name, if read."""
    undecided = (Decision.REJECT if final else Decision.WAIT), None
    j = _skip_ws(buf, i + 1) if buf[i] == "[" else i
    if buf[i] == "[":
        if j >= len(buf):
            return undecided
        if buf[j] != "{":
            return Decision.REJECT, None
    j = _skip_ws(buf, j + 1)
    if j >= len(buf):
        return undecided
    quote = buf[j]
    if quote not in "\"'":
        return Decision.REJECT, None
    close = buf.find(quote, j + 1, j + 2 + _MAX_KEY)
    if close < 0:
        return undecided if len(buf) - j <= _MAX_KEY + 1 else (Decision.REJECT, None)
    key = buf[j + 1 : close]
    if key not in UNTAGGED_FIRST_KEYS:
        return Decision.REJECT, None
    if key not in _NAME_VALUE_KEYS:
        return Decision.ACCEPT, None  # an envelope key (`id`, `type`); the whole object is checked later
    j = _skip_ws(buf, close + 1)
    if j >= len(buf):
        return undecided
    if buf[j] != ":":
        return Decision.REJECT, None
    j = _skip_ws(buf, j + 1)
    if j >= len(buf):
        return undecided
    if key == "function" and buf[j] == "{":
        return Decision.ACCEPT, None  # OpenAI shape; the inner name is checked when complete
    quote = buf[j]
    if quote not in "\"'":
        return Decision.REJECT, None
    limit = _name_limit(tools)
    close = buf.find(quote, j + 1, j + 2 + limit)
    if close < 0:
        return undecided if len(buf) - j <= limit + 1 else (Decision.REJECT, None)
    name = buf[j + 1 : close]
    if not name or not tools.allows(name):
        return Decision.REJECT, None
    return Decision.ACCEPT, name


def pythonic_call_start(buf: str, i: int, tools: ToolSet, *, final: bool) -> tuple[Decision, str | None]:
    """Whether the `[` at `buf[i]` may open a bare pythonic call list like `[f(a=1), g()]`."""
    undecided = (Decision.REJECT if final else Decision.WAIT), None
    j = _skip_ws(buf, i + 1)
    if j >= len(buf):
        return undecided
    if not (buf[j].isalpha() or buf[j] == "_"):
        return Decision.REJECT, None
    limit = _name_limit(tools)
    # The name's characters (`\w` is `str.isalnum()` and `_`), one more than a name may have at most.
    found = _NAME_CHARS.match(buf, j, j + limit + 1)
    k = found.end() if found is not None else j
    if k - j > limit:
        return Decision.REJECT, None
    if k >= len(buf):
        return undecided
    name = buf[j:k]
    k = _skip_ws(buf, k)
    if k >= len(buf):
        return undecided
    if buf[k] != "(" or not tools.allows(name):
        return Decision.REJECT, None
    return Decision.ACCEPT, name


def fence_opener_end(buf: str, i: int, *, final: bool) -> tuple[Decision, int]:
    """For ``` at `buf[i]`: ACCEPT with the index after the fence's info line (language tag and
    newline), REJECT when it is not a fence opener (e.g. inline ```code```), or WAIT. On REJECT,
    the index is where the search for the next marker resumes."""
    # ```` fences: the info line starts after the run. A run longer than any real fence is
    # text, read in pieces of one more than the longest fence: each piece is rejected, and only
    # the last, shorter one may open a fence. All the rejected pieces are passed at once.
    run = _BACKTICKS.match(buf, i + 3)
    j = run.end() if run is not None else i + 3
    piece = _MAX_FENCE_RUN + 1
    if j - i >= piece:
        return Decision.REJECT, i + piece * ((j - i) // piece)
    if j >= len(buf) and not final:
        return Decision.WAIT, j
    newline = buf.find("\n", j, j + _MAX_FENCE_INFO + 1)
    if newline < 0:
        if len(buf) - j > _MAX_FENCE_INFO:
            return Decision.REJECT, j
        return (Decision.REJECT if final else Decision.WAIT), j
    info = buf[j:newline]
    if "`" in info:
        return Decision.REJECT, j
    return Decision.ACCEPT, newline + 1
