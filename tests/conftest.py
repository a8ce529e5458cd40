"""Session fixtures: the tiny demo model (built once per session), the opt-in real model, asyncio."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) measures the machine, not the code: on a loaded 2-core
# runner one example of a model-backed property can take a second, and the test fails as "flaky".
# Speed is measured in benchmarks/, never by a test.
settings.register_profile("pydantic-mlx", deadline=None)
settings.load_profile("pydantic-mlx")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio (MLXModel's streams hand text over to an asyncio loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def model_cache_dir() -> Iterator[Path | None]:
    """Where the session's models are cached: a fresh folder in CI, else the user's cache (fast reruns)."""
    if not os.environ.get("CI"):
        yield None
        return
    # Not under pytest's basetemp: pytest prunes old basetemps, which may belong to a running session.
    folder = Path(tempfile.mkdtemp(prefix="pydantic-mlx-cache-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_model_path(model_cache_dir: Path | None) -> Path:
    """The trained demo model folder (`pydantic_mlx.demo.build_demo_model`)."""
    from pydantic_mlx.demo import build_demo_model

    return build_demo_model(model_cache_dir)


@pytest.fixture(scope="session")
def random_model_path(model_cache_dir: Path | None) -> Path:
    """The demo model's tokenizer and template with untrained, seeded random weights (no training: fast)."""
    from pydantic_mlx.demo import build_random_model

    return build_random_model(model_cache_dir)


@pytest.fixture(scope="session")
def random_tokenizer(random_model_path: Path) -> Any:
    """The random model's mlx-lm tokenizer (the demo model's), loaded once."""
    from mlx_lm import load

    return load(str(random_model_path))[1]


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    """The real Qwen2.5-Coder-0.5B-Instruct folder named by `$PYDANTIC_MLX_REAL_MODEL`; skipped when absent."""
    folder = os.environ.get("PYDANTIC_MLX_REAL_MODEL")
    if not folder or not (Path(folder) / "config.json").is_file():
        pytest.skip("set PYDANTIC_MLX_REAL_MODEL to a Qwen2.5-Coder-0.5B-Instruct MLX folder to run")
    return Path(folder)
