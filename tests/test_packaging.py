"""Packaging: what imports without MLX, the typed marker, and the console script."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import entry_points, version
from pathlib import Path

import pydantic_mlx

ROOT = Path(__file__).resolve().parent.parent

BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Refuse())
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_parsers_import_with_mlx_blocked() -> None:
    code = BLOCKER + "import pydantic_mlx.parsers\nprint('imported')"
    result = run_python(code, "mlx,mlx_lm")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_parsers_import_without_pydantic_ai_at_module_level() -> None:
    code = BLOCKER + "import pydantic_mlx.parsers\nprint('imported')"
    result = run_python(code, "mlx,mlx_lm,pydantic_ai")
    assert result.returncode == 0, result.stderr


def test_importing_the_package_does_not_import_mlx() -> None:
    code = "import sys, pydantic_mlx\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_blocker_really_blocks() -> None:
    result = run_python(BLOCKER + "import mlx.core", "mlx")
    assert result.returncode != 0
    assert "blocked in this test" in result.stderr


def test_package_is_typed_and_versioned() -> None:
    assert (Path(pydantic_mlx.__file__).parent / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pydantic_mlx.__version__ == pyproject["project"]["version"] == version("pydantic-mlx")


def test_console_script_is_declared_and_runs() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "pydantic-mlx"]
    assert script.value == "pydantic_mlx.cli:main"
    executable = Path(sys.executable).parent / "pydantic-mlx"
    result = subprocess.run([str(executable), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout
