"""pydantic-mlx: local MLX models as PydanticAI models, with tool calls that work.

`MLXModel` is imported lazily so that `pydantic_mlx.parsers` (and this package) import without MLX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from ._cache_dir import DiskCacheWarning
    from ._distributed import DistributedGroupError
    from .model import MLXModel, MLXModelSettings

__all__ = ["DiskCacheWarning", "DistributedGroupError", "MLXModel", "MLXModelSettings", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("MLXModel", "MLXModelSettings"):
        from . import model

        return getattr(model, name)
    if name == "DiskCacheWarning":
        from ._cache_dir import DiskCacheWarning

        return DiskCacheWarning
    if name == "DistributedGroupError":
        from ._distributed import DistributedGroupError

        return DistributedGroupError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
