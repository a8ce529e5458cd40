"""Other engines' own parser tests, run against `pydantic_mlx.parsers`: the agreement figure.

The cases (vLLM's, SGLang's, llama.cpp's and mlx-lm's parser tests turned into model outputs)
and their runner live outside this project, in `../shared/peer-parser-tests/` next to the
checkout, or wherever `$PYDANTIC_MLX_PEER_TESTS` points; they are read at run time, never
copied here. This prints the runner's tables (explicit format, `auto`, and streaming in several
chunkings), then every disagreement, marked as documented (a policy listed with its reason in
docs/conformance.md) or not.

    python benchmarks/peer_parsers.py [--only SUBSTR] [--format F]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "conformance.md"


def peer_folder() -> Path:
    """Where the peer cases and runner are: `$PYDANTIC_MLX_PEER_TESTS`, else `../shared/peer-parser-tests`."""
    return Path(os.environ.get("PYDANTIC_MLX_PEER_TESTS") or ROOT.parent / "shared" / "peer-parser-tests")


def load_runner(folder: Path) -> ModuleType:
    """The peers' `run.py` as a module (its cases are read from its own folder)."""
    spec = importlib.util.spec_from_file_location("peer_parser_runner", folder / "run.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(folder / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_disagreements(doc: Path = DOC) -> dict[str, str]:
    """Case id -> reason, from the table rows `| `id` | ... | reason |` of docs/conformance.md."""
    rows: dict[str, str] = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2).split("|")[-1].strip()
    return rows


def run(runner: ModuleType, only: str | None = None, format: str | None = None) -> list[dict[str, Any]]:
    """Every case's verdicts (`{"id", "case", "verdict": {explicit, auto, stream}, ...}`)."""
    cases = runner.load_cases()
    cases = [c for c in cases if (not only or only in c["id"]) and (not format or c["format"] == format)]
    return [{"id": c["id"], "case": c, **runner.run_case(c)} for c in cases]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only cases whose id contains this")
    parser.add_argument("--format", help="run only cases of this format")
    args = parser.parse_args()
    folder = peer_folder()
    if not (folder / "run.py").is_file():
        print(f"no peer parser tests at {folder} (set PYDANTIC_MLX_PEER_TESTS)", file=sys.stderr)
        return 2
    runner = load_runner(folder)
    results = run(runner, args.only, args.format)
    by_source: dict[str, list[dict[str, Any]]] = {}
    by_format: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_source.setdefault(runner.source_repo(r["case"]), []).append(r)
        by_format.setdefault(r["case"]["format"], []).append(r)
    print(runner.table(by_source, "source"))
    print()
    print(runner.table(by_format, "format"))
    documented = documented_disagreements()
    failing = [r for r in results if not all(r["verdict"].values())]
    agree = len(results) - len(failing)
    print(f"\nagree on {agree}/{len(results)} ({agree / max(len(results), 1):.1%}) in every mode")
    undocumented = [r["id"] for r in failing if r["id"] not in documented]
    for r in failing:
        modes = ", ".join(m for m, ok in r["verdict"].items() if not ok)
        why = documented.get(r["id"], "NOT DOCUMENTED")
        print(f"- {r['id']} [{modes}]: {why}")
    print(f"\n{len(failing) - len(undocumented)} disagreements documented, {len(undocumented)} not")
    return 1 if undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
