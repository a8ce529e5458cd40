"""Continuous batching: concurrent generations on one loaded model share every forward pass.

On a CPU or a Mac, generating one token of one sequence leaves most of the machine idle: the
weights are read from memory once per step whatever the number of rows. `BatchScheduler` runs
every generation that arrives while others are in flight through one mlx-lm `BatchGenerator`:
a request joins the batch when it arrives (its prompt is prefilled in chunks between decode
steps) and leaves it when it finishes or is cancelled, without disturbing the others.

A request that is alone is decoded outside the batch, as `generate_step` does (see
`_lone_sequence`): the batch's machinery would cost it a good part of its speed where tokens are
fast. The next request to arrive moves it into the batch where it stands.

Each request keeps its own sampler, logits processors, `max_tokens`, end-of-sequence and stop
sequences, and streams its own text through a `GenerationStream`, exactly as `start_generation`
does for one request at a time. Greedy requests produce the same tokens batched as alone.

The scheduler's loop runs on the loaded model's own generation thread (as serial generations
do), so the prompt cache is still touched by that one thread only: each request leases the
cache sharing the longest prefix with its prompt, and the cache comes back extended when it
leaves the batch.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
from mlx_lm.generate import BatchGenerator, StopSequences, generation_stream
from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.sample_utils import make_logits_processors

from ._generation import (
    PREFILL_CHUNK,
    FinishReason,
    GenerationOptions,
    GenerationOutput,
    GenerationStream,
    SampledHook,
    StopSequenceFilter,
    _cache_length,  # pyright: ignore[reportPrivateUsage]
    _make_sampler,  # pyright: ignore[reportPrivateUsage]
    sampled_hooks,
    start_generation,
    with_sampled_hooks,
)
from ._loading import LoadedModel, warn_if_limits_ignored
from ._lone_sequence import LoneSequence
from ._prompt_cache import CacheLease

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "BatchScheduler", "LogitsProcessor", "batch_scheduler"]

LogitsProcessor = Callable[[mx.array, mx.array], mx.array]
"""`(completion_tokens, logits) -> logits`, as mlx-lm's logits processors."""

Sampler = Callable[[mx.array], mx.array]
"""`logprobs (rows, vocabulary) -> one token per row`, as mlx-lm's samplers."""

DEFAULT_MAX_BATCH_SIZE = 16
"""Generations decoded together at most; later ones wait for a free place."""

PREFILL_BATCH_SIZE = 8
"""Newcomers whose prompts are prefilled together (between decode steps of the running batch)."""


@dataclass(eq=False)
class _Request:
    """One generation, from its arrival to the end of its stream."""

    prompt: list[int]
    options: GenerationOptions
    output: GenerationOutput
    """Its stream's output side (never the stream: a stream dropped unread is collected and stops)."""
    uid: int = -1
    admitted: float = 0.0
    first_token: float = 0.0
    detokenizer: Any = None
    stops: StopSequenceFilter = field(default_factory=lambda: StopSequenceFilter(()))
    error: Exception | None = None
    """Raised by one of its logits processors: it leaves the batch with this error."""
    sampler: Sampler = field(default=lambda logprobs: mx.argmax(logprobs, axis=-1))
    """Made when it joins (shared by the requests with the same settings)."""
    processors: list[LogitsProcessor] = field(default_factory=lambda: list[LogitsProcessor]())
    sampled_hooks: list[SampledHook] = field(default_factory=lambda: list[SampledHook]())
    """Its processors' `sampled` hooks (told each token while it is alone; the batch does not)."""
    context_start: int = 0
    """Where the completion starts in the tokens its processors are shown: the batch shows them
    the whole prompt first, a lone sequence the completion alone."""
    lone: LoneSequence | None = None
    """Its decoding while it is alone (outside the batch)."""

    @property
    def stop_requested(self) -> bool:
        return self.output._stop.is_set()  # pyright: ignore[reportPrivateUsage]


