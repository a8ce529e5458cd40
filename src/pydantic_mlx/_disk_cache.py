"""KV caches of shared prompt prefixes kept on disk, so a new process does not prefill them again.

An agent's conversations all start with the same system prompt and tool schemas. `DiskPromptCache`
writes the KV cache of such a prefix with mlx-lm's own `save_prompt_cache` (safetensors, with
metadata) into a folder, and hands it to a later process whose prompt starts with the same tokens.

A file is named after the model's fingerprint, the prefix's length and a digest of its tokens,
and its metadata repeats the whole fingerprint and the exact tokens: a file is only ever served to
the model that wrote it, for a prompt that really starts with its tokens. The fingerprint is a
digest of the model's class and configuration, every parameter's name, shape and dtype, and a
strided sample of every parameter's values (an adapter, another quantization or dtype, fine-tuned
weights all change it), plus the mlx and mlx-lm versions (whose numerics the KV came from).

Files are written to a temporary name and renamed (`os.replace`), so a reader never sees half a
file, whoever writes at the same time. The folder is bounded in bytes: the least recently used
files (by modification time, which a hit refreshes) go first. A file that is truncated, corrupt or
not what its name says is ignored with a `DiskCacheWarning`, deleted, and written again later.

Like `PromptCache`, used from the model's generation thread only (MLX arrays belong to the thread
that made them); the folder itself may be shared by any number of processes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata as distributions
from pathlib import Path
from typing import Any, cast

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models.cache import KVCache, load_prompt_cache, make_prompt_cache, save_prompt_cache

from ._cache_dir import (
    TEMP_MARK,
    DiskCacheWarning,
    cache_root,
    discard_unusable,
    remove_stale_temps,
    write_cache_file,
)

__all__ = [
    "DEFAULT_DISK_CACHE_BYTES",
    "DiskCacheEntry",
    "DiskCacheWarning",
    "DiskPromptCache",
    "clear_cache_dir",
    "default_prompt_cache_dir",
    "list_cache_dir",
    "model_fingerprint",
]

DEFAULT_DISK_CACHE_BYTES = 4 << 30
"""Disk space the prompt caches of a folder may take, by default."""

FORMAT = "1"
"""Version of what this module writes (metadata keys, file names); other versions are not read."""

SUFFIX = ".safetensors"

SAMPLES_PER_PARAMETER = 64
"""Values read from each parameter for the fingerprint, evenly spaced through it."""

KVCacheLayers = list[Any]


def default_prompt_cache_dir() -> Path:
    """`$PYDANTIC_MLX_CACHE/prompt-cache`, else `~/.cache/pydantic-mlx/prompt-cache`: the folder
    `MLXModel(prompt_cache_dir=True)` and `pydantic-mlx cache` use."""
    return cache_root() / "prompt-cache"


@dataclass(frozen=True)
class DiskCacheEntry:
    """One file of a prompt-cache folder, as `pydantic-mlx cache ls` shows it."""

    path: Path
    nbytes: int
    last_used: float
    """Modification time: when it was written or last served."""
    tokens: int | None
    """Length of the cached prefix (None when the file's header cannot be read)."""
    model: str | None
    """The name of the model that wrote it."""
    fingerprint: str | None


def model_fingerprint(model: Any) -> str:
    """A digest of what the KV of a token prefix depends on: the model's code, configuration and weights.

    Names, shapes and dtypes of every parameter, and `SAMPLES_PER_PARAMETER` values spread through
    each (reading them all would cost seconds for a 7B model). Computed on the calling thread.
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|mlx {_version('mlx')}|mlx-lm {_version('mlx-lm')}|".encode())
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}|".encode())
    digest.update(repr(getattr(model, "args", None)).encode())
    parameters = cast(list[tuple[str, mx.array]], tree_flatten(model.parameters()))
    samples: list[mx.array] = []
    for name, value in parameters:
        digest.update(f"|{name}:{value.shape}:{value.dtype}".encode())
        flat = value.reshape(-1)
        stride = max(1, flat.size // SAMPLES_PER_PARAMETER)
        samples.append(flat[::stride][:SAMPLES_PER_PARAMETER])
    mx.eval(samples)
    for sample in samples:
        # The raw bytes, whatever the dtype (bfloat16 and packed quantized weights included).
        digest.update(memoryview(cast(Any, mx.view(sample, mx.uint8))).tobytes())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return distributions.version(distribution)
    except distributions.PackageNotFoundError:
        return "?"


def _tokens_digest(fingerprint: str, tokens: list[int]) -> str:
    return hashlib.sha256(fingerprint.encode() + array("q", tokens).tobytes()).hexdigest()[:24]


class DiskPromptCache:
    """The prompt caches of one loaded model in a folder shared with other models and processes.

    Args:
        model: The mlx-lm model (its fingerprint is computed at first use, on the generation thread).
        folder: Where the files go (created if missing).
        max_bytes: Bound on the whole folder; least recently used files are deleted first.
        model_name: Recorded in each file, for `pydantic-mlx cache ls`.
    """

    def __init__(
        self,
        model: Any,
        folder: str | Path,
        *,
        max_bytes: int = DEFAULT_DISK_CACHE_BYTES,
        model_name: str = "",
    ) -> None:
        self._model = model
        self.folder = Path(folder).expanduser()
        self.max_bytes = max_bytes
        self.model_name = model_name
        self._fingerprint: str | None = None
        self._layer_classes: list[str] | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self._model)
        return self._fingerprint

    def _path(self, tokens: list[int]) -> Path:
        fingerprint = self.fingerprint
        return (
            self.folder
            / f"{fingerprint[:16]}-{len(tokens):08d}-{_tokens_digest(fingerprint, tokens)}{SUFFIX}"
        )

    def has(self, tokens: list[int]) -> bool:
        """Whether a file for exactly these tokens exists (not whether it is sound)."""
        return self._path(tokens).is_file()

    def load(self, prompt: list[int], *, longer_than: int) -> tuple[KVCacheLayers, int] | None:
        """The cache of the longest stored prefix of `prompt` (its last token excluded) that is
        longer than `longer_than` tokens, and that prefix's length; None if there is none."""
        limit = len(prompt) - 1
        prefix = f"{self.fingerprint[:16]}-"
        lengths: set[int] = set()
        with contextlib.suppress(OSError), os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(prefix) and name.endswith(SUFFIX) and TEMP_MARK not in name:
                    with contextlib.suppress(ValueError):
                        lengths.add(int(name[len(prefix) :].split("-", 1)[0]))
        for length in sorted((n for n in lengths if longer_than < n <= limit), reverse=True):
            tokens = prompt[:length]
            path = self._path(tokens)
            if path.is_file():
                cache = self._read(path, tokens)
                if cache is not None:
                    return cache, length
        return None

    def _read(self, path: Path, tokens: list[int]) -> KVCacheLayers | None:
        try:
            cache, problem = self._checked_load(path, tokens)
        except FileNotFoundError:
            return None  # evicted meanwhile by another process
        except Exception as error:  # whatever a damaged file makes the readers raise
            cache, problem = None, f"{type(error).__name__}: {error}"
        if cache is None:
            discard_unusable(path, problem, what="the prompt-cache file", stacklevel=2)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first: this one was just used
        return cache

    def _checked_load(self, path: Path, tokens: list[int]) -> tuple[KVCacheLayers | None, str | None]:
        """The file's cache, or None and what is wrong with the file."""
        problem = _header_problem(path)
        if problem is not None:
            return None, problem
        cache, metadata = load_prompt_cache(str(path), return_metadata=True)
        problem = self._metadata_problem(metadata, tokens) or self._layers_problem(cache, len(tokens))
        if problem is not None:
            return None, problem
        mx.eval([c.state for c in cache])  # read now: a bad file fails here, not mid-generation
        return cache, None

    def _metadata_problem(self, metadata: dict[str, Any], tokens: list[int]) -> str | None:
        if metadata.get("format") != FORMAT:
            return f"format {metadata.get('format')!r}, not {FORMAT!r}"
        if metadata.get("fingerprint") != self.fingerprint:
            return f"written by another model ({metadata.get('model') or 'unnamed'}) or another version of it"
        if metadata.get("tokens") != json.dumps(tokens):
            return "its tokens are not the prompt's"
        return None

    def _layers_problem(self, cache: KVCacheLayers, length: int) -> str | None:
        if self._layer_classes is None:
            self._layer_classes = [type(c).__name__ for c in make_prompt_cache(self._model)]
        if [type(c).__name__ for c in cache] != self._layer_classes:
            return "its layers are not this model's"
        if any(getattr(c, "offset", length) != length for c in cache):
            return f"its layers do not hold {length} tokens"
        return None

    def snapshot(self, tokens: list[int], cache: KVCacheLayers, prefix: int) -> KVCacheLayers | None:
        """A copy of what `cache` (holding `tokens`) holds for its first `prefix` tokens, evaluated
        on this thread (the live cache goes on changing); None for caches that cannot be cut there."""
        if prefix > len(tokens):
            return None
        if all(type(c) is KVCache and c.offset == len(tokens) for c in cache):
            # Only the prefix's rows, copied: not the whole (padded) buffer of the conversation.
            layers: KVCacheLayers = [
                KVCache.from_state(
                    (mx.contiguous(c.keys[..., :prefix, :]), mx.contiguous(c.values[..., :prefix, :]), prefix)
                )
                for c in cache
            ]
        elif prefix == len(tokens) or all(c.is_trimmable() for c in cache):
            layers = copy.deepcopy(cache)
            if prefix < len(tokens):
                for c in layers:
                    c.trim(len(tokens) - prefix)
        else:
            return None
        mx.eval([c.state for c in layers])
        return layers

    def write(self, tokens: list[int], cache: KVCacheLayers) -> None:
        """Save `cache` (holding exactly `tokens`) atomically, then keep the folder under its bound.

        Errors (a full disk, a read-only folder) are warned about, never raised: the cache is an
        optimisation, and the response that made it was already delivered.
        """
        path = self._path(tokens)
        metadata = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "tokens": json.dumps(tokens),
            "model": self.model_name,
        }
        written = write_cache_file(
            path,
            lambda temp: save_prompt_cache(str(temp), cache, metadata),
            what="the prompt-cache file",
            fits=lambda temp: temp.stat().st_size <= self.max_bytes,  # larger than the whole bound
            stacklevel=2,
        )
        if written:
            evict(self.folder, self.max_bytes, keep=path)


