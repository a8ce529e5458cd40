"""No committed file names a path of one machine (a virtualenv in /tmp, a home folder, a work tree)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MACHINE_PATH = re.compile(
    r"/tmp/venv|/tmp/qwen\w*|/work/(?:shared|main|wt\d+)|/root/|/home/[a-z_][\w-]*/|/Users/[A-Za-z][\w.-]*/"
)
"""Paths that only exist on the machine a file was written on. Model outputs quoted as test data
(`/work/src/entry.c` a model wrote) are not of this kind and do not match."""


def _committed_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the committed files are unknown")
    return [ROOT / name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


def test_no_committed_file_names_a_machine_path() -> None:
    found: list[str] = []
    for path in _committed_text_files():
        if path == Path(__file__).resolve():
            continue  # the patterns and their examples below
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_the_pattern_catches_what_it_is_for() -> None:
    for path in ("/tmp/venv/bin/pytest", "/work/shared/real-model/", "/home/ann/.cache/x", "/Users/bob/m/"):
        assert MACHINE_PATH.search(path), path
    for path in ("/work/src/entry.c", "/tmp/poc", "~/.cache/pydantic-mlx", ".venv/bin/pytest"):
        assert not MACHINE_PATH.search(path), path
