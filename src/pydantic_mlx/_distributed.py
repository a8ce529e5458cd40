"""One model split across processes (and machines) with MLX's own distributed engine.

Every process ("rank") of an `mx.distributed` group holds a shard of the weights (mlx-lm's tensor
or pipeline sharding), and every forward pass needs all of them. Rank 0 runs the agent; the other
ranks follow it (`Follower.follow`): they run exactly the forward passes rank 0 runs, in the same
order, and nothing else.

The protocol. Before each thing the followers must do, rank 0 sends a header of three integers
through `mx.distributed` itself (an `all_sum` to which rank 0 adds the header and the followers
zeros), so that every step of the conversation carries its word:

    NEW n s       a request: its n prompt tokens follow (one more all_sum), s of them shared by
                  every conversation (the disk prompt cache's prefix). Every rank leases its own
                  prompt cache and all agree (all_gather) on the prefix they all hold.
    PREFILL n     feed the next n prompt tokens (only the KV cache is computed)
    DECODE 1 t    feed token t and compute the logits after it
    END k         the request is over; k: keep the KV cache for the next request
    SHUTDOWN      rank 0's model is closed, or its interpreter exits: `follow` returns

A DECODE header is part of rank 0's lazy graph: it carries the token rank 0 sampled, and rank 0
feeds its own model the token it reads back from that very collective. So every rank feeds the
same token whatever its own logits; grammar masks, penalties and the sampler run on rank 0 only
(the full logits are there), and followers hold no request settings at all. Rank 0 keeps its
one-token lookahead: the header of step n+1 is queued with step n's sampling.

Shutting down. A blocking collective has no timeout and no heartbeat can run beside one, so
every way out is a word or a closed connection: `MLXModel.close()` and interpreter exit (atexit:
in-flight generations are stopped within a token, each ends with END, then SHUTDOWN) release
the followers; a cancelled request ends with END. When a process dies, the ring backend reports
the lost connection to the others' next collective: a follower's crash fails rank 0's request
(then every later one) with `DistributedGroupError`, and rank 0's crash fails `follow`. A machine
that vanishes without closing its sockets (power, cable) leaves the others waiting until TCP
gives up.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, cast

import mlx.core as mx
from mlx_lm.generate import generation_stream
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache
from pydantic_ai.exceptions import UserError

from ._generation import (
    PREFILL_CHUNK,
    GenerationOptions,
    GenerationOutput,
    GenerationStream,
    _cache_length,  # pyright: ignore[reportPrivateUsage]
    _make_logits_processors,  # pyright: ignore[reportPrivateUsage]
    _make_sampler,  # pyright: ignore[reportPrivateUsage]
    _stop_in_flight_generations,  # pyright: ignore[reportPrivateUsage]
    start_generation,
    stream_tokens,
)
from ._loading import LoadedModel
from ._lone_sequence import LoneSequence, feed_prompt_chunk, next_logits
from ._prompt_cache import CacheLease, KVCache

__all__ = [
    "SHARDINGS",
    "DistributedGroupError",
    "Follower",
    "Leader",
    "ShardLoader",
    "Sharding",
    "check_no_other_model",
    "open_session",
    "resolve_group",
]

Sharding = Literal["auto", "tensor", "pipeline"]
SHARDINGS: tuple[Sharding, ...] = ("auto", "tensor", "pipeline")

PROTOCOL_VERSION = 1
"""Changes whenever the headers change: ranks running different versions refuse to start."""

_NEW, _PREFILL, _DECODE, _END, _SHUTDOWN = 1, 2, 3, 4, 5
_WORDS = {_NEW: "NEW", _PREFILL: "PREFILL", _DECODE: "DECODE", _END: "END", _SHUTDOWN: "SHUTDOWN"}

_CLEAR_CACHE_EVERY = 256
"""Decoded tokens between two `mx.clear_cache()` calls on a follower (as `LoneSequence` on rank 0)."""

_EXIT_WAIT_SECONDS = 10.0
"""How long interpreter exit waits for rank 0's SHUTDOWN to reach the followers."""


