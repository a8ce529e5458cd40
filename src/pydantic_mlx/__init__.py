"""pydantic-mlx: local MLX models as PydanticAI models, with tool calls that work.

`MLXModel` is imported lazily so that `pydantic_mlx.parsers` (and this package) import without MLX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from .model import MLXModel

__all__ = ["MLXModel", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "MLXModel":
        from .model import MLXModel

        return MLXModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
