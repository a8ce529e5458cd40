"""`pydantic-mlx demo`: a real agent run with real tools on the tiny model."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from pydantic_mlx import MLXModel
from pydantic_mlx.cli import BROKEN_PIPE, main


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


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pydantic_mlx", *args]


def test_version_and_python_dash_m(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pydantic-mlx {version('pydantic-mlx')}"
    done = subprocess.run(_command("--version"), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"pydantic-mlx {version('pydantic-mlx')}")


def test_top_level_help_describes_the_tool_not_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "function per subcommand" not in out
    assert "Run local MLX models as PydanticAI models" in out
    assert "models" in out


def test_models_lists_the_short_names_and_marks_those_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants

    snapshot = tmp_path / "models--mlx-community--Qwen2.5-Coder-0.5B-Instruct-4bit" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(MLXModel.list_aliases())
    assert lines[0].split() == [
        "Qwen2.5-Coder-0.5B",
        "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit",
        "downloaded",
    ]
    assert lines[1].split() == ["Qwen2.5-Coder-1.5B", "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"]


def test_parse_into_a_reader_that_stops_early_prints_no_traceback(tmp_path: Path) -> None:
    output = tmp_path / "output.txt"
    output.write_text('<tool_call>{"name": "a", "arguments": {}}</tool_call>\n' * 5000)
    with subprocess.Popen(
        _command("parse", str(output)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().strip() == "{"
        process.stdout.close()  # what `| head -1` does
        err = process.stderr.read()
        assert process.wait(timeout=60) == BROKEN_PIPE
    assert err == ""


def test_parse_names_the_tools_file_when_it_is_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "output.txt"
    output.write_text("hello")
    tools = tmp_path / "tools.json"
    tools.write_text("[")
    assert main(["parse", str(output), "--tools", str(tools)]) == 2
    assert capsys.readouterr().err.startswith(f"the --tools file {tools} is not valid JSON:")
    assert main(["parse", str(output), "--tools", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("cannot read the --tools file: ")
    assert main(["parse", str(tmp_path / "missing.txt")]) == 2
    assert capsys.readouterr().err.startswith("cannot read the model output: ")


def test_parse_names_the_tools_file_that_nests_too_deeply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "output.txt"
    output.write_text("hello")
    tools = tmp_path / "tools.json"
    tools.write_text("[" * 100_000)
    assert main(["parse", str(output), "--tools", str(tools)]) == 2
    assert capsys.readouterr().err == f"the --tools file {tools} nests too deeply to read\n"


def test_model_options_name_every_kind_of_model(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("eval", "follow"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "short name" in capsys.readouterr().out, command