class DistributedGroupError(RuntimeError):
    """The processes of a distributed model lost each other (one crashed or was killed), or do
    not run the same model. The group cannot be used again: restart every rank."""


def resolve_group(distributed: Any) -> mx.distributed.Group:
    """The group `MLXModel(distributed=...)` names: `True` for `mx.distributed.init()`, or a group."""
    if distributed is True:
        return mx.distributed.init()
    if isinstance(distributed, mx.distributed.Group):
        return distributed
    raise UserError(f"distributed must be True, False or an mx.distributed.Group, not {distributed!r}")


# --- loading one rank's shard ----------------------------------------------------------------


def offered_shardings(model: Any) -> list[Literal["tensor", "pipeline"]]:
    """The ways mlx-lm can split this model (an instance, its weights may be lazy), tensor first."""
    offered: list[Literal["tensor", "pipeline"]] = []
    if hasattr(model, "shard"):
        offered.append("tensor")
    if hasattr(getattr(model, "model", None), "pipeline"):
        offered.append("pipeline")
    return offered


class ShardLoader:
    """Loads this rank's shard of a model (a `Loader` for `loaded_model`), and remembers how it split it.

    `auto` takes tensor sharding where mlx-lm offers it, else pipeline sharding (as mlx-lm's
    `sharded_load`). A model that offers neither raises `UserError` before any weight is read.
    """

    def __init__(self, group: mx.distributed.Group, sharding: Sharding) -> None:
        self.group = group
        self.sharding = sharding
        self.chosen: Literal["tensor", "pipeline"] | None = None

    def __call__(self, source: str) -> tuple[Any, Any]:
        from mlx_lm.utils import load_model, load_tokenizer, sharded_load

        folder = Path(source)
        if not folder.is_dir():
            # A Hugging Face repo: mlx-lm's `sharded_load` downloads only this rank's files.
            self.chosen = self._choose(load_model(_hub_config_folder(source), lazy=True, strict=False)[0])
            group = self.group if self.group.size() > 1 else None
            if group is None:
                from mlx_lm import load

                whole = load(source)
                return whole[0], whole[1]
            shard = sharded_load(
                source,
                pipeline_group=group if self.chosen == "pipeline" else None,
                tensor_group=group if self.chosen == "tensor" else None,
            )
            return shard[0], shard[1]
        # A local folder holds every file already. mlx-lm's `sharded_load` reads the weights' index
        # to pick this rank's files, which a single-file model does not have; the lazy load below
        # reads only the weights this rank keeps, as it does.
        model: Any
        model, config = load_model(folder, lazy=True)
        self.chosen = self._choose(model)
        if self.group.size() > 1:
            if self.chosen == "tensor":
                model.shard(self.group)
            else:
                model.model.pipeline(self.group)
        mx.eval(model.parameters())
        tokenizer = load_tokenizer(folder, eos_token_ids=config.get("eos_token_id"))
        return model, tokenizer

    def _choose(self, model: Any) -> Literal["tensor", "pipeline"]:
        offered = offered_shardings(model)
        architecture = getattr(model, "model_type", None) or type(model).__module__
        if not offered:
            raise UserError(
                f"the {architecture!r} architecture cannot be split across processes: mlx-lm offers "
                "neither tensor sharding (`Model.shard`) nor pipeline sharding (`Model.model.pipeline`) "
                "for it (see docs/distributed.md for the architectures that have them)"
            )
        if self.sharding == "auto":
            return offered[0]
        if self.sharding not in offered:
            raise UserError(
                f"the {architecture!r} architecture has no {self.sharding} sharding in mlx-lm; "
                f"it offers {' and '.join(offered)} (sharding={offered[0]!r})"
            )
        return self.sharding


def _hub_config_folder(repo: str) -> Path:
    """The local snapshot of a Hugging Face repo's configuration files (no weights)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, allow_patterns=["*.json", "*.py"]))


# --- the channel: headers and payloads through mx.distributed ----------------------------------


class _Channel:
    """The collectives of the protocol, on the generation stream (the forward passes' own stream,
    so that every rank runs its collectives in one order)."""

    def __init__(self, group: mx.distributed.Group) -> None:
        self.group = group
        self.rank = group.rank()

    def send(self, word: int, first: int = 0, second: int = 0) -> None:
        """Rank 0: the header of what comes next (waits until every rank has it)."""
        self._exchange([word, first, second])

    def receive(self) -> tuple[int, int, int]:
        """A follower: the next header (blocks until rank 0 sends one)."""
        word, first, second = self._exchange(None)
        return word, first, second

    def _exchange(self, header: list[int] | None) -> list[int]:
        with mx.stream(generation_stream):
            mine = mx.array(header, dtype=mx.int32) if header is not None else mx.zeros((3,), mx.int32)
            total = mx.distributed.all_sum(mine, group=self.group)
            return cast(list[int], total.tolist())

    def send_tokens(self, tokens: list[int]) -> None:
        self._exchange_tokens(tokens, len(tokens))

    def receive_tokens(self, count: int) -> list[int]:
        return self._exchange_tokens(None, count)

    def _exchange_tokens(self, tokens: list[int] | None, count: int) -> list[int]:
        if count == 0:
            return []
        with mx.stream(generation_stream):
            mine = mx.array(tokens, dtype=mx.int32) if tokens is not None else mx.zeros((count,), mx.int32)
            return cast(list[int], mx.distributed.all_sum(mine, group=self.group).tolist())

    def shared_token(self, fed: mx.array) -> mx.array:
        """Rank 0: `fed` (one token, lazy) as every rank will feed it: read back from its DECODE header.

        The header is queued at once, before the forward pass that feeds the token is built: a
        pipeline stage's first collective (receiving the previous stage's activations) does not
        depend on the token, and queued in one graph with the header it could run first, waiting
        on followers that wait for the header.
        """
        header = mx.concatenate([mx.array([_DECODE, 1], dtype=mx.int32), fed.astype(mx.int32)])
        shared = mx.distributed.all_sum(header, group=self.group)[2:].astype(fed.dtype)
        mx.async_eval(shared)
        return shared

    def agree_on_prefix(self, model: Any, lease: CacheLease) -> tuple[KVCache, int]:
        """The cache every rank continues from, holding the prompt prefix they all hold (see
        `agreed_prefix`): the leased one, trimmed if need be, or an empty one."""
        cache = lease.cache
        mine = mx.array([lease.reused, int(can_trim_prompt_cache(cache))], dtype=mx.int32)
        with mx.stream(generation_stream):
            gathered = cast(list[int], mx.distributed.all_gather(mine, group=self.group).tolist())
        agreed = agreed_prefix(list(zip(gathered[::2], map(bool, gathered[1::2]), strict=True)))
        if agreed is None:
            return make_prompt_cache(model), 0
        if lease.reused > agreed:
            trim_prompt_cache(cache, lease.reused - agreed)
        return cache, agreed

    def check_same_model(self, signature: int, sharding: int) -> None:
        """Every rank loaded the same model the same way, with the same protocol (raises otherwise)."""
        mine = mx.array([PROTOCOL_VERSION, signature, sharding], dtype=mx.int32)
        with mx.stream(generation_stream):
            gathered = cast(list[int], mx.distributed.all_gather(mine, group=self.group).tolist())
        problem = mismatch([gathered[i : i + 3] for i in range(0, len(gathered), 3)])
        if problem is not None:
            raise DistributedGroupError(problem)


def agreed_prefix(offers: list[tuple[int, bool]]) -> int | None:
    """The prompt prefix all ranks continue from, given each rank's `(reused, trimmable)`: the
    shortest any of them holds, or None (start from an empty cache) when a rank holding more
    cannot trim its cache to it.

    Each rank's prompt cache decides alone (its own limits, its own disk), so they may differ.
    """
    agreed = min(reused for reused, _ in offers)
    if all(reused == agreed or trimmable for reused, trimmable in offers):
        return agreed
    return None


def mismatch(rows: list[list[int]]) -> str | None:
    """What differs between rank 0's `[protocol, model signature, sharding]` and another rank's."""
    for rank, row in enumerate(rows):
        if row != rows[0]:
            what = "pydantic-mlx version" if row[0] != rows[0][0] else "model or sharding"
            return (
                f"rank {rank} does not run the same {what} as rank 0: every rank must load the same "
                "weights with the same sharding and the same pydantic-mlx"
            )
    return None


def _model_signature(loaded: LoadedModel) -> int:
    """A digest of the model's configuration and tokenizer, equal on every rank of one model."""
    args = getattr(loaded.model, "args", None)
    described = repr(sorted(vars(args).items())) if args is not None else type(loaded.model).__qualname__
    tokenizer = loaded.tokenizer
    text = f"{described}|{getattr(tokenizer, 'vocab_size', 0)}|{sorted(tokenizer.eos_token_ids)}"
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


