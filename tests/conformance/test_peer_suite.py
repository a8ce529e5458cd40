"""Other engines' parser tests (`benchmarks/peer_parsers.py`): every disagreement is documented.

The cases live outside the project (`../shared/peer-parser-tests/`, or `$PYDANTIC_MLX_PEER_TESTS`)
and are read at run time; where they are absent this is skipped. Every case we disagree on must
be listed in docs/conformance.md with its reason, and a listed case that now agrees must leave
the list, so the documented figure is the measured one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_parsers", ROOT / "benchmarks" / "peer_parsers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_disagreement_with_peer_parser_tests_is_documented() -> None:
    bench = _benchmark()
    folder = bench.peer_folder()
    if not (folder / "run.py").is_file():
        pytest.skip(f"no peer parser tests at {folder} (set PYDANTIC_MLX_PEER_TESTS)")
    results = bench.run(bench.load_runner(folder))
    failing = {r["id"] for r in results if not all(r["verdict"].values())}
    documented = set(bench.documented_disagreements())
    assert not failing - documented, f"undocumented disagreements: {sorted(failing - documented)}"
    agreeing = documented & {r["id"] for r in results} - failing
    assert not agreeing, f"documented as disagreements but now agree: {sorted(agreeing)}"
