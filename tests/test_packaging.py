"""Packaging: what imports without MLX, the typed marker, and the console script."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

import pydantic_mlx
from pydantic_mlx import _install

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


class _Distribution:
    def __init__(self, direct_url: str | None) -> None:
        self._direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self._direct_url


@pytest.mark.parametrize(
    ("direct_url", "hint"),
    [
        (
            '{"url": "file:///src/pydantic-mlx", "dir_info": {"editable": true}}',
            'pip install -e ".[eval]" (in your pydantic-mlx checkout)',
        ),
        (
            '{"url": "file:///src/pydantic-mlx", "dir_info": {}}',
            'pip install ".[eval]" (in your pydantic-mlx checkout)',
        ),
        (None, 'pip install "pydantic-mlx[eval]"'),
        (
            '{"url": "https://example.org/pydantic_mlx-0.1.whl", "archive_info": {}}',
            'pip install "pydantic-mlx[eval]"',
        ),
    ],
)
def test_install_hints_match_how_the_package_was_installed(
    direct_url: str | None, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_install, "distribution", lambda name: _Distribution(direct_url))
    assert _install.install_hint("eval") == hint


def test_this_checkout_is_an_editable_install() -> None:
    # How README.md and CI install it: the hints of this test run are the checkout's.
    assert (
        _install.install_hint("constrained")
        == 'pip install -e ".[constrained]" (in your pydantic-mlx checkout)'
    )


def test_importing_eval_without_the_extra_says_how_to_install_it() -> None:
    absent = BLOCKER.replace(
        'raise ImportError(f"{name} is blocked in this test")', "raise ModuleNotFoundError(name, name=name)"
    )
    result = run_python(absent + "import pydantic_mlx.eval", "pydantic_evals")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ModuleNotFoundError: pydantic_mlx.eval needs pydantic-evals, which the eval extra installs: "
        'pip install -e ".[eval]" (in your pydantic-mlx checkout)'
    )


def test_every_extra_the_files_tell_you_to_install_exists() -> None:
    # pip installs `.[typo]` with only a warning, so a hint naming an extra that does not exist
    # leaves the reader without what the hint was for.
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named: dict[str, str] = {}
    for path in [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("*/**/*.py")]:
        if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue  # .venv, and local folders git ignores (.gpu/ of the GPU recipe)
        text = path.read_text(encoding="utf-8")
        for extras in re.findall(r"""(?:pydantic-mlx|["' ]\.)\[([\w,-]+)\]""", text):
            for extra in extras.split(","):
                named.setdefault(extra, str(path.relative_to(ROOT)))
    assert {"eval", "dev", "bench"} <= set(named)
    assert {extra: where for extra, where in named.items() if extra not in declared} == {}


@pytest.mark.parametrize("script", ["concurrency.py", "conversation.py"])
def test_a_server_benchmark_without_its_client_says_which_extra_before_loading(script: str) -> None:
    # Without openai these scripts loaded the model, then stopped on a bare ModuleNotFoundError.
    code = BLOCKER + (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, '--model', 'no-such-model-folder/x/y']\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        f"runpy.run_path({str(ROOT / 'benchmarks' / script)!r}, run_name='__main__')\n"
    )
    result = run_python(code, "openai")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        'pip install -e ".[bench]" in your pydantic-mlx checkout, or pass --no-server'
    )