# --- rank 0 ------------------------------------------------------------------------------------


class _MirroredSequence(LoneSequence):
    """A `LoneSequence` whose every forward pass is announced to the followers first."""

    def __init__(self, channel: _Channel, *args: Any) -> None:
        super().__init__(*args)
        self._channel = channel
        self._announced: mx.array | None = None
        """The logits of the last forward pass announced to the followers (maybe not computed yet)."""

    def _feed_prompt_chunk(self, tokens: list[int]) -> None:
        self._channel.send(_PREFILL, len(tokens))
        super()._feed_prompt_chunk(tokens)

    def _forward(self, fed: mx.array) -> mx.array:
        self._announced = super()._forward(self._channel.shared_token(fed))
        return self._announced

    def settle(self) -> None:
        """Run the last forward pass announced, if it has not run: the followers run it (its
        collectives need every rank) before they read the next header. It is computed ahead of
        the last token, or its header was read by a logits processor that raised since."""
        if self._announced is not None:
            mx.eval(self._announced)


class Leader:
    """Rank 0's side: generations whose every step the followers mirror."""

    def __init__(self, loaded: LoadedModel, channel: _Channel) -> None:
        self._loaded = loaded
        self._channel = channel
        self._lock = threading.Lock()
        self._closed = False
        self._broken: DistributedGroupError | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, prompt: list[int], options: GenerationOptions) -> GenerationStream:
        """Queue a completion of `prompt`, as `start_generation` does, mirrored on every rank."""
        if self._closed:
            raise UserError("this distributed model is closed (MLXModel.close()): its followers have stopped")
        if self._broken is not None:
            raise self._broken
        return start_generation(self._loaded, prompt, options, generate=self._generate)

    def close(self, timeout: float | None = None) -> None:
        """Send SHUTDOWN once the generations queued before have ended (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._broken is None:
            self._loaded.submit(self._shut_down).result(timeout)

    def _shut_down(self) -> None:
        try:
            self._channel.send(_SHUTDOWN)
        except RuntimeError as error:  # the followers are gone already: nothing to release
            self._broken = _lost(error)

    # On the generation thread, with the model held.
    def _generate(
        self, loaded: LoadedModel, prompt: list[int], options: GenerationOptions, out: GenerationOutput
    ) -> None:
        if self._broken is not None:
            raise self._broken
        stop = out._stop  # pyright: ignore[reportPrivateUsage]
        stats = out.stats
        # Made before the cache is leased (as in `_generation`): a grammar that does not compile
        # fails here, before the followers hear of the request.
        sampler = _make_sampler(options)
        processors = _make_logits_processors(options, prompt_tokens_shown=0)
        lease = loaded.prompt_cache.lease(prompt, shared_prefix=options.shared_prefix)
        stats.prompt_tokens = len(prompt)
        started = time.perf_counter()
        channel = self._channel
        try:
            channel.send(_NEW, len(prompt), options.shared_prefix)
            channel.send_tokens(prompt)
            cache, reused = channel.agree_on_prefix(loaded.model, lease)
        except RuntimeError as error:
            raise self._break(error) from error
        stats.cached_tokens = reused
        sequence = _MirroredSequence(
            channel, loaded.model, cache, prompt[reused:], sampler, processors, PREFILL_CHUNK
        )
        try:
            while len(sequence.unfed) > 1 and not stop.is_set():
                sequence.step()
            if stop.is_set():
                stats.finish_reason = "cancelled"
            else:
                tokens = _decoded(sequence, options.max_tokens)
                stats.finish_reason = stream_tokens(loaded, tokens, options, out, started)
        except BaseException as error:
            # The followers wait for a word: END, without keeping a cache that may be half-updated.
            # If even that fails, the group itself is what broke.
            try:
                sequence.settle()
                channel.send(_END, 0)
            except RuntimeError as lost:
                raise self._break(lost) from error
            raise
        finally:
            if stats.output_tokens == 0:
                stats.prefill_seconds = time.perf_counter() - started
        try:
            sequence.settle()
            channel.send(_END, 1)
        except RuntimeError as error:
            raise self._break(error) from error
        # Kept for the next request, also after a cancel (as in `_generation`); the followers keep
        # exactly the same tokens.
        computed = _cache_length(cache)
        if computed:
            mx.eval([c.state for c in cache])
            loaded.prompt_cache.store((prompt + stats.output_token_ids)[:computed], cache)

    def _break(self, error: RuntimeError) -> DistributedGroupError:
        self._broken = _lost(error)
        return self._broken


def _lost(error: RuntimeError) -> DistributedGroupError:
    return DistributedGroupError(
        f"the distributed model's processes lost each other ({error}): a follower crashed, was "
        "killed or was disconnected; restart every rank"
    )


def _decoded(sequence: LoneSequence, max_tokens: int) -> Iterator[int]:
    """The sequence's tokens, at most `max_tokens` (nothing is computed ahead of the last)."""
    for n in range(1, max_tokens + 1):
        token = sequence.step(last=n == max_tokens)
        assert token is not None, "the prompt was prefilled before decoding"
        yield token


