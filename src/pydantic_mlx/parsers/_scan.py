"""Small scanning helpers shared by format modules."""

from __future__ import annotations

__all__ = ["ForwardFinder"]


class ForwardFinder:
    """Finds the next `marker` at or after a position that only moves forward, rescanning
    only when the position has passed the last hit (linear overall)."""

    def __init__(self, text: str, marker: str) -> None:
        self.text, self.marker, self.hit = text, marker, -2

    def next(self, pos: int) -> int:
        """Index of the first `marker` at or after `pos`, or -1."""
        if self.hit == -2 or (self.hit != -1 and self.hit < pos):
            self.hit = self.text.find(self.marker, pos)
        return self.hit