def _header_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing (truncation, a broken header), if anything."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(8)
        if len(head) < 8:
            return "truncated"
        (header_length,) = struct.unpack("<Q", head)
        if header_length > size - 8:
            return "truncated"
        header = json.loads(file.read(header_length))
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    if 8 + header_length + max(ends, default=0) != size:
        return "truncated"
    return None


def _read_metadata(path: Path) -> dict[str, str] | None:
    try:
        with path.open("rb") as file:
            (header_length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(header_length))
        flat: dict[str, str] = header.get("__metadata__", {})
    except (OSError, ValueError, struct.error, AttributeError):
        return None
    # save_prompt_cache flattens [metadata, classes, scalars]: ours are the "0.*" keys.
    return {key[2:]: value for key, value in flat.items() if key.startswith("0.")}


def _finished_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """The prompt-cache files in `folder` and their status, temporary ones and vanished ones left out."""
    for path in folder.glob(f"*{SUFFIX}"):
        if TEMP_MARK in path.name:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue  # removed meanwhile by another process
        yield path, stat


def list_cache_dir(folder: str | Path) -> list[DiskCacheEntry]:
    """The prompt-cache files in `folder`, most recently used first (temporary files left out)."""
    entries: list[DiskCacheEntry] = []
    for path, stat in _finished_files(Path(folder).expanduser()):
        metadata = _read_metadata(path) or {}
        try:
            tokens: int | None = len(json.loads(metadata["tokens"]))
        except (KeyError, ValueError, TypeError):
            tokens = None
        entries.append(
            DiskCacheEntry(
                path=path,
                nbytes=stat.st_size,
                last_used=stat.st_mtime,
                tokens=tokens,
                model=metadata.get("model") or None,
                fingerprint=metadata.get("fingerprint"),
            )
        )
    entries.sort(key=lambda e: e.last_used, reverse=True)
    return entries


def clear_cache_dir(folder: str | Path) -> int:
    """Delete every prompt-cache file in `folder` (temporary ones included); how many were deleted.

    Other files are left alone: the folder may be shared with something else by mistake.
    """
    deleted = 0
    for path in Path(folder).expanduser().glob(f"*{SUFFIX}"):
        with contextlib.suppress(OSError):
            path.unlink()
            deleted += 1
    return deleted


def evict(folder: Path, max_bytes: int, *, keep: Path | None = None) -> None:
    """Delete the least recently used files until the folder's cache files fit in `max_bytes`
    (and temporary files left by a crashed writer)."""
    remove_stale_temps(folder, SUFFIX)
    files = [(stat.st_mtime, stat.st_size, path) for path, stat in _finished_files(folder)]
    files.sort(key=lambda f: (f[2] == keep, f[0]))  # the file just written goes last
    total = sum(size for _, size, _ in files)
    for _, size, path in files:
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size
