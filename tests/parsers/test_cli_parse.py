"""`pydantic-mlx parse`: the parse result of a file or standard input, as JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pydantic_mlx.cli import main

OUTPUT = 'Reading.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>'


def test_parse_file_with_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out.txt").write_text(OUTPUT)
    (tmp_path / "tools.json").write_text(json.dumps([{"type": "function", "function": {"name": "other"}}]))
    assert main(["parse", str(tmp_path / "out.txt"), "--tools", str(tmp_path / "tools.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["content"] == "Reading.\n"
    assert printed["calls"] == [{"name": "read_file", "arguments": {"path": "a.txt"}, "id": None}]
    assert [e["kind"] for e in printed["errors"]] == ["unknown_tool"]


def test_parse_stdin_truncated(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(OUTPUT[:-5]))
    assert main(["parse", "--truncated", "--format", "hermes"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["calls"] == []
    assert [e["kind"] for e in printed["errors"]] == ["truncated_call"]


@pytest.mark.parametrize("args", [["--format", "nope"], ["--tools", "/nonexistent.json"]])
def test_parse_bad_arguments_exit_2(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out.txt").write_text(OUTPUT)
    assert main(["parse", str(tmp_path / "out.txt"), *args]) == 2
    assert capsys.readouterr().err
