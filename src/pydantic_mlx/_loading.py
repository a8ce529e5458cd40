"""Loaded MLX models, shared by every `MLXModel` that names the same weights and adapter.

Loading is lazy (first request) and happens on the model's own generation thread, so the event
loop never blocks on reading gigabytes of weights. Each loaded model owns exactly one thread:
MLX's generation stream is thread-local, so a fixed thread per model keeps one stream per model
instead of one per request, and it serialises requests in arrival order.

That thread is a daemon that never ends before the process does: MLX keeps per-thread state
(its compile cache) whose destructor takes the GIL, so a thread that ends while the interpreter
finalizes aborts the process ("terminate called without an active exception"), and a model
collected at exit would end its thread just then. When its model is collected, the thread goes
back to a pool for the next model instead (not woken at all once the interpreter finalizes); at
exit, generations still running are stopped (within one token, see `_generation`), the threads
are waited for until idle, and then refuse new work: a daemon thread's agent run that asks again
meanwhile gets a `RuntimeError` instead of starting MLX work while the interpreter finalizes.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from mlx_lm.tokenizer_utils import TokenizerWrapper

from ._disk_cache import DEFAULT_DISK_CACHE_BYTES, DiskPromptCache
from ._prompt_cache import DEFAULT_PROMPT_CACHE_BYTES, DEFAULT_PROMPT_CACHE_ENTRIES, PromptCache
from ._sources import download_error, resolve_adapter, resolve_model

__all__ = ["LoadedModel", "ModelSource", "loaded_model", "warn_if_limits_ignored"]

T = TypeVar("T")

ModelSource = str | Path | tuple[Any, Any]
"""A Hugging Face id, a local folder, or an already loaded `(model, tokenizer)` pair."""

Loader = Callable[[str], tuple[Any, Any]]
"""Loads `(model, tokenizer)` from a resolved source (a folder or a Hugging Face id)."""

_registry: weakref.WeakValueDictionary[tuple[str, str | None, Hashable], LoadedModel] = (
    weakref.WeakValueDictionary()
)
_registry_lock = threading.Lock()


class LoadedModel:
    """Weights, tokenizer, prompt cache and generation thread of one model (plus adapter).

    `busy` is held for the whole of one generation: requests on the same weights never overlap,
    and a cancelled request releases it within one token.
    """

    def __init__(
        self,
        source: str | tuple[Any, Any],
        *,
        adapter_path: str | None = None,
        prompt_cache_entries: int = DEFAULT_PROMPT_CACHE_ENTRIES,
        prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
        prompt_cache_dir: Path | None = None,
        prompt_cache_disk_bytes: int = DEFAULT_DISK_CACHE_BYTES,
        loader: Loader | None = None,
    ) -> None:
        self.source = source
        self.adapter_path = adapter_path
        self._loader = loader
        self.busy = threading.Lock()
        self._prompt_cache_limits = (prompt_cache_entries, prompt_cache_bytes)
        self._disk_cache_settings = (prompt_cache_dir, prompt_cache_disk_bytes)
        self._model: Any = None
        self._tokenizer: TokenizerWrapper | None = None
        self._prompt_cache: PromptCache | None = None
        self._control_tokens: frozenset[str] | None = None
        self._marker_tokens: dict[int, str] | None = None
        self._marker_token_texts: frozenset[str] = frozenset()
        self._load_lock = threading.Lock()
        self._thread = _GenerationThread.acquire()
        # Not at exit (see the module's docstring): only when the model is collected before.
        weakref.finalize(self, self._thread.release).atexit = False
        if isinstance(source, tuple):
            self._install(*source)

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        """The `mlx.nn.Module`; only valid after `load()`."""
        if self._model is None:
            raise RuntimeError("model not loaded yet")
        return self._model

    @property
    def tokenizer(self) -> TokenizerWrapper:
        """The mlx-lm tokenizer wrapper; only valid after `load()`."""
        if self._tokenizer is None:
            raise RuntimeError("model not loaded yet")
        return self._tokenizer

    @property
    def prompt_cache(self) -> PromptCache:
        """The KV caches kept for reuse; only touched from the generation thread."""
        if self._prompt_cache is None:
            raise RuntimeError("model not loaded yet")
        return self._prompt_cache

    @property
    def control_tokens(self) -> frozenset[str]:
        """The texts of the tokenizer's special tokens (`<|im_start|>`, `<|endoftext|>`, ...): a
        model that writes one outside a call has written markup, not words. Only valid after
        `load()`."""
        if self._control_tokens is None:
            # `marker_tokens` (the special tokens with their ids), and any role token the
            # tokenizer names without an id.
            roles = getattr(self.tokenizer, "all_special_tokens", ()) or ()
            self._control_tokens = self.marker_token_texts | {str(t) for t in roles if t}
        return self._control_tokens

    @property
    def marker_tokens(self) -> dict[int, str]:
        """Token id -> text of the tokenizer's special tokens (`control_tokens` with their ids). A
        format marker that is one of these (`[TOOL_CALLS]`, `<|tool_calls_section_begin|>`) is
        markup only where the model sampled that token (see `_token_markers`); added tokens that
        are not special (Qwen2.5's `<tool_call>`) stay markers however they were spelled. Only
        valid after `load()`."""
        if self._marker_tokens is None:
            tokenizer: Any = self.tokenizer
            added: Any = getattr(tokenizer, "added_tokens_decoder", None) or {}
            # `all_special_tokens` names only the roles (BOS, EOS, pad, ...) in recent transformers;
            # the added tokens flagged special hold the rest (Qwen2.5: `<|im_start|>`, `<|fim_*|>`).
            markers = {
                int(i): str(t.content)
                for i, t in added.items()
                if getattr(t, "special", False) and getattr(t, "content", None)
            }
            for text in getattr(tokenizer, "all_special_tokens", ()) or ():
                token_id = tokenizer.convert_tokens_to_ids(text)
                if isinstance(token_id, int) and token_id >= 0 and text:
                    markers.setdefault(token_id, str(text))
            self._marker_tokens = markers
            self._marker_token_texts = frozenset(markers.values())
        return self._marker_tokens

    @property
    def marker_token_texts(self) -> frozenset[str]:
        """The texts of `marker_tokens`."""
        if self._marker_tokens is None:
            self.marker_tokens  # noqa: B018  (computes both)
        return self._marker_token_texts

    def load_sync(self) -> None:
        """Load the weights now, in the calling thread (idempotent)."""
        with self._load_lock:
            if self._model is not None:
                return
            assert isinstance(self.source, str)
            if self._loader is not None:
                model, tokenizer = self._loader(self.source)
            else:
                from mlx_lm import load

                try:
                    loaded = load(self.source, adapter_path=self.adapter_path)
                except Exception as error:
                    clear = download_error(self.source, error)
                    if clear is None:
                        raise
                    raise clear from error
                model, tokenizer = loaded[0], loaded[1]
            self._install(model, tokenizer)

    async def load(self) -> None:
        """Load the weights on the generation thread (once; later calls return at once)."""
        if self._model is None:
            await self.run(self.load_sync)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on this model's generation thread, after everything submitted before it."""
        return self._thread.submit(fn)

    async def run(self, fn: Callable[[], T]) -> T:
        """`submit`, awaited."""
        return await asyncio.wrap_future(self.submit(fn))

    @property
    def has_queued_work(self) -> bool:
        """Whether functions wait on the generation thread's queue (behind the one running)."""
        return self._thread.has_queued_work

    def _install(self, model: Any, tokenizer: Any) -> None:
        if not isinstance(tokenizer, TokenizerWrapper):
            tokenizer = TokenizerWrapper(tokenizer)
        entries, nbytes = self._prompt_cache_limits
        folder, disk_bytes = self._disk_cache_settings
        disk = None
        if folder is not None:
            name = self.source if isinstance(self.source, str) else type(model).__module__
            disk = DiskPromptCache(model, folder, max_bytes=disk_bytes, model_name=name)
        self._prompt_cache = PromptCache(
            model, max_entries=entries, max_bytes=nbytes, disk=disk, schedule=self.submit
        )
        self._tokenizer = tokenizer
        self._model = model


class _GenerationThread:
    """A daemon thread running the functions submitted to it, one at a time, in order.

    It never ends (see the module's docstring): `release` hands it to the next model instead.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._closed = False
        """Set at interpreter exit, on the thread itself: later work is refused, not run."""
        self._thread = threading.Thread(target=self._work, name="pydantic-mlx-generate", daemon=True)
        self._thread.start()
        _all_threads.append(self)

    @classmethod
    def acquire(cls) -> _GenerationThread:
        """An idle thread left by a collected model, else a new one."""
        with _idle_lock:
            if _idle_threads:
                return _idle_threads.pop()
        return cls()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError(_CLOSED_MESSAGE)
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future

    @property
    def has_queued_work(self) -> bool:
        return not self._queue.empty()

    def release(self) -> None:
        """Make the thread available to the next model once what was submitted before has run."""
        if sys.is_finalizing():
            return  # waking it now would end it (see the module's docstring); the process is ending
        self._queue.put(None)

    def wait_idle(self, timeout: float) -> None:
        """Return once everything submitted so far has run (or after `timeout` seconds)."""
        with contextlib.suppress(TimeoutError):
            self.submit(lambda: None).result(timeout)

    def close(self, timeout: float) -> None:
        """Run everything submitted so far (waiting at most `timeout` seconds), then refuse all work."""
        with contextlib.suppress(TimeoutError):
            self.submit(self._refuse_work).result(timeout)

    def _refuse_work(self) -> None:
        self._closed = True

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                with _idle_lock:
                    _idle_threads.append(self)
                continue
            fn, future = item
            if self._closed:
                future.set_exception(RuntimeError(_CLOSED_MESSAGE))
            elif future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as error:  # handed to whoever waits, as an executor does
                    future.set_exception(error)
            del item, fn, future  # a finished request's arrays are not kept alive while idle


_all_threads: list[_GenerationThread] = []
_idle_threads: list[_GenerationThread] = []
_idle_lock = threading.Lock()

_CLOSED_MESSAGE = "cannot generate: the interpreter is exiting"

_EXIT_WAIT_SECONDS = 10.0
"""How long interpreter exit waits for a generation still running (then the process exits anyway)."""


@atexit.register
def _wait_for_generation_threads() -> None:
    for thread in list(_all_threads):
        thread.close(_EXIT_WAIT_SECONDS)


def loaded_model(
    source: ModelSource,
    *,
    adapter_path: str | Path | None = None,
    prompt_cache_entries: int = DEFAULT_PROMPT_CACHE_ENTRIES,
    prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
    prompt_cache_dir: str | Path | None = None,
    prompt_cache_disk_bytes: int = DEFAULT_DISK_CACHE_BYTES,
    loader: Loader | None = None,
    variant: Hashable = None,
) -> LoadedModel:
    """The shared `LoadedModel` for `source` + `adapter_path` (created, not loaded, if new).

    Instances are shared while any `MLXModel` holds them and freed with the last one. The prompt
    cache limits apply when the shared instance is created; other limits asked for later are
    ignored with a `UserWarning`. `loader` replaces `mlx_lm.load`; `variant` names what it loads
    (one process's shard of a distributed model is not the whole model from the same folder).
    """
    if isinstance(source, tuple):
        normalised: str | tuple[Any, Any] = source
        identity = f"object:{id(source[0])}"
    else:
        # Checked here, before anything is loaded: a wrong path fails where the MLXModel is made.
        normalised = identity = resolve_model(source)
    adapter = resolve_adapter(adapter_path) if adapter_path is not None else None
    key = (identity, adapter, variant)
    folder = Path(prompt_cache_dir).expanduser().resolve() if prompt_cache_dir is not None else None
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None:
            warn_if_limits_ignored(
                "prompt cache",
                "prompt_cache_entries, prompt_cache_bytes",
                in_force=existing._prompt_cache_limits,  # pyright: ignore[reportPrivateUsage]
                asked=(prompt_cache_entries, prompt_cache_bytes),
                default=(DEFAULT_PROMPT_CACHE_ENTRIES, DEFAULT_PROMPT_CACHE_BYTES),
            )
            warn_if_limits_ignored(
                "disk prompt cache",
                "prompt_cache_dir, prompt_cache_disk_bytes",
                in_force=existing._disk_cache_settings,  # pyright: ignore[reportPrivateUsage]
                asked=(folder, prompt_cache_disk_bytes),
                default=(None, DEFAULT_DISK_CACHE_BYTES),
            )
            return existing
        created = LoadedModel(
            normalised,
            adapter_path=adapter,
            prompt_cache_entries=prompt_cache_entries,
            prompt_cache_bytes=prompt_cache_bytes,
            prompt_cache_dir=folder,
            prompt_cache_disk_bytes=prompt_cache_disk_bytes,
            loader=loader,
        )
        _registry[key] = created
        return created


def warn_if_limits_ignored(
    what: str, names: str, *, in_force: tuple[Any, ...], asked: tuple[Any, ...], default: tuple[Any, ...]
) -> None:
    """Warn that limits asked for by a second `MLXModel` on shared weights are not the ones in force.

    They belong to the loaded model and are set by the first `MLXModel` on it; asking for the
    defaults asks for nothing in particular.
    """
    if asked not in (in_force, default):
        warnings.warn(
            f"these weights are already loaded with {names} = {in_force}: the {what} belongs to the "
            f"loaded model, so {asked} is ignored (the first MLXModel on the weights sets it)",
            UserWarning,
            stacklevel=4,  # the code that made the MLXModel
        )
