"""Reuse of KV caches across requests: the longest common token prefix is never computed twice.

An agent run re-sends the whole conversation on every turn, and a new conversation usually starts
with the same system prompt and tool schemas as the last one. `PromptCache` keeps the KV caches of
recent requests (a small LRU, bounded in entries and in bytes) and hands out the one sharing the
longest token prefix with a new prompt, so only the tokens after that prefix are prefilled.

Not thread-safe on purpose: each loaded model has exactly one generation thread, and only that
thread touches its `PromptCache`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

__all__ = ["DEFAULT_PROMPT_CACHE_BYTES", "DEFAULT_PROMPT_CACHE_ENTRIES", "CacheLease", "PromptCache"]

DEFAULT_PROMPT_CACHE_ENTRIES = 4
"""Conversations whose KV caches are kept for reuse, by default."""

DEFAULT_PROMPT_CACHE_BYTES = 2 << 30
"""Memory those caches may take, by default."""

KVCache = list[Any]
"""One mlx-lm cache object per layer, as `make_prompt_cache` returns."""


@dataclass
class CacheLease:
    """A KV cache ready to continue `prompt`: its first `reused` tokens are already computed."""

    cache: KVCache
    reused: int


@dataclass
class _Entry:
    tokens: list[int]
    cache: KVCache
    nbytes: int


class PromptCache:
    """A small LRU of KV caches for one loaded model, keyed by the tokens they hold.

    `max_entries` bounds how many conversations stay warm; `max_bytes` bounds their memory
    (the least recently used entries are dropped first; a single cache larger than the bound is
    not kept at all).
    """

    def __init__(
        self,
        model: Any,
        *,
        max_entries: int = DEFAULT_PROMPT_CACHE_ENTRIES,
        max_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
    ) -> None:
        self._model = model
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: list[_Entry] = []  # least recently used first

    @property
    def nbytes(self) -> int:
        """Memory held by the stored caches."""
        return sum(e.nbytes for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lease(self, prompt: list[int]) -> CacheLease:
        """A cache holding the longest prefix of `prompt` that any stored cache shares with it.

        At least the last prompt token is always left to compute (generation needs its logits).
        An entry that is wholly a prefix of `prompt` is handed over (it will come back extended
        through `store`); one that diverges is copied and trimmed, so it stays available to the
        conversation it came from.
        """
        limit = len(prompt) - 1
        best: _Entry | None = None
        best_len = 0
        for entry in self._entries:
            common = _common_prefix_length(entry.tokens, prompt, limit)
            if common > best_len:
                best, best_len = entry, common
        if best is None:
            return CacheLease(make_prompt_cache(self._model), 0)
        if best_len == len(best.tokens):
            self._entries.remove(best)
            return CacheLease(best.cache, best_len)
        if not can_trim_prompt_cache(best.cache):
            return CacheLease(make_prompt_cache(self._model), 0)
        cache = copy.deepcopy(best.cache)
        trim_prompt_cache(cache, len(best.tokens) - best_len)
        self._touch(best)
        return CacheLease(cache, best_len)

    def store(self, tokens: list[int], cache: KVCache) -> None:
        """Keep `cache`, which holds exactly `tokens`, for later requests."""
        if not tokens:
            return
        trimmable = can_trim_prompt_cache(cache)
        # A trimmable cache serves every prefix of its tokens, so entries it extends are redundant.
        self._entries = [
            e
            for e in self._entries
            if not (e.tokens == tokens or (trimmable and _is_prefix(e.tokens, tokens)))
        ]
        nbytes = sum(getattr(c, "nbytes", 0) for c in cache)
        if nbytes > self.max_bytes:
            return
        self._entries.append(_Entry(tokens, cache, nbytes))
        while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
            self._entries.pop(0)

    def clear(self) -> None:
        """Forget every stored cache."""
        self._entries.clear()

    def _touch(self, entry: _Entry) -> None:
        self._entries.remove(entry)
        self._entries.append(entry)


def _common_prefix_length(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _is_prefix(prefix: list[int], tokens: list[int]) -> bool:
    return len(prefix) <= len(tokens) and tokens[: len(prefix)] == prefix
