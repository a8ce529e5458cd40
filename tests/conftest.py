"""Session fixtures: the tiny demo model (built once per session) and the opt-in real model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    # CI proves the build from scratch; locally the user's cache makes reruns instant.
    return tmp_path_factory.getbasetemp() / "pydantic-mlx-cache" if os.environ.get("CI") else None


@pytest.fixture(scope="session")
def demo_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained demo model folder (`pydantic_mlx.demo.build_demo_model`)."""
    from pydantic_mlx.demo import build_demo_model

    return build_demo_model(_cache_dir(tmp_path_factory))


@pytest.fixture(scope="session")
def random_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model's tokenizer and template with untrained, seeded random weights (no training: fast)."""
    from pydantic_mlx.demo import build_random_model

    return build_random_model(_cache_dir(tmp_path_factory))


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    """The real Qwen2.5-Coder-0.5B-Instruct folder named by `$PYDANTIC_MLX_REAL_MODEL`; skipped when absent."""
    folder = os.environ.get("PYDANTIC_MLX_REAL_MODEL")
    if not folder or not (Path(folder) / "config.json").is_file():
        pytest.skip("set PYDANTIC_MLX_REAL_MODEL to a model folder (see /work/shared/real-model/) to run")
    return Path(folder)
