"""Reuse of KV caches across requests: the longest common token prefix is never computed twice.

An agent run re-sends the whole conversation on every turn, and a new conversation usually starts
with the same system prompt and tool schemas as the last one. `PromptCache` keeps the KV caches of
recent requests (a small LRU, bounded in entries and in bytes) and hands out the one sharing the
longest token prefix with a new prompt, so only the tokens after that prefix are prefilled.

With a `DiskPromptCache` (`MLXModel(prompt_cache_dir=...)`), a request may name how much of its
prompt every conversation shares (`shared_prefix`: the system prompt and tools); that prefix's KV is
then also read from disk when memory has nothing as long, and written there when the disk lacks it.

Not thread-safe on purpose: each loaded model has exactly one generation thread, and only that
thread touches its `PromptCache`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from ._disk_cache import DiskPromptCache

__all__ = ["DEFAULT_PROMPT_CACHE_BYTES", "DEFAULT_PROMPT_CACHE_ENTRIES", "CacheLease", "PromptCache"]

DEFAULT_PROMPT_CACHE_ENTRIES = 4
"""Conversations whose KV caches are kept for reuse, by default."""

DEFAULT_PROMPT_CACHE_BYTES = 2 << 30
"""Memory those caches may take, by default."""

WANTED_ON_DISK = 4
"""Shared prefixes remembered as missing from disk until a stored cache holds them (most recent kept)."""

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

    `disk` adds the folder of shared prefixes; `schedule` runs its writes later (the generation
    thread's queue: after the response that computed the prefix has ended), or at once if None.
    """

    def __init__(
        self,
        model: Any,
        *,
        max_entries: int = DEFAULT_PROMPT_CACHE_ENTRIES,
        max_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
        disk: DiskPromptCache | None = None,
        schedule: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self._model = model
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.disk = disk
        self._schedule = schedule
        self._entries: list[_Entry] = []  # least recently used first
        self._wanted_on_disk: list[list[int]] = []
        self._writing: set[tuple[int, ...]] = set()
        """Prefixes whose write is queued: concurrent conversations of one agent write it once."""

    @property
    def nbytes(self) -> int:
        """Memory held by the stored caches."""
        return sum(e.nbytes for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lease(self, prompt: list[int], *, shared_prefix: int = 0) -> CacheLease:
        """A cache holding the longest prefix of `prompt` that any stored cache shares with it.

        At least the last prompt token is always left to compute (generation needs its logits).
        An entry that is wholly a prefix of `prompt` is handed over (it will come back extended
        through `store`); one that diverges is copied and trimmed, so it stays available to the
        conversation it came from. With a disk cache, a longer prefix found on disk wins, and the
        first `shared_prefix` tokens are written to disk once a stored cache holds them, unless
        a file already has them.
        """
        limit = len(prompt) - 1
        best: _Entry | None = None
        best_len = 0
        for entry in self._entries:
            common = _common_prefix_length(entry.tokens, prompt, limit)
            if common > best_len:
                best, best_len = entry, common
        if self.disk is not None:
            from_disk = self.disk.load(prompt, longer_than=best_len)
            self._want_on_disk(prompt[:shared_prefix] if 0 < shared_prefix <= limit else None)
            if from_disk is not None:
                return CacheLease(*from_disk)
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
        if self._wanted_on_disk:
            self._save_wanted(tokens, cache)
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
        """Forget every stored cache (in memory: the disk's files stay)."""
        self._entries.clear()

    def _want_on_disk(self, prefix: list[int] | None) -> None:
        disk = self.disk
        if disk is None or not prefix or prefix in self._wanted_on_disk or tuple(prefix) in self._writing:
            return
        if disk.has(prefix):
            return
        self._wanted_on_disk = [*self._wanted_on_disk, prefix][-WANTED_ON_DISK:]

    def _save_wanted(self, tokens: list[int], cache: KVCache) -> None:
        """Snapshot the wanted prefixes `cache` holds now (the cache changes once leased again);
        write them later, off the path of the response that computed them."""
        disk = self.disk
        assert disk is not None
        for prefix in [p for p in self._wanted_on_disk if _is_prefix(p, tokens)]:
            self._wanted_on_disk.remove(prefix)
            snapshot = disk.snapshot(tokens, cache, len(prefix))
            if snapshot is None:
                continue

            key = tuple(prefix)
            self._writing.add(key)

            def write(
                prefix: list[int] = prefix, snapshot: KVCache = snapshot, key: tuple[int, ...] = key
            ) -> None:
                try:
                    disk.write(prefix, snapshot)
                finally:
                    self._writing.discard(key)

            if self._schedule is None:
                write()
            else:
                self._schedule(write)

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
