"""The CLI on hostile input (issue 21): a message and exit 2, never a traceback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from pydantic_mlx.cli import main


@pytest.mark.parametrize(
    "tools_json",
    [
        "[" * 100_000,  # deeper than json can read
        # readable, but a schema thousands deep
        '[{"type": "function", "function": {"name": "f", "parameters": '
        + '{"type": "object", "properties": {"a": ' * 3000
        + "{}"
        + "}}" * 3000
        + "}}]",
    ],
    ids=["unreadable", "deep-schema"],
)
def test_parse_with_deeply_nested_tools_exits_2(
    tools_json: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(tools_json)
    monkeypatch.setattr(
        "sys.stdin", io.StringIO('<tool_call>{"name": "f", "arguments": {"a": {}}}</tool_call>')
    )
    assert main(["parse", "--format", "hermes", "--tools", str(tools)]) == 2  # was a RecursionError traceback
    assert "nest" in capsys.readouterr().err


def test_demo_with_a_cache_dir_that_is_a_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    assert main(["demo", "--cache-dir", str(a_file)]) == 2  # was a FileExistsError traceback
    assert "cannot use the cache folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_demo_with_an_unwritable_cache_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.chmod(0o500)
    try:
        assert main(["demo", "--cache-dir", str(tmp_path / "cache")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "cannot use the cache folder" in capsys.readouterr().err


def test_demo_with_a_cache_dir_that_cannot_exist_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing can be made under /proc, root or not (an unwritable path for every user).
    assert main(["demo", "--cache-dir", "/proc/pydantic-mlx-cache"]) == 2
    assert "cannot use the cache folder" in capsys.readouterr().err
