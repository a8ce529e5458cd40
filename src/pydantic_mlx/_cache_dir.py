"""Where pydantic-mlx keeps what it builds once and reuses across processes, how a file there is
written, and the warning for a file there that cannot be used.

One root, `$PYDANTIC_MLX_CACHE`, else `~/.cache/pydantic-mlx`, with a folder per kind of file: the
demo models, `prompt-cache/` (`MLXModel(prompt_cache_dir=True)`), `llguidance-tokenizers/`
(constrained decoding's token tables). Pure standard library: importable without MLX.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "STALE_TEMP_SECONDS",
    "TEMP_MARK",
    "DiskCacheWarning",
    "cache_root",
    "discard_unusable",
    "remove_stale_temps",
    "write_cache_file",
]

TEMP_MARK = ".tmp-"
"""In the names of files being written (never read; stale ones are removed after `STALE_TEMP_SECONDS`)."""
STALE_TEMP_SECONDS = 3600.0


def cache_root() -> Path:
    """`$PYDANTIC_MLX_CACHE`, else `~/.cache/pydantic-mlx`."""
    configured = os.environ.get("PYDANTIC_MLX_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "pydantic-mlx"


class DiskCacheWarning(UserWarning):
    """A file of a disk cache was unusable (truncated, corrupt, another model's or tokenizer's, or
    unwritable): ignored, and built again."""


def write_cache_file(
    path: Path,
    write: Callable[[Path], object],
    *,
    what: str,
    fits: Callable[[Path], bool] | None = None,
    stacklevel: int = 1,
) -> bool:
    """Write the cache file `path` whole or not at all; whether it was written.

    `write(temp)` writes a temporary file beside `path` (what it returns is ignored): its name has
    `TEMP_MARK`, a process id and a random part, and ends in `path`'s suffix, which some writers
    append when it is missing. It is renamed into place (`os.replace`), so a reader never sees half
    a file, whoever writes at the same time, unless `fits(temp)` says it is not to be kept. An
    `OSError` (a full disk, a read-only folder, a file where the folder should be) is warned about as
    a `DiskCacheWarning` that names `what`, at `stacklevel` as `warnings.warn` counts it from the
    caller, and never raised: a cache is an optimisation. The temporary file never stays behind.
    """
    temp = path.with_name(f"{path.stem}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temp)
        if fits is not None and not fits(temp):
            return False
        os.replace(temp, path)
        return True
    except OSError as error:
        warnings.warn(f"could not write {what} {path}: {error}", DiskCacheWarning, stacklevel=stacklevel + 1)
        return False
    finally:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


def discard_unusable(path: Path, problem: object, *, what: str, stacklevel: int = 1) -> None:
    """Warn that the cache file `path` cannot be used (`problem` says why) and delete it, so that it
    is built and written again. The warning is a `DiskCacheWarning` naming `what`, at `stacklevel`
    as `warnings.warn` counts it from the caller."""
    warnings.warn(
        f"ignoring {what} {path} ({problem}); it is deleted and will be written again",
        DiskCacheWarning,
        stacklevel=stacklevel + 1,
    )
    with contextlib.suppress(OSError):
        path.unlink()


def remove_stale_temps(folder: Path, suffix: str = "") -> None:
    """Delete the temporary files ending in `suffix` that a writer which crashed left in `folder`
    (those older than `STALE_TEMP_SECONDS`: a younger one may be another writer's, mid-write)."""
    now = time.time()
    for temp in folder.glob(f"*{TEMP_MARK}*{suffix}"):
        with contextlib.suppress(OSError):
            if now - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                temp.unlink()
