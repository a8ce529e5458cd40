"""One sequence decoded on a plain KV cache, one token ahead, and handed to a batch when company comes.

mlx-lm's `BatchGenerator` decodes a lone sequence a good deal slower than `generate_step`: its
batched KV cache carries per-row offsets and an explicit attention mask, and each step does the
bookkeeping of a batch. `LoneSequence` runs a request that is alone exactly as `generate_step`
does (the next token's forward pass is queued with `mx.async_eval` before the current one is
read), and can stop between any two steps leaving a state that `BatchGenerator.insert` continues:
the KV cache, the tokens it holds, and the tokens still to feed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generation_stream

__all__ = ["LoneSequence", "feed_prompt_chunk", "next_logits"]

CLEAR_CACHE_EVERY = 256
"""Tokens between two `mx.clear_cache()` calls (as `generate_step`), so MLX's buffer pool stays small."""


def feed_prompt_chunk(model: Any, cache: list[Any], tokens: list[int]) -> None:
    """Compute the KV of prompt tokens whose logits are not needed (only the cache is evaluated)."""
    model(mx.array(tokens)[None], cache=cache)
    mx.eval([c.state for c in cache])


def next_logits(model: Any, cache: list[Any], fed: mx.array) -> mx.array:
    """The (lazy) logits of the token after `fed`, whose KV joins the cache."""
    return model(fed[None], cache=cache)[:, -1, :]


class LoneSequence:
    """The prefill and decoding of one sequence, a chunk or a token per `step`.

    Args:
        model: The mlx-lm model.
        cache: Its per-layer KV cache, already holding every token before `unfed`.
        unfed: The prompt tokens not in the cache yet (at least one).
        sampler: `logprobs (1, vocabulary) -> token (1,)`.
        processors: mlx-lm logits processors, shown the sampled tokens only (not the prompt).
        prefill_step_size: Prompt tokens per model call while prefilling.
    """

    def __init__(
        self,
        model: Any,
        cache: list[Any],
        unfed: list[int],
        sampler: Callable[[mx.array], mx.array],
        processors: Sequence[Callable[[mx.array, mx.array], mx.array]],
        prefill_step_size: int,
    ) -> None:
        if not unfed:
            raise ValueError("a sequence needs at least one token to feed")
        self._model = model
        self._cache = cache
        self._unfed = unfed
        self._sampler = sampler
        self._processors = list(processors)
        self._prefill_step_size = prefill_step_size
        self._sampled: mx.array | None = None  # the tokens fed since the prompt, for the processors
        self._ahead: mx.array | None = None
        """The next token, queued but not read yet (its forward pass is not in the cache yet)."""
        self._steps = 0

    @property
    def cache(self) -> list[Any]:
        return self._cache

    @property
    def prefilling(self) -> bool:
        """Whether prompt tokens are still to be fed (`unfed` holds them)."""
        return bool(self._unfed)

    @property
    def unfed(self) -> list[int]:
        return self._unfed

    def step(self, *, last: bool = False) -> int | None:
        """Feed one prefill chunk (returns None), or return the next token.

        `last`: the token returned is the sequence's last, so nothing is computed ahead of it.
        """
        with mx.stream(generation_stream):
            if len(self._unfed) > 1:
                n = min(self._prefill_step_size, len(self._unfed) - 1)
                self._feed_prompt_chunk(self._unfed[:n])
                self._unfed = self._unfed[n:]
                mx.clear_cache()
                return None
            if self._unfed:
                self._ahead = self._next(mx.array(self._unfed), sampled=False)
                self._unfed = []
                mx.async_eval(self._ahead)
            current = self._ahead
            assert current is not None, "the sequence was handed over"
            if last:
                self._ahead = None
            else:
                self._ahead = self._next(current, sampled=True)
                mx.async_eval(self._ahead)
            self._steps += 1
            if self._steps % CLEAR_CACHE_EVERY == 0:
                mx.clear_cache()
            return current.item()  # pyright: ignore[reportReturnType]

    def take_ahead(self) -> int:
        """The token computed ahead (the cache holds every token before it); decoding stops here."""
        ahead, self._ahead = self._ahead, None
        assert ahead is not None, "no token was computed ahead"
        return ahead.item()  # pyright: ignore[reportReturnType]

    def _feed_prompt_chunk(self, tokens: list[int]) -> None:
        """Compute the KV of prompt tokens (a subclass may tell other processes first)."""
        feed_prompt_chunk(self._model, self._cache, tokens)

    def _forward(self, fed: mx.array) -> mx.array:
        """The lazy logits after `fed` (a subclass may tell other processes what it feeds first)."""
        return next_logits(self._model, self._cache, fed)

    def _next(self, fed: mx.array, *, sampled: bool) -> mx.array:
        """Queue the forward pass of `fed` and the sampling of the token after it (lazily)."""
        logits = self._forward(fed)
        if self._processors:
            if sampled:
                self._sampled = fed if self._sampled is None else mx.concatenate([self._sampled, fed])
            context = self._sampled if self._sampled is not None else mx.array([], dtype=mx.uint32)
            for processor in self._processors:
                logits = processor(context, logits)
        return self._sampler(logits - mx.logsumexp(logits, axis=-1, keepdims=True))
