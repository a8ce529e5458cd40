"""Reading spaced tag markers (`formats/_syntax.SpacedTags`) as their plain spelling, while streaming.

Kimi-K3's markers are built of special tokens around a word (`<|open|>tools<|sep|>`,
`<|open|>call tool="f"<|sep|>`); a degraded output may put spaces around the word. Rather than
teach the engine patterns, the text is respelled before it reaches the engine's buffer:
`<|open|>   tools <|sep|>` becomes `<|open|>tools<|sep|>`. Only a suffix that may still grow into
such a marker is held back, and a marker's spaces and word are bounded, so what the engine sees
does not depend on how the text was cut (the same text comes out as from one `re.sub` over the
whole output).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .formats import Format
from .formats._syntax import SpacedTags

__all__ = ["Respeller", "spaced_tags"]

_MAX_SPACES = 64
_MAX_WORD = 32
_SPACES = f"[ \\t\\r\\n]{{0,{_MAX_SPACES}}}"
_WORD = f"\\w{{1,{_MAX_WORD}}}"
_ATTRIBUTE = f"[\\w-]{{1,{_MAX_WORD}}}"


def spaced_tags(formats: Sequence[Format]) -> tuple[SpacedTags, ...]:
    """The spaced tag markers the formats declare (most declare none)."""
    return tuple(tags for fmt in formats for tags in getattr(fmt, "SPACED_TAGS", ()))


def _proper_prefixes(marker: str) -> str:
    """A pattern matching every proper prefix of `marker`, the empty one included."""
    return "".join(f"(?:{re.escape(c)}" for c in marker[:-1]) + ")?" * (len(marker) - 1)


class Respeller:
    """Streams text through, spaced tag markers respelled plain. `held` is the suffix kept back
    (it may still grow into a marker); `begins` is the character every marker begins with, so a
    delta without it (and nothing held) passes unchanged without a call; `lead` is what every
    marker begins with (`<|`): a delta that holds it nowhere and does not end with a part of it
    passes unchanged too (`passes`)."""

    def __init__(self, tags: Sequence[SpacedTags]) -> None:
        alternatives: list[str] = []
        partial: list[str] = []
        for tag in tags:
            opener = "|".join(re.escape(o) for o in tag.openers)
            closer = re.escape(tag.closer)
            # Where the closer follows, the spaces on both sides of the word go; where attributes
            # follow (`<|open|> call tool="f"<|sep|>`), only those before the word.
            attribute = f"[ \\t\\r\\n]{{1,{_MAX_SPACES}}}{_ATTRIBUTE}="
            alternatives.append(f'({opener}){_SPACES}({_WORD})(?:{_SPACES}({closer})|(?={attribute}"))')
            # What may still grow into a marker: an opener, a word, part of the closer or of an
            # attribute's name.
            rest = f"{_proper_prefixes(tag.closer)}|{_ATTRIBUTE}=?"
            partial.append(f"(?:{opener}){_SPACES}(?:{_WORD}(?:{_SPACES}(?:{rest}))?)?")
            partial.extend(_proper_prefixes(o) for o in tag.openers)
        self._marker = re.compile("|".join(alternatives))  # (opener)(word)(closer?), per tag
        first = {o[0] for tag in tags for o in tag.openers}
        if len(first) != 1:  # one character to look for keeps the common delta cheap
            raise ValueError("spaced tag openers must all begin with the same character")
        self.begins = first.pop()
        openers = [o for tag in tags for o in tag.openers]
        lead = openers[0]
        for opener in openers:
            while not opener.startswith(lead):
                lead = lead[:-1]
        self.lead = lead
        # A delta ending with one of these may be followed by the rest of `lead`.
        self._lead_starts = tuple(lead[:k] for k in range(1, len(lead)))
        # From the first `begins` on which the rest of the text may still grow into a marker.
        self._partial = re.compile(f"(?={re.escape(self.begins)})(?:{'|'.join(partial)})\\Z")
        # The longest text that may still grow into a marker: opener, spaces, word, spaces, and
        # the closer or an attribute's name.
        longest_opener = max(len(o) for tag in tags for o in tag.openers)
        longest_closer = max(len(tag.closer) for tag in tags)
        self._longest = longest_opener + 2 * _MAX_SPACES + _MAX_WORD + max(longest_closer, _MAX_WORD + 1)
        self.held = ""

    def passes(self, text: str) -> bool:
        """Whether `text` (with nothing held) holds no marker and no start of one: it would
        come out of `feed` as it is. (Cheaper than `feed` for text full of `<`, HTML or markup
        of other formats: no marker begins without `lead`.)"""
        return self.lead not in text and not text.endswith(self._lead_starts)

    def feed(self, text: str) -> str:
        """The text that is settled now, respelled; the rest is held."""
        if self.held:
            text, self.held = self.held + text, ""
        if self.lead not in text and not text.endswith(self._lead_starts):  # `passes`, inlined:
            return text  # (`<` and then not `|`: a delta cut after a `<` is decided here)
        if text in self._lead_starts:  # the start of a marker, alone: nothing to search
            self.held = text
            return ""
        cut = self._undecided(text)
        text, self.held = text[:cut], text[cut:]
        return self._marker.sub(self._plain, text)

    def flush(self) -> str:
        """At the end of the output: what was held, as it is (it never became a marker)."""
        held, self.held = self.held, ""
        return held

    def _undecided(self, text: str) -> int:
        """Where the suffix that may still grow into a spaced marker begins (`len(text)` if none)."""
        found = self._partial.search(text, max(0, len(text) - self._longest))
        return len(text) if found is None else found.start()

    @staticmethod
    def _plain(marker: re.Match[str]) -> str:
        return "".join(part for part in marker.groups() if part)
