"""`pydantic-mlx demo`: a real agent run with real tools on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydantic_mlx.cli import main


def test_demo_runs_agents_that_call_tools_and_use_the_results(
    demo_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--cache-dir", str(demo_model_path.parent)]) == 0
    out, err = capsys.readouterr()
    assert f"Using cached model {demo_model_path}" in err
    assert 'tool call   read_file({"path":"README.md"})' in out
    assert "result      # Demo\\nA tiny project." in out
    assert "answer      README.md says: Demo, a tiny project." in out
    # The second run's call was written as a bare ```json fence, and still became a tool call.
    assert 'tool call   read_file({"path":"pyproject.toml"})' in out
    assert "answer      The project is named demo, version 0.1.0." in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_eval_refuses_a_max_tokens_below_one(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every request would fail and the model be scored FAIL on every case, exit 0.
    report = tmp_path / "report.html"
    assert main(["eval", "--model", str(demo_model_path), "--max-tokens", "0", "--report", str(report)]) == 2
    assert "--max-tokens must be at least 1" in capsys.readouterr().err
    assert not report.exists()


def test_parse_with_a_tools_entry_whose_function_is_not_an_object_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": "read_file"}]))
    monkeypatch.setattr(
        "sys.stdin", io.StringIO('<tool_call>{"name": "read_file", "arguments": {}}</tool_call>')
    )
    assert main(["parse", "--tools", str(tools)]) == 2  # was an AttributeError traceback, exit 1
    assert "bad --tools" in capsys.readouterr().err
