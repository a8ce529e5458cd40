"""Which pieces of generated text were marker tokens: the knowledge the parsers use to tell a
call's markers from the same characters written as prose.

A marker token is a token that the tokenizer holds whole for one marker string: an added or
special token (`<tool_call>`, `[TOOL_CALLS]`, `<|channel|>`). When the model samples one, its text
is handed to the parser as a `MarkerText`, on its own (`StreamParser.feed(text, special=True)`);
the same characters sampled as ordinary tokens are plain text.

The detokenizer does not always release a token's text at the step that sampled it (a streaming
detokenizer may wait for the next word; a stop-sequence filter holds back what may begin a stop
sequence), so `MarkerSplitter` remembers the markers sampled and finds each in the text as it
comes out, in order, holding back only a tail that may still become the next one.
"""

from __future__ import annotations

from collections import deque

__all__ = ["MarkerSplitter", "MarkerText", "overlap"]


class MarkerText(str):
    """The whole text of one sampled marker token."""

    __slots__ = ()


class MarkerSplitter:
    """Splits one generation's text at the marker tokens it sampled (`expect`), in order."""

    def __init__(self) -> None:
        self._expected: deque[str] = deque()
        self._held = ""

    @property
    def idle(self) -> bool:
        """No marker is awaited and nothing is held: text passes through unchanged."""
        return not self._expected and not self._held

    def expect(self, marker: str) -> None:
        """The model sampled the token of `marker`: its text is in what comes out next."""
        self._expected.append(marker)

    def split(self, text: str) -> list[str]:
        """`text` as pieces: each awaited marker as a `MarkerText`, the rest as plain `str`."""
        text, self._held = self._held + text, ""
        pieces: list[str] = []
        while self._expected and text:
            marker = self._expected[0]
            at = text.find(marker)
            if at < 0:
                # Not out yet: keep back a tail that may still grow into it.
                keep = overlap(text, marker)
                if keep:
                    text, self._held = text[:-keep], text[-keep:]
                break
            if at:
                pieces.append(text[:at])
            pieces.append(MarkerText(marker))
            self._expected.popleft()
            text = text[at + len(marker) :]
        if text:
            pieces.append(text)
        return pieces

    def flush(self) -> str:
        """What is held back, once no more text will come (a marker cut off by a stop sequence)."""
        held, self._held = self._held, ""
        self._expected.clear()
        return held


def overlap(text: str, start_of: str) -> int:
    """Length of the longest end of `text` that is a proper start of `start_of`."""
    for n in range(min(len(text), len(start_of) - 1), 0, -1):
        if start_of.startswith(text[-n:]):
            return n
    return 0