# --- the other ranks ---------------------------------------------------------------------------


class Follower:
    """A rank other than 0: mirrors rank 0's forward passes until rank 0 shuts the group down."""

    def __init__(self, loaded: LoadedModel, channel: _Channel) -> None:
        self._loaded = loaded
        self._channel = channel
        self.finished = False

    def follow(self) -> None:
        """Mirror rank 0's requests until it sends SHUTDOWN (blocking)."""
        # One request per job on the generation thread: the disk cache writes a request queues
        # there run between two requests.
        while not self.finished:
            self._loaded.submit(self._serve_request).result()

    async def afollow(self) -> None:
        """`follow`, awaited (the work runs on the model's thread; the event loop stays free)."""
        while not self.finished:
            await self._loaded.run(self._serve_request)

    def _serve_request(self) -> None:
        try:
            self._mirror_request()
        except DistributedGroupError:
            self.finished = True
            raise
        except RuntimeError as error:
            self.finished = True
            raise DistributedGroupError(
                f"rank {self._channel.rank} stopped following rank 0 ({error}): if rank 0 exited "
                "without closing its model, or crashed, its connection is gone; restart every rank"
            ) from error

    def _mirror_request(self) -> None:
        channel, loaded = self._channel, self._loaded
        model, prompt_cache = loaded.model, loaded.prompt_cache
        word, count, shared_prefix = channel.receive()
        if word == _SHUTDOWN:
            self.finished = True
            return
        self._expect(word, _NEW)
        prompt = channel.receive_tokens(count)
        lease = prompt_cache.lease(prompt, shared_prefix=shared_prefix)
        cache, reused = channel.agree_on_prefix(model, lease)
        fed, unfed = prompt[:reused], prompt[reused:]
        decoded = 0
        while True:
            word, count, token = channel.receive()
            if word == _PREFILL and 0 < count < len(unfed):
                with mx.stream(generation_stream):
                    feed_prompt_chunk(model, cache, unfed[:count])
                fed += unfed[:count]
                unfed = unfed[count:]
                mx.clear_cache()
            elif word == _DECODE and unfed in ([], [token]):
                with mx.stream(generation_stream):
                    mx.eval(next_logits(model, cache, mx.array([token])))
                fed.append(token)
                unfed = []
                decoded += 1
                if decoded % _CLEAR_CACHE_EVERY == 0:
                    mx.clear_cache()
            elif word == _END:
                computed = _cache_length(cache) if count else None
                if computed:
                    mx.eval([c.state for c in cache])
                    prompt_cache.store(fed[:computed], cache)
                return
            else:
                raise self._out_of_step(
                    f"{_WORDS.get(word, word)} {count} with {len(unfed)} prompt tokens to feed"
                )

    def _expect(self, word: int, expected: int) -> None:
        if word != expected:
            raise self._out_of_step(f"{_WORDS.get(word, word)} where {_WORDS[expected]} was due")

    def _out_of_step(self, what: str) -> DistributedGroupError:
        return DistributedGroupError(
            f"rank {self._channel.rank} got {what} from rank 0: the ranks are out of step; restart every rank"
        )


