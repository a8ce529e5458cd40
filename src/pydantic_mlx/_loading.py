"""Loaded MLX models, shared by every `MLXModel` that names the same weights and adapter.

Loading is lazy (first request) and happens on the model's own generation thread, so the event
loop never blocks on reading gigabytes of weights. Each loaded model owns exactly one thread:
MLX's generation stream is thread-local, so a fixed thread per model keeps one stream per model
instead of one per request, and it serialises requests in arrival order.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mlx_lm.tokenizer_utils import TokenizerWrapper

from ._prompt_cache import PromptCache

__all__ = ["LoadedModel", "ModelSource", "loaded_model"]

T = TypeVar("T")

ModelSource = str | Path | tuple[Any, Any]
"""A Hugging Face id, a local folder, or an already loaded `(model, tokenizer)` pair."""

_registry: weakref.WeakValueDictionary[tuple[str, str | None], LoadedModel] = weakref.WeakValueDictionary()
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
        prompt_cache_entries: int = 4,
        prompt_cache_bytes: int = 2 << 30,
    ) -> None:
        self.source = source
        self.adapter_path = adapter_path
        self.busy = threading.Lock()
        self._prompt_cache_limits = (prompt_cache_entries, prompt_cache_bytes)
        self._model: Any = None
        self._tokenizer: TokenizerWrapper | None = None
        self._prompt_cache: PromptCache | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pydantic-mlx-generate")
        weakref.finalize(self, self._executor.shutdown, wait=False)
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

    def load_sync(self) -> None:
        """Load the weights now, in the calling thread (idempotent)."""
        with self._load_lock:
            if self._model is not None:
                return
            from mlx_lm import load

            assert isinstance(self.source, str)
            loaded = load(self.source, adapter_path=self.adapter_path)
            self._install(loaded[0], loaded[1])

    async def load(self) -> None:
        """Load the weights on the generation thread (once; later calls return at once)."""
        if self._model is None:
            await self.run(self.load_sync)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on this model's generation thread, after everything submitted before it."""
        return self._executor.submit(fn)

    async def run(self, fn: Callable[[], T]) -> T:
        """`submit`, awaited."""
        return await asyncio.wrap_future(self.submit(fn))

    def _install(self, model: Any, tokenizer: Any) -> None:
        if not isinstance(tokenizer, TokenizerWrapper):
            tokenizer = TokenizerWrapper(tokenizer)
        entries, nbytes = self._prompt_cache_limits
        self._prompt_cache = PromptCache(model, max_entries=entries, max_bytes=nbytes)
        self._tokenizer = tokenizer
        self._model = model


def loaded_model(
    source: ModelSource,
    *,
    adapter_path: str | Path | None = None,
    prompt_cache_entries: int = 4,
    prompt_cache_bytes: int = 2 << 30,
) -> LoadedModel:
    """The shared `LoadedModel` for `source` + `adapter_path` (created, not loaded, if new).

    Instances are shared while any `MLXModel` holds them and freed with the last one. The prompt
    cache limits apply when the shared instance is created.
    """
    adapter = str(Path(adapter_path).expanduser().resolve()) if adapter_path is not None else None
    if isinstance(source, tuple):
        key = (f"object:{id(source[0])}", adapter)
        normalised: str | tuple[Any, Any] = source
    else:
        normalised = _normalise_name(source)
        key = (normalised, adapter)
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None:
            return existing
        created = LoadedModel(
            normalised,
            adapter_path=adapter,
            prompt_cache_entries=prompt_cache_entries,
            prompt_cache_bytes=prompt_cache_bytes,
        )
        _registry[key] = created
        return created


def _normalise_name(source: str | Path) -> str:
    """A local folder becomes its absolute path (so two spellings share weights); an HF id stays."""
    path = Path(source).expanduser()
    if isinstance(source, Path) or path.exists():
        return str(path.resolve())
    return str(source)
