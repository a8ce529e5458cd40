"""Where pydantic-mlx keeps what it builds once and reuses across processes, and the warning for a
file there that cannot be used.

One root, `$PYDANTIC_MLX_CACHE`, else `~/.cache/pydantic-mlx`, with a folder per kind of file: the
demo models, `prompt-cache/` (`MLXModel(prompt_cache_dir=True)`), `llguidance-tokenizers/`
(constrained decoding's token tables). Pure standard library: importable without MLX.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DiskCacheWarning", "cache_root"]


def cache_root() -> Path:
    """`$PYDANTIC_MLX_CACHE`, else `~/.cache/pydantic-mlx`."""
    configured = os.environ.get("PYDANTIC_MLX_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "pydantic-mlx"


class DiskCacheWarning(UserWarning):
    """A file of a disk cache was unusable (truncated, corrupt, another model's or tokenizer's, or
    unwritable): ignored, and built again."""