class BatchScheduler:
    """Generates the concurrent requests of one loaded model together (continuous batching).

    Args:
        loaded: The model; the scheduler's loop runs on its generation thread.
        max_batch_size: Generations decoded together at most; more wait for a free place.
        max_batch_bytes: Admit no newcomer while the batch's KV caches could then grow past this
            many bytes (estimated from each request's prompt and `max_tokens`; a request alone
            is always admitted, so a long one cannot wait forever).
        prefill_step_size: Prompt tokens per model call while prefilling a newcomer; the running
            generations get a decode step between two such calls.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_bytes: int | None = None,
        prefill_step_size: int = PREFILL_CHUNK,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._loaded = weakref.ref(loaded)
        self.max_batch_size = max_batch_size
        self.max_batch_bytes = max_batch_bytes
        self.prefill_step_size = prefill_step_size
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._running = False  # whether a loop is queued or running on the generation thread
        self._batchable: bool | None = None
        self._kv_bytes_per_token: float | None = None
        self.largest_batch = 0
        """The most generations decoded in one step so far (for tests and benchmarks)."""

    def start(self, prompt: list[int], options: GenerationOptions) -> GenerationStream:
        """Queue a completion of `prompt`; it joins the running batch at the next step.

        Call on the event loop that will consume the stream (any thread's loop). The model must be
        loaded. `options.extra_processors` are made on the generation thread when the request
        joins, and see the completion's tokens only. A model whose KV caches cannot be batched is
        served one request at a time instead.
        """
        loaded = self._loaded_model()
        if not self._can_batch(loaded):
            return start_generation(loaded, prompt, options)
        stream = GenerationStream(asyncio.get_running_loop())
        request = _Request(prompt, options, stream.output)
        with self._lock:
            self._waiting.append(request)
            if self._running:
                return stream
            self._running = True
        loaded.submit(self._serve)
        return stream

    def _loaded_model(self) -> LoadedModel:
        loaded = self._loaded()
        if loaded is None:
            raise RuntimeError("the loaded model is gone")
        return loaded

    def _can_batch(self, loaded: LoadedModel) -> bool:
        if self._batchable is None:
            # Batching merges per-layer caches; some cache types (quantized, chunked) cannot.
            self._batchable = all(hasattr(c, "merge") for c in make_prompt_cache(loaded.model))
        return self._batchable

    # --- the loop, on the generation thread ---------------------------------------------------

    def _serve(self) -> None:
        try:
            loaded = self._loaded_model()
            run = _BatchRun(self, loaded)
        except BaseException as error:
            # No batch to run them in: the waiting requests end with the error, and the next
            # request starts a new loop (rather than queueing behind one that never runs).
            with self._lock:
                waiting, self._waiting = list(self._waiting), deque()
                self._running = False
            _end_streams([(request.output, error) for request in waiting])
            if not isinstance(error, Exception):
                raise
            return
        try:
            with loaded.busy:
                run.run()
        finally:
            ended = run.take_ended()
            # The batch's arrays are freed here, before any caller can return (and maybe exit).
            del run
            # The last streams end once the model is free: a caller whose request was the last
            # one finds the model idle as soon as its stream has ended (as with serial generation).
            _end_streams(ended)

    def _take_waiting(self, fits: Callable[[_Request], bool]) -> _Request | None:
        """The longest-waiting request, if it fits in the batch (first come, first served)."""
        with self._lock:
            if self._waiting and fits(self._waiting[0]):
                return self._waiting.popleft()
            return None

    def _take_cancelled(self) -> list[_Request]:
        """Waiting requests already cancelled: they end without ever joining."""
        with self._lock:
            # Each flag is read once: the event loop sets it without this lock, and a request
            # read as waiting, then as cancelled, would leave the queue without ever ending.
            stopped = [(request, request.stop_requested) for request in self._waiting]
            cancelled = [request for request, stop in stopped if stop]
            if cancelled:
                self._waiting = deque(request for request, stop in stopped if not stop)
        return cancelled

    def kv_bytes_per_token(self, model: Any) -> float:
        """KV memory one token takes in this model's caches (measured once, on the generation thread)."""
        if self._kv_bytes_per_token is None:
            cache = make_prompt_cache(model)
            model(mx.array([[0]]), cache=cache)
            mx.eval([c.state for c in cache])
            # Caches allocate room for many tokens at a time: divide by the room, not by one token.
            self._kv_bytes_per_token = sum(
                c.nbytes / c.keys.shape[2] if getattr(c, "keys", None) is not None else c.nbytes
                for c in cache
            )
        return self._kv_bytes_per_token

    def _has_waiting(self) -> bool:
        with self._lock:
            return bool(self._waiting)

    def _stop_if_idle(self) -> bool:
        """End the loop unless a request arrived meanwhile (atomic with `start`)."""
        with self._lock:
            if self._waiting:
                return False
            self._running = False
            return True


class _BatchRun:
    """One stretch of batched generation: from a first request until no request is left.

    A request that is alone is decoded as a `LoneSequence` (a plain KV cache, as `generate_step`):
    the batch's own machinery costs a lone request a good part of its speed. When a second
    request is admitted, the lone one is handed to the `BatchGenerator` where it stands (mid-prefill
    or mid-decode, nothing computed twice) and both go on together.
    """

    def __init__(self, scheduler: BatchScheduler, loaded: LoadedModel) -> None:
        self._scheduler = scheduler
        self._loaded = loaded
        self._eos_ids = frozenset(loaded.tokenizer.eos_token_ids)
        self._eos = StopSequences([(t,) for t in self._eos_ids])
        self._markers = loaded.marker_tokens
        self._active: dict[int, _Request] = {}
        self._lone: _Request | None = None
        """The request decoded alone, outside the batch (then `_active` is empty)."""
        self._samplers: dict[tuple[Any, ...], Sampler] = {}
        # Streams with new text in this step, by event loop: each loop is woken once per step.
        self._to_wake: dict[asyncio.AbstractEventLoop, list[GenerationOutput]] = {}
        self._ended: list[tuple[GenerationOutput, BaseException | None]] = []
        self._generator: BatchGenerator | None = None
        """Made when a second request comes: a lone request never needs it."""

    def run(self) -> None:
        """Generate until no request is active or waiting (the last ones' streams are left in
        `take_ended`)."""
        scheduler = self._scheduler
        try:
            while True:
                # Other work queued for this thread (a `batching=False` model's generation on the
                # same weights) goes next: the batch takes no newcomer until it has drained, and
                # the waiting requests are served by a new stretch queued behind that work.
                yielding = self._loaded.has_queued_work
                if not yielding:
                    self._admit()
                self._drop_cancelled()
                if self._lone is not None:
                    self._lone_step(self._lone)
                elif self._active:
                    self._step()
                if not self._generating:
                    if yielding:
                        self._loaded.submit(scheduler._serve)  # pyright: ignore[reportPrivateUsage]
                        return
                    if scheduler._stop_if_idle():  # pyright: ignore[reportPrivateUsage]
                        return
                _end_streams(self.take_ended())
        except BaseException as error:
            # A failed step leaves the batch's caches in an unknown state: every request in it
            # ends with the error, and nothing is kept for reuse.
            running = [*self._active.values(), *([self._lone] if self._lone is not None else [])]
            self._ended.extend((request.output, error) for request in running)
            self._active.clear()
            self._lone = None
            if not self._scheduler._stop_if_idle():  # pyright: ignore[reportPrivateUsage]
                # Requests that arrived meanwhile get a fresh batch.
                self._loaded.submit(self._scheduler._serve)  # pyright: ignore[reportPrivateUsage]
            if not isinstance(error, Exception):
                raise
        finally:
            # Both the batch and a lone sequence compute a step ahead of what they hand out; wait
            # for that work, so no MLX computation is left running once the callers see their
            # streams end (an interpreter exiting meanwhile aborts in MLX's stream threads).
            mx.synchronize(generation_stream)
            if self._generator is not None:
                self._generator.close()

    @property
    def _generating(self) -> int:
        """Requests being generated (in the batch or alone)."""
        return len(self._active) + (self._lone is not None)

    def _batch(self) -> BatchGenerator:
        if self._generator is None:
            scheduler = self._scheduler
            self._generator = BatchGenerator(
                self._loaded.model,
                completion_batch_size=scheduler.max_batch_size,
                prefill_batch_size=min(PREFILL_BATCH_SIZE, scheduler.max_batch_size),
                prefill_step_size=scheduler.prefill_step_size,
                stream=generation_stream,
            )
        return self._generator

    def _admit(self) -> None:
        scheduler = self._scheduler
        if scheduler.max_batch_bytes is not None:
            # Measured (once) here, not in `_fits`: that runs under the lock `start` takes on the
            # event loops, and measuring is a forward pass.
            scheduler.kv_bytes_per_token(self._loaded.model)
        while self._generating < scheduler.max_batch_size:
            request = scheduler._take_waiting(self._fits)  # pyright: ignore[reportPrivateUsage]
            if request is None:
                return
            try:
                if not self._generating and not scheduler._has_waiting():  # pyright: ignore[reportPrivateUsage]
                    self._start_lone(request)
                else:
                    self._hand_lone_to_batch()
                    self._insert(request)
            except Exception as error:  # e.g. an empty prompt: this request fails, not the batch
                self._ended.append((request.output, error))

    def _fits(self, request: _Request) -> bool:
        """Whether the batch's KV memory stays under the limit with `request` in it (estimated
        for each request from its prompt and `max_tokens`, so a burst of arrivals cannot overshoot
        before their prompts are prefilled). A request alone always fits."""
        limit = self._scheduler.max_batch_bytes
        if limit is None or not self._generating:
            return True
        running = [*self._active.values(), *([self._lone] if self._lone is not None else [])]
        reserved = sum(self._kv_bytes(r) for r in running)
        return reserved + self._kv_bytes(request) <= limit

    def _kv_bytes(self, request: _Request) -> float:
        return (len(request.prompt) + request.options.max_tokens) * self._scheduler.kv_bytes_per_token(
            self._loaded.model
        )

    def _prepare(self, request: _Request) -> CacheLease:
        """Make the request's sampler and processors, and lease it the cache of its longest known prefix."""
        prompt, options, stats = request.prompt, request.options, request.output.stats
        # Made before the cache is leased: one that fails (a grammar that does not compile, say)
        # must not cost the conversation its cached prefix.
        request.sampler = self._sampler(options)
        request.processors, request.sampled_hooks = _logits_processors(request)
        lease = self._loaded.prompt_cache.lease(prompt, shared_prefix=options.shared_prefix)
        stats.prompt_tokens = len(prompt)
        stats.cached_tokens = lease.reused
        request.admitted = time.perf_counter()
        request.detokenizer = self._loaded.tokenizer.detokenizer
        request.stops = StopSequenceFilter(options.stop_sequences)
        return lease

    def _start_lone(self, request: _Request) -> None:
        lease = self._prepare(request)
        try:
            request.lone = LoneSequence(
                self._loaded.model,
                lease.cache,
                request.prompt[lease.reused :],
                # Only while alone: the sampler is shared in the batch, which does not tell hooks.
                with_sampled_hooks(request.sampler, request.sampled_hooks),
                request.processors,
                self._scheduler.prefill_step_size,
            )
        except Exception:
            self._keep_cache(request.prompt[: lease.reused], lease.cache)
            raise
        self._lone = request
        self._scheduler.largest_batch = max(self._scheduler.largest_batch, 1)

    def _insert(self, request: _Request) -> None:
        lease = self._prepare(request)
        request.context_start = len(request.prompt)
        try:
            (request.uid,) = self._batch().insert(
                [request.prompt[lease.reused :]],
                max_tokens=[request.options.max_tokens],
                caches=[lease.cache],
                all_tokens=[request.prompt[: lease.reused]],
                samplers=[request.sampler],
                logits_processors=[request.processors],
                stop_sequences=[self._eos],
            )
        except Exception:
            # Refused before any work on the cache: it still holds the prefix it was leased for.
            self._keep_cache(request.prompt[: lease.reused], lease.cache)
            raise
        self._active[request.uid] = request

    def _hand_lone_to_batch(self) -> None:
        """Move the lone request into the batch, where it stands: the batch feeds it what the
        lone sequence has not fed yet (the rest of its prompt, or the token it computed ahead)."""
        request = self._lone
        if request is None:
            return
        lone = request.lone
        assert lone is not None
        batch = self._batch()  # before anything moves: a batch that cannot be made fails the newcomer
        self._lone = None
        request.lone = None
        prompt, stats = request.prompt, request.output.stats
        if lone.prefilling:
            unfed, max_tokens = lone.unfed, request.options.max_tokens
            held = prompt[: len(prompt) - len(unfed)]
        else:
            # The token computed ahead is this request's next one: it is handed out here, and
            # the batch starts from it (as from a prompt's last token).
            token = lone.take_ahead()
            remaining = request.options.max_tokens - stats.output_tokens - 1
            reason = self._deliver(request, token, "stop" if token in self._eos_ids else None)
            if reason is None and remaining == 0:
                reason = "length"
            if reason is not None:
                self._end_lone(request, lone, reason)
                return
            unfed, max_tokens = [token], remaining
            held = prompt + stats.output_token_ids[:-1]
        request.context_start = len(prompt)
        try:
            (request.uid,) = batch.insert(
                [unfed],
                max_tokens=[max_tokens],
                caches=[lone.cache],
                all_tokens=[held],
                samplers=[request.sampler],
                logits_processors=[request.processors],
                stop_sequences=[self._eos],
            )
        except Exception as error:  # it is in neither place now: it ends, rather than never ending
            self._ended.append((request.output, error))
            return
        self._active[request.uid] = request

    def _lone_step(self, request: _Request) -> None:
        lone = request.lone
        assert lone is not None
        last = request.output.stats.output_tokens + 1 >= request.options.max_tokens
        token = lone.step(last=last)
        if token is None:
            return  # a prefill chunk
        finish = "stop" if token in self._eos_ids else "length" if last else None
        reason = self._deliver(request, token, finish)
        if request.error is not None:  # a processor raised: what it computed is dropped
            self._lone = request.lone = None
            self._ended.append((request.output, request.error))
        elif reason is not None:
            self._end_lone(request, lone, reason)
        _wake(self._to_wake)
        self._to_wake.clear()

    def _end_lone(self, request: _Request, lone: LoneSequence, reason: FinishReason) -> None:
        self._lone = request.lone = None
        computed = _cache_length(lone.cache)
        if computed:  # None: a cache that cannot say what it holds; 0: nothing to keep
            self._keep_cache((request.prompt + request.output.stats.output_token_ids)[:computed], lone.cache)
        request.output.stats.finish_reason = reason
        self._ended.append((request.output, None))

    def _sampler(self, options: GenerationOptions) -> Sampler:
        """The request's sampler, which also applies its logit bias.

        mlx-lm samples the whole batch in one call when every row has the same sampler (else each
        row's own on its row), but runs logits processors row by row: a few small operations per
        row and step, 17% of a step at 4 rows and 29% at 8 on the demo model when each row had a
        logit bias. So requests with the same settings share one sampler, and the logit bias (the
        one setting that does not depend on the tokens so far) is added by it, to every row at
        once. A seeded sampler follows its own key chain and is never shared.
        """
        greedy = options.temperature <= 0
        bias = tuple(sorted(options.logit_bias.items())) if options.logit_bias else ()
        key = (0.0, None, None, bias) if greedy else (options.temperature, options.top_p, options.top_k, bias)
        shared = greedy or options.seed is None
        if shared and key in self._samplers:
            return self._samplers[key]
        sampler = _with_bias(_make_sampler(options), bias, renormalise=not greedy)
        if shared:
            self._samplers[key] = sampler
        return sampler

    def _step(self) -> None:
        _, responses = self._batch().next()
        self._scheduler.largest_batch = max(self._scheduler.largest_batch, len(responses))
        ended: list[int] = []
        for response in responses:
            request = self._active[response.uid]
            reason = self._deliver(request, response.token, response.finish_reason)
            if reason is None:
                continue
            if response.finish_reason is None:
                ended.append(response.uid)  # a stop sequence: still in the batch
            else:
                self._keep_cache(response.all_tokens, response.prompt_cache)
            self._end(request, reason)
        self._remove(ended)
        self._fail_broken()
        _wake(self._to_wake)
        self._to_wake.clear()

    def _deliver(self, request: _Request, token: int, finish: str | None) -> FinishReason | None:
        """Count the token and stream its text; the reason the request ends here, if it does."""
        stats = request.output.stats
        now = time.perf_counter()
        if not stats.output_token_ids:
            request.first_token = now
            stats.prefill_seconds = now - request.admitted
        stats.output_token_ids.append(token)
        stats.output_tokens += 1
        stats.decode_seconds = now - request.first_token
        return self._emit(request, token, finish)

    def _fail_broken(self) -> None:
        """End the requests whose processors raised in this step (what they computed is dropped)."""
        broken = [uid for uid, request in self._active.items() if request.error is not None]
        if not broken:
            return
        self._batch().remove(broken)
        for uid in broken:
            request = self._active.pop(uid)
            self._ended.append((request.output, request.error))

    def _emit(self, request: _Request, token: int, finish: str | None) -> FinishReason | None:
        """Stream the token's text; the reason the request ends here, if it does."""
        detokenizer = request.detokenizer
        if finish != "stop":  # the end-of-sequence token ends the text without appearing in it
            detokenizer.add_token(token)
        if finish is not None:
            detokenizer.finalize()
        text, stopped = request.stops.feed(detokenizer.last_segment)
        if finish is not None and not stopped:
            text += request.stops.flush()
        stream = request.output
        marker = self._markers.get(token) if finish != "stop" else None
        if (text or marker is not None) and stream._add(text, marker):  # pyright: ignore[reportPrivateUsage]
            self._to_wake.setdefault(stream._loop, []).append(stream)  # pyright: ignore[reportPrivateUsage]
        if stopped:
            return "stop_sequence"
        if finish == "length":
            return "length"
        return "stop" if finish is not None else None

    def _drop_cancelled(self) -> None:
        for request in self._scheduler._take_cancelled():  # pyright: ignore[reportPrivateUsage]
            request.output.stats.finish_reason = "cancelled"
            self._ended.append((request.output, None))
        lone = self._lone
        if lone is not None and lone.stop_requested and lone.lone is not None:
            self._end_lone(lone, lone.lone, "cancelled")
        cancelled = [uid for uid, request in self._active.items() if request.stop_requested]
        if not cancelled:
            return
        self._remove(cancelled)
        for uid in cancelled:
            self._end(self._active[uid], "cancelled")

    def _remove(self, uids: list[int]) -> None:
        """Take requests out of the batch, keeping what they computed in the prompt cache."""
        if not uids:
            return
        caches = self._batch().remove(uids, return_prompt_caches=True)
        for cache, tokens in caches.values():
            self._keep_cache(tokens, cache)

    def _keep_cache(self, tokens: list[int] | None, cache: list[Any] | None) -> None:
        if not tokens or cache is None:
            return
        mx.eval([c.state for c in cache])
        self._loaded.prompt_cache.store(list(tokens), cache)

    def _end(self, request: _Request, reason: FinishReason) -> None:
        request.output.stats.finish_reason = reason
        self._active.pop(request.uid, None)
        self._ended.append((request.output, None))

    def take_ended(self) -> list[tuple[GenerationOutput, BaseException | None]]:
        """The streams of the requests that ended since the last call (to finish, in order)."""
        ended, self._ended = self._ended, []
        return ended


def _wake(streams_by_loop: dict[asyncio.AbstractEventLoop, list[GenerationOutput]]) -> None:
    # One thread-safe call per loop, not per stream: each wakes the loop's selector, and the
    # event loop's thread takes the GIL (and a core) from generation every time.
    for loop, streams in streams_by_loop.items():
        try:
            loop.call_soon_threadsafe(_wake_streams, streams)
        except RuntimeError:  # the event loop is gone: nobody will read the rest
            for stream in streams:
                stream.stop()


def _wake_streams(streams: list[GenerationOutput]) -> None:
    for stream in streams:
        stream._wake()  # pyright: ignore[reportPrivateUsage]


def _end_streams(ended: list[tuple[GenerationOutput, BaseException | None]]) -> None:
    for stream, error in ended:
        stream._finish(error)  # pyright: ignore[reportPrivateUsage]


def _with_bias(sampler: Sampler, bias: tuple[tuple[int, float], ...], *, renormalise: bool) -> Sampler:
    if not bias:
        return sampler
    tokens = mx.array([token for token, _ in bias])
    values = mx.array([value for _, value in bias])

    def sample(logprobs: mx.array) -> mx.array:
        biased = logprobs.at[:, tokens].add(values)
        if renormalise:  # top-p reads probabilities, and exp() of a positive bias could overflow
            biased = biased - mx.logsumexp(biased, axis=-1, keepdims=True)
        return sampler(biased)

    return sample


def _logits_processors(request: _Request) -> tuple[list[LogitsProcessor], list[SampledHook]]:
    """The request's penalties and extra processors (its logit bias is in its sampler), and their
    `sampled` hooks.

    They run inside the batch's shared step: one that raises would fail every request in the
    batch, so the error is kept on its own request (which leaves the batch after the step) and
    its logits go on unchanged meanwhile (the token they give is never handed out).
    """
    options = request.options
    processors: list[LogitsProcessor] = [
        *make_logits_processors(
            presence_penalty=options.presence_penalty,
            presence_context_size=options.max_tokens,
            frequency_penalty=options.frequency_penalty,
            frequency_context_size=options.max_tokens,
        ),
        # Made here, on the generation thread: MLX arrays belong to the thread that made them.
        *(make() for make in options.extra_processors),
    ]

    def guarded(processor: LogitsProcessor) -> LogitsProcessor:
        def process(tokens: mx.array, logits: mx.array) -> mx.array:
            if request.error is not None:
                return logits
            try:
                # The batch shows a processor the whole prompt before the completion; penalties
                # (and constrained decoding) are about the completion only, as in the OpenAI API.
                return processor(tokens[request.context_start :], logits)
            except Exception as error:
                request.error = error
                return logits

        return process

    def guarded_hook(hook: SampledHook) -> SampledHook:
        def tell(token: mx.array) -> None:
            if request.error is not None:
                return
            try:
                hook(token)
            except Exception as error:
                request.error = error

        return tell

    return [guarded(p) for p in processors], [guarded_hook(h) for h in sampled_hooks(processors)]


_schedulers: weakref.WeakKeyDictionary[LoadedModel, BatchScheduler] = weakref.WeakKeyDictionary()
_schedulers_lock = threading.Lock()


def batch_scheduler(
    loaded: LoadedModel,
    *,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_batch_bytes: int | None = None,
) -> BatchScheduler:
    """The one `BatchScheduler` of `loaded` (created on first use; other limits asked for later are
    ignored with a `UserWarning`).

    Every `MLXModel` on the same weights shares it, so their concurrent requests batch together.
    """
    with _schedulers_lock:
        scheduler = _schedulers.get(loaded)
        if scheduler is not None:
            warn_if_limits_ignored(
                "batch",
                "max_batch_size, max_batch_bytes",
                in_force=(scheduler.max_batch_size, scheduler.max_batch_bytes),
                asked=(max_batch_size, max_batch_bytes),
                default=(DEFAULT_MAX_BATCH_SIZE, None),
            )
        else:
            scheduler = BatchScheduler(loaded, max_batch_size=max_batch_size, max_batch_bytes=max_batch_bytes)
            _schedulers[loaded] = scheduler
        return scheduler