# --- sessions: one distributed model per process -------------------------------------------------

_sessions: dict[LoadedModel, Leader | Follower] = {}
_sessions_lock = threading.Lock()


def check_no_other_model(loaded: LoadedModel) -> None:
    """Raise `UserError` if this process runs another distributed model than `loaded` (called
    before `loaded` loads: loading a shard may itself run collectives)."""
    with _sessions_lock:
        for ended in [model for model, session in _sessions.items() if _ended(session)]:
            del _sessions[ended]  # its weights are freed with the last MLXModel on them
        if _sessions and loaded not in _sessions:
            raise UserError(
                "this process already runs another distributed model: close it first "
                "(MLXModel.close() on rank 0); the processes run one distributed model at a time"
            )


def open_session(loaded: LoadedModel, group: mx.distributed.Group, sharding: str | None) -> Leader | Follower:
    """This rank's side of the distributed model `loaded` (loaded already), made once per model.

    Every rank checks that all loaded the same model the same way (a collective: all ranks make
    their distributed `MLXModel`s in the same order). A process holds one open distributed model:
    two would interleave their collectives.
    """
    check_no_other_model(loaded)
    with _sessions_lock:
        existing = _sessions.get(loaded)
        if existing is not None:
            return existing
        channel = _Channel(group)
        code = {"tensor": 1, "pipeline": 2}.get(sharding or "", 0)
        channel.check_same_model(_model_signature(loaded), code)
        session = Leader(loaded, channel) if channel.rank == 0 else Follower(loaded, channel)
        _sessions[loaded] = session
        return session


def _ended(session: Leader | Follower) -> bool:
    return session.closed if isinstance(session, Leader) else session.finished


# Registered after `_generation`'s and `_loading`'s exit handlers (this module imports both), so
# it runs first: the generations still running are stopped (each ends with END), SHUTDOWN goes
# out behind them, and only then do the generation threads refuse work.
@atexit.register
def _shut_down_followers() -> None:
    leaders = [s for s in _sessions.values() if isinstance(s, Leader) and not s.closed]
    if not leaders:
        return
    _stop_in_flight_generations()
    for leader in leaders:
        # Exiting anyway: a follower that misses SHUTDOWN sees the connection close.
        with contextlib.suppress(Exception):
            leader.close(timeout=_EXIT_WAIT_SECONDS)
