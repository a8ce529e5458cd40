"""Token generation on a loaded model's own thread, streamed to the event loop.

`start_generation` queues one generation on the model's thread and returns a `GenerationStream`:
an async iterator of decoded text that the consumer may stop at any time (`aclose`), after which
the thread stops within one token and releases the model. Special tokens are decoded into the
text (the parsers need markers such as `<tool_call>`); only the end-of-sequence tokens and the
caller's stop sequences end the text without appearing in it.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import mlx.core as mx
from mlx_lm.generate import generate_step, generation_stream
from mlx_lm.sample_utils import apply_top_k, apply_top_p, make_logits_processors

from ._loading import LoadedModel
from ._token_markers import MarkerSplitter, MarkerText, overlap

__all__ = [
    "GenerationOptions",
    "GenerationOutput",
    "GenerationStats",
    "GenerationStream",
    "StopSequenceFilter",
    "start_generation",
    "stream_tokens",
]

FinishReason = Literal["stop", "stop_sequence", "length", "cancelled"]

PREFILL_CHUNK = 256
"""Prompt tokens computed per model call while prefilling; a cancel is noticed between chunks."""


@dataclass(frozen=True)
class GenerationOptions:
    """How to sample. `temperature=0` (the default) is greedy decoding."""

    max_tokens: int = 2048
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[int, float] | None = None
    extra_processors: Sequence[Callable[[], Callable[[mx.array, mx.array], mx.array]]] = ()
    """Factories of more mlx-lm logits processors (e.g. grammar constraints), run after the
    penalties. Called on the generation thread: MLX arrays belong to the thread that made them."""
    stop_sequences: Sequence[str] = ()
    shared_prefix: int = 0
    """Prompt tokens every conversation of the agent shares (system prompt and tools): with a
    disk prompt cache, their KV is written to disk for later processes (see `PromptCache.lease`)."""


@dataclass
class GenerationStats:
    """What one generation cost, filled in by the generation thread."""

    prompt_tokens: int = 0
    """Tokens in the prompt."""
    cached_tokens: int = 0
    """Prompt tokens whose KV came from the prompt cache (not computed again)."""
    output_tokens: int = 0
    """Tokens sampled (including the end-of-sequence token, if one came)."""
    finish_reason: FinishReason = "stop"
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    output_token_ids: list[int] = field(default_factory=lambda: list[int]())

    @property
    def prefilled_tokens(self) -> int:
        """Prompt tokens actually computed for this request."""
        return self.prompt_tokens - self.cached_tokens


class GenerationOutput:
    """The generation thread's side of a `GenerationStream`: where it hands over the text, and
    its stop flag and stats. It holds no reference to the stream, so a stream its consumer drops
    without `aclose` is collected, and its collection stops the generation (`GenerationStream`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stats = GenerationStats()
        self._loop = loop
        self._stop = threading.Event()
        # Text handed over by the generation thread. The loop is woken once per batch, not once
        # per token: both threads share the GIL, so every wake-up is time taken from generation.
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._markers_pending = 0  # `MarkerText` items in `_pending`
        self._markers: MarkerSplitter | None = None  # made at the first marker token
        self._wake_scheduled = False
        self._finished = False
        self._error: BaseException | None = None
        self._ready = asyncio.Event()
        self._done = asyncio.Event()

    def stop(self) -> None:
        """Ask the generation thread to stop after the token it is computing (non-blocking)."""
        self._stop.set()

    # Called from the generation thread.
    def _emit(self, text: str, marker: str | None = None) -> None:
        if self._add(text, marker):
            self._call_soon(self._wake)

    def _add(self, text: str, marker: str | None = None) -> bool:
        """Queue the text of a step, and the marker token it sampled, if it did (see
        `MarkerSplitter`); whether the loop must be woken for it (no wake-up is pending yet)."""
        splitter = self._markers
        if marker is None and (splitter is None or splitter.idle):
            if not text:
                return False
            with self._lock:
                self._pending.append(text)
                if self._wake_scheduled:
                    self._stop_if_reader_gone()
                    return False
                self._wake_scheduled = True
                return True
        if splitter is None:
            splitter = self._markers = MarkerSplitter()
        if marker is not None:
            splitter.expect(marker)
        pieces = splitter.split(text)
        if not pieces:
            return False
        with self._lock:
            self._pending += pieces
            self._markers_pending += sum(type(piece) is MarkerText for piece in pieces)
            if self._wake_scheduled:
                self._stop_if_reader_gone()
                return False
            self._wake_scheduled = True
            return True

    def _stop_if_reader_gone(self) -> None:
        """Stop generating when the consumer's event loop has closed, with a wake-up already queued.

        Waking a closed loop raises, and that stops the generation (`_call_soon`, `_wake`); but a
        wake-up queued while the loop was stopped and not yet closed (its reader returned after
        one chunk, then the loop was closed) never runs and never fails, and no other is tried
        while it is pending: without this check the generation went on to `max_tokens`, holding
        the model (and every request queued behind it) all that time.
        """
        if self._loop.is_closed():
            self._stop.set()

    def _finish(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._markers is not None and (held := self._markers.flush()):
                self._pending.append(held)
            self._finished = True
            self._error = error
        self._call_soon(self._wake, self._done.set)

    def _call_soon(self, *callbacks: Callable[[], object]) -> None:
        try:
            for callback in callbacks:
                self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the event loop is gone: nobody will read the rest
            self._stop.set()

    # Called on the event loop.
    def _wake(self) -> None:
        with self._lock:
            self._wake_scheduled = False
        self._ready.set()

    def _take(self) -> tuple[str, bool]:
        """The text to hand the consumer next (see `GenerationStream`), and whether the output
        had ended when it was taken."""
        with self._lock:
            if self._markers_pending:
                text = self._take_up_to_marker()
            else:
                text, self._pending = "".join(self._pending), []
            if not self._pending:
                self._ready.clear()
            return text, self._finished

    def _take_up_to_marker(self) -> str:
        """The pending text before the first marker, or that marker alone (under `_lock`)."""
        pending = self._pending
        first = next(i for i, piece in enumerate(pending) if type(piece) is MarkerText)
        if first == 0:
            self._markers_pending -= 1
            self._pending = pending[1:]
            return pending[0]
        self._pending = pending[first:]
        return "".join(pending[:first])


class GenerationStream:
    """Decoded text of one generation, as it arrives. Iterate with `async for`; stop with `aclose()`.

    Each item is all the text decoded since the previous one (several tokens if the consumer was
    slower than the model), except that the text of a marker token (an added or special token
    the tokenizer holds whole, `<tool_call>`) comes as a `MarkerText` item of its own, so the
    parser can tell it from the same characters written as ordinary tokens. `stats` is complete
    once iteration has ended.

    A stream dropped without `aclose` (its consumer stopped reading and let it go) stops its
    generation when it is collected, within a token, as `stop()` does: the generation thread
    writes into the stream's `output` and never refers to the stream itself.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.output = output = GenerationOutput(loop)
        self.stats = output.stats
        self._queued: Future[None] | None = None
        """The job on the generation thread's queue, for one-at-a-time generation."""
        # (`atexit` off: `_stop_in_flight_generations` stops the live ones, in its own order.)
        weakref.finalize(self, output.stop).atexit = False
        _in_flight.add(self)

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> str:
        output = self.output
        while True:
            text, finished = output._take()  # pyright: ignore[reportPrivateUsage]
            if text:
                return text
            if finished:
                if output._error is not None:  # pyright: ignore[reportPrivateUsage]
                    error, output._error = output._error, None  # pyright: ignore[reportPrivateUsage]
                    raise error
                raise StopAsyncIteration
            await output._ready.wait()  # pyright: ignore[reportPrivateUsage]

    def stop(self) -> None:
        """Ask the generation thread to stop after the token it is computing (non-blocking).

        A generation still queued behind others is taken out of the queue at once.
        """
        self.output.stop()
        if self._queued is not None and self._queued.cancel():
            self.stats.finish_reason = "cancelled"
            self.output._finish()  # pyright: ignore[reportPrivateUsage]

    async def aclose(self) -> None:
        """Stop generating and wait until the model is released."""
        self.stop()
        done = self.output._done  # pyright: ignore[reportPrivateUsage]
        cancelled: asyncio.CancelledError | None = None
        while not done.is_set():
            try:
                await done.wait()
            except asyncio.CancelledError as error:
                # Keep waiting (one token at most): returning now would leave the model busy
                # after the caller believes the request is gone.
                cancelled = error
        if cancelled is not None:
            raise cancelled


_in_flight: weakref.WeakSet[GenerationStream] = weakref.WeakSet()
"""Every stream not yet collected, so that interpreter exit can stop the ones still generating."""


# Registered after `_loading`'s exit handler (this module imports it), so it runs before it:
# atexit runs handlers last-registered first. A generation still running when the interpreter
# finalizes (its consumer was a daemon thread) aborts the process inside MLX; stopped here, it
# ends within one token, and `_loading`'s handler then finds the generation threads idle.
@atexit.register
def _stop_in_flight_generations() -> None:
    for stream in list(_in_flight):
        stream.stop()


Generate = Callable[[LoadedModel, list[int], GenerationOptions, GenerationOutput], None]
"""Generates a completion of a prompt into a stream, on the model's thread (the model is held)."""


def start_generation(
    loaded: LoadedModel, prompt: list[int], options: GenerationOptions, *, generate: Generate | None = None
) -> GenerationStream:
    """Queue generation of a completion of `prompt` on `loaded`'s thread; returns at once.

    `generate` replaces this module's own generation (a distributed run's rank 0 tells the other
    processes each step); the queueing, the cancellation and the end of the stream stay the same.
    """
    stream = GenerationStream(asyncio.get_running_loop())
    run = generate or _generate
    output = stream.output  # (the job holds the output alone: a dropped stream is collected)
    stream._queued = loaded.submit(lambda: _run(loaded, prompt, options, output, run))  # pyright: ignore[reportPrivateUsage]
    return stream


def _run(
    loaded: LoadedModel,
    prompt: list[int],
    options: GenerationOptions,
    stream: GenerationOutput,
    generate: Generate,
) -> None:
    try:
        with loaded.busy:
            if not stream._stop.is_set():  # pyright: ignore[reportPrivateUsage]
                generate(loaded, prompt, options, stream)
            else:
                stream.stats.finish_reason = "cancelled"
    except BaseException as error:
        stream._finish(error)  # pyright: ignore[reportPrivateUsage]
    else:
        stream._finish()  # pyright: ignore[reportPrivateUsage]


def _generate(
    loaded: LoadedModel, prompt: list[int], options: GenerationOptions, out: GenerationOutput
) -> None:
    stop = out._stop  # pyright: ignore[reportPrivateUsage]
    stats = out.stats
    model = loaded.model
    # Made before the cache is leased: one that fails (a grammar that does not compile, say)
    # must not cost the conversation its cached prefix.
    processors = _make_logits_processors(options)
    sampler = with_sampled_hooks(_make_sampler(options), sampled_hooks(processors))
    lease = loaded.prompt_cache.lease(prompt, shared_prefix=options.shared_prefix)
    cache = lease.cache
    stats.prompt_tokens = len(prompt)
    stats.cached_tokens = lease.reused
    generated = stats.output_token_ids
    started = time.perf_counter()
    try:
        # Prefill all but the last prompt token here, in chunks, so a cancel is noticed between
        # chunks; generate_step then starts from exactly one token.
        remaining = prompt[lease.reused :]
        with mx.stream(generation_stream):
            while len(remaining) > 1 and not stop.is_set():
                chunk = min(PREFILL_CHUNK, len(remaining) - 1)
                model(mx.array(remaining[:chunk])[None], cache=cache)
                mx.eval([c.state for c in cache])
                remaining = remaining[chunk:]
        if stop.is_set():
            stats.finish_reason = "cancelled"
        else:
            stats.finish_reason = _decode(
                loaded, remaining, options, cache, out, started, sampler, processors
            )
    finally:
        if stats.output_tokens == 0:
            stats.prefill_seconds = time.perf_counter() - started
    # Kept for the next request (also after a cancel: what was computed is still valid; after an
    # error the cache may be half-updated, so the exception skips this).
    computed = _cache_length(cache)
    if computed:  # None: a cache that cannot say what it holds; 0: nothing to keep
        mx.eval([c.state for c in cache])
        loaded.prompt_cache.store((prompt + generated)[:computed], cache)


def _decode(
    loaded: LoadedModel,
    remaining: list[int],
    options: GenerationOptions,
    cache: list[Any],
    out: GenerationOutput,
    started: float,
    sampler: Callable[[mx.array], mx.array],
    processors: list[Callable[[mx.array, mx.array], mx.array]],
) -> FinishReason:
    steps = generate_step(
        mx.array(remaining),
        loaded.model,
        max_tokens=options.max_tokens,
        sampler=sampler,
        logits_processors=processors,
        prompt_cache=cache,
        prefill_step_size=PREFILL_CHUNK,
    )
    try:
        return stream_tokens(loaded, (int(token) for token, _ in steps), options, out, started)
    finally:
        steps.close()


def stream_tokens(
    loaded: LoadedModel,
    tokens: Iterable[int],
    options: GenerationOptions,
    out: GenerationOutput,
    started: float,
) -> FinishReason:
    """Stream the text of `tokens` (sampled one by one) to `out` until one ends the generation.

    Counts them in `out.stats` (`started`: when the request's prefill began); ends at an
    end-of-sequence token, a stop sequence, a stop asked for by the consumer, or when `tokens`
    runs out (`"length"`).
    """
    stop = out._stop  # pyright: ignore[reportPrivateUsage]
    stats = out.stats
    tokenizer = loaded.tokenizer
    eos = set(tokenizer.eos_token_ids)
    markers = loaded.marker_tokens
    detokenizer = tokenizer.detokenizer
    stops = StopSequenceFilter(options.stop_sequences)
    reason: FinishReason = "length"
    decode_started = started
    try:
        for token in tokens:
            if not stats.output_token_ids:
                decode_started = time.perf_counter()
                stats.prefill_seconds = decode_started - started
            stats.output_token_ids.append(token)
            stats.output_tokens += 1
            if token in eos:
                reason = "stop"
                break
            detokenizer.add_token(token)
            text, stopped = stops.feed(detokenizer.last_segment)
            marker = markers.get(token)
            if text or marker is not None:
                out._emit(text, marker)  # pyright: ignore[reportPrivateUsage]
            if stopped:
                return "stop_sequence"
            if stop.is_set():
                return "cancelled"
    finally:
        stats.decode_seconds = time.perf_counter() - decode_started
    detokenizer.finalize()
    text, stopped = stops.feed(detokenizer.last_segment)
    text += "" if stopped else stops.flush()
    if text:
        out._emit(text)  # pyright: ignore[reportPrivateUsage]
    return "stop_sequence" if stopped else reason


def _cache_length(cache: list[Any]) -> int | None:
    """Tokens held by the KV cache, or None for caches that cannot say (then it is not kept)."""
    offsets = {getattr(c, "offset", None) for c in cache}
    if len(offsets) != 1:
        return None
    offset = offsets.pop()
    return offset if isinstance(offset, int) else None


def _make_sampler(options: GenerationOptions) -> Callable[[mx.array], mx.array]:
    if options.temperature <= 0:
        return lambda logprobs: mx.argmax(logprobs, axis=-1)
    key = mx.random.key(options.seed) if options.seed is not None else None
    inverse_temperature = 1 / options.temperature
    top_p, top_k = options.top_p, options.top_k

    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        if top_p is not None and 0 < top_p < 1:
            logprobs = apply_top_p(logprobs, top_p)
        if top_k is not None and top_k > 0:
            logprobs = apply_top_k(logprobs, top_k)
        if key is None:
            return mx.random.categorical(logprobs * inverse_temperature)
        # A private key chain: a seeded request is reproducible whatever else runs meanwhile.
        key, subkey = mx.random.split(key)
        return mx.random.categorical(logprobs * inverse_temperature, key=subkey)

    return sample


SampledHook = Callable[[mx.array], None]
"""Told each token a decoder samples (still lazy), before the decoder shows it to the processors."""


def sampled_hooks(processors: Iterable[object]) -> list[SampledHook]:
    """The `sampled` methods of the processors that have one (the grammar's: it follows the token
    on a worker thread while the next step is prepared, see `constrained._decoding`)."""
    hooks: list[SampledHook] = []
    for processor in processors:
        hook = getattr(processor, "sampled", None)
        if callable(hook):
            hooks.append(cast(SampledHook, hook))
    return hooks


def with_sampled_hooks(
    sampler: Callable[[mx.array], mx.array], hooks: Sequence[SampledHook]
) -> Callable[[mx.array], mx.array]:
    """`sampler`, telling `hooks` each token it samples (for a decoder of one sequence)."""
    if not hooks:
        return sampler

    def sample(logprobs: mx.array) -> mx.array:
        token = sampler(logprobs)
        for hook in hooks:
            hook(token)
        return token

    return sample


def _make_logits_processors(
    options: GenerationOptions, *, prompt_tokens_shown: int = 1
) -> list[Callable[[mx.array, mx.array], mx.array]]:
    """The penalties and extra processors of `options`, shown the completion's tokens only.

    `prompt_tokens_shown`: how many prompt tokens the decoder shows the processors before the
    completion (1 for `generate_step`: the token it starts from; 0 for `LoneSequence`).
    """
    processors = make_logits_processors(
        logit_bias=dict(options.logit_bias) if options.logit_bias else None,
        presence_penalty=options.presence_penalty,
        presence_context_size=options.max_tokens,
        frequency_penalty=options.frequency_penalty,
        frequency_context_size=options.max_tokens,
    )
    # generate_step shows the processors the token it was started with (the last prompt token)
    # before the sampled ones; penalties are about the completion only, as in the OpenAI API.
    penalties: list[Callable[[mx.array, mx.array], mx.array]] = [
        lambda tokens, logits, p=p: p(tokens[prompt_tokens_shown:], logits) for p in processors
    ]
    return [*penalties, *(make() for make in options.extra_processors)]


class StopSequenceFilter:
    """Cuts text at the first stop sequence to be completed, holding back only what could still start one."""

    def __init__(self, stop_sequences: Sequence[str]) -> None:
        self._stops = [s for s in stop_sequences if s]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text safe to emit, and whether a stop sequence was reached (then nothing more comes)."""
        if not self._stops:
            return text, False
        pending = self._pending + text
        # The occurrence that ends first is the one generation reached first (whatever the chunking).
        hits = [(i + len(s), i) for s in self._stops if (i := pending.find(s)) >= 0]
        if hits:
            self._pending = ""
            return pending[: min(hits)[1]], True
        hold = max((overlap(pending, s) for s in self._stops), default=0)
        self._pending = pending[len(pending) - hold :]
        return pending[: len(pending) - hold], False

    def flush(self) -> str:
        """The held-back text, once no more text will come."""
        pending, self._pending = self._pending, ""
        return pending
