"""`pydantic-mlx eval` on the tiny demo model: the scores it must get, the report, broken configurations.

The demo model was trained on exactly three of the built-in tool cases (their prompts, tools and
sandbox files are the demo scenarios'), and on nothing else in the suite, so its scores are known:
it passes `read_file` and `read_config`; `list_files` only when its Qwen3-Coder XML call is read
(`tool_format=auto`; the ChatML template detects `hermes`, which cannot read it and asks for a
retry); every other case fails.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_ai.messages import ModelResponse, ToolCallPart

from pydantic_mlx.cli import EVAL_INTERRUPTED, main
from pydantic_mlx.eval import ConfigResult, EvalConfig, builtin_suite, load_suite, read_report, run_eval

TRAINED = {"read_file", "read_config"}


@pytest.fixture(scope="module")
def results(demo_model_path: Path) -> list[ConfigResult]:
    base = EvalConfig(str(demo_model_path))
    return asyncio.run(run_eval([base, base.varied("tool_format=auto"), base.varied("constrained")]))


def test_the_tiny_model_scores_what_it_was_trained_for(results: list[ConfigResult]) -> None:
    detected, auto, constrained = results
    assert {r.case.name for r in detected.cases if r.passed} == TRAINED
    assert {r.case.name for r in auto.cases if r.passed} == TRAINED | {"list_files"}
    assert (
        detected.passed(),
        detected.passed("tools"),
        detected.passed("code"),
        detected.passed("reasoning"),
    ) == (
        2,
        2,
        0,
        0,
    )
    assert (auto.score(), auto.score("tools")) == (3 / 14, 3 / 7)
    # Constrained decoding keeps the trained calls (they are valid) and reads the same format.
    assert {r.case.name for r in constrained.cases if r.passed} == TRAINED
    assert constrained.config.constrained and constrained.config.label.endswith("[constrained]")
    assert all(r.tokens_per_second > 0 for r in results)


def test_a_call_the_format_cannot_read_is_not_scored_as_a_call(results: list[ConfigResult]) -> None:
    # With the detected hermes format, the Qwen3-Coder XML inside `<tool_call>` is unreadable: it
    # goes back to the model for a retry (a call whose arguments are the raw text), never runs,
    # and does not count as the expected call.
    detected, auto, _ = results
    unread = next(r for r in detected.cases if r.case.name == "list_files")
    assert unread.outcome is not None
    first = next(m for m in unread.outcome.messages if isinstance(m, ModelResponse))
    [call] = [p for p in first.parts if isinstance(p, ToolCallPart)]
    assert call.tool_name == "list_files"
    assert isinstance(call.args, str) and "<function=list_files>" in call.args
    verdicts = {check.name: (check.passed, check.reason) for check in unread.checks}
    passed, reason = verdicts["ToolCallsMade"]
    assert not passed and reason is not None and reason.startswith("missing list_files({}); made ")
    parsed = next(r for r in auto.cases if r.case.name == "list_files")
    assert parsed.outcome is not None
    assert parsed.outcome.answer == "The project has README.md, pyproject.toml and setup.cfg."


def test_tool_cases_ran_real_tools_in_the_sandbox(results: list[ConfigResult]) -> None:
    read = next(r for r in results[0].cases if r.case.name == "read_file")
    assert read.outcome is not None
    assert read.outcome.answer == "README.md says: Demo, a tiny project."
    assert read.outcome.files_after == {
        "README.md": "# Demo\nA tiny project.",
        "pyproject.toml": '[project]\nname = "demo"\nversion = "0.1.0"',
        "setup.cfg": "[metadata]\nname = demo",
    }
    assert all(check.passed for check in read.checks) and len(read.checks) == 3


def test_the_command_prints_the_table_and_writes_a_report_with_every_case(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out" / "report.html"
    argv = [
        "eval",
        "--model",
        str(demo_model_path),
        "--compare",
        "tool_format=auto,name=auto",
        "--report",
        str(report),
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "1/14 tools/read_file" in err and "14/14 reasoning/youngest" in err  # progress
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["demo-model"][1:9] == ["14%", "(2/14)", "29%", "(2/7)", "0%", "(0/3)", "0%", "(0/4)"]
    assert rows["auto"][1:3] == ["21%", "(3/14)"]
    assert rows["tools/list_files"][1:] == ["FAIL", "pass"]
    assert f"Report with every transcript: {report}" in out
    page = report.read_text(encoding="utf-8")
    summaries = re.findall(r"<summary>(.*?) — ", page)
    assert len(summaries) == 28 and set(summaries) == {
        "read_file", "read_config", "list_files", "write_file", "run_command", "chain_read_write",
        "chain_run_read", "is_palindrome", "word_counts", "flatten", "multiply", "unit_price",
        "trip_minutes", "youngest",
    }  # fmt: skip
    text = html.unescape(page)
    assert 'model tool call</div><pre>read_file({"path":"README.md"})' in text
    assert "tool result · read_file</div><pre># Demo\nA tiny project." in text
    assert "model text</div><pre>README.md says: Demo, a tiny project." in text


SUITE = """
cases:
  - name: open_setup           # trained: an unknown tool first, then read_file after the retry prompt
    category: tools
    prompt: Open setup.cfg.
    tools: [read_file, list_files]
    files: {README.md: "# Demo\\nA tiny project.", pyproject.toml: "[project]\\nname = \\"demo\\"\\nversion = \\"0.1.0\\"", setup.cfg: "[metadata]\\nname = demo"}
    expect:
      calls: [{tool: read_file, args: {path: setup.cfg}}]
      answer_uses_result: [demo]
  - name: wrong_file           # the model reads README.md, not setup.cfg
    category: tools
    prompt: What does README.md say?
    tools: [read_file, list_files]
    files: {README.md: "# Demo\\nA tiny project."}
    expect:
      calls: [{tool: read_file, args: {path: setup.cfg}}]
  - name: not_from_a_tool      # the answer says 'project', but no tool returned it
    category: other
    prompt: Say hello.
    tools: [read_file, list_files]
    expect:
      answer_uses_result: [project]
"""


def test_a_custom_suite_from_yaml(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert [c.name for c in load_suite(suite)] == ["open_setup", "wrong_file", "not_from_a_tool"]
    report = tmp_path / "custom.html"
    assert (
        main(["eval", "--model", str(demo_model_path), "--suite", str(suite), "--report", str(report)]) == 0
    )
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["demo-model"][1:7] == ["33%", "(1/3)", "50%", "(1/2)", "0%", "(0/1)"]
    assert [rows[name][1] for name in ("tools/open_setup", "tools/wrong_file", "other/not_from_a_tool")] == [
        "pass",
        "FAIL",
        "FAIL",
    ]
    page = html.unescape(report.read_text(encoding="utf-8"))
    assert "open_file" in page  # the unknown tool call and its retry are in the transcript
    assert "no tool result held ['project']" in page


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_broken_configurations_give_a_clear_error(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(demo_model_path)
    missing = tmp_path / "no-such-model"
    assert f"model folder {str(missing)!r} does not exist" in _error(
        ["eval", "--model", str(missing)], capsys
    )
    assert "is not an MLX model folder: it has no config.json" in _error(
        ["eval", "--model", str(tmp_path)], capsys
    )
    no_adapter = tmp_path / "no-adapter"
    assert f"adapter_path {str(no_adapter)!r} does not exist" in _error(
        ["eval", "--model", model, "--adapter", str(no_adapter)], capsys
    )
    bad_adapter = tmp_path / "bad-adapter"
    bad_adapter.mkdir()
    (bad_adapter / "adapter_config.json").write_text('{"fine_tune_type": "lora"}')
    err = _error(["eval", "--model", model, "--adapter", str(bad_adapter)], capsys)
    assert "+bad-adapter: adapter_path" in err
    assert "is not a LoRA adapter folder: it has no adapters.safetensors" in err
    assert "unknown tool_format 'nope'" in _error(
        ["eval", "--model", model, "--compare", "tool_format=nope"], capsys
    )
    assert "unknown key 'colour'" in _error(["eval", "--model", model, "--compare", "colour=red"], capsys)
    twice = ["--compare", "tool_format=hermes", "tool_format=hermes"]
    assert "several configurations are called" in _error(["eval", "--model", model, *twice], capsys)
    assert "cannot read suite" in _error(
        ["eval", "--model", model, "--suite", str(tmp_path / "x.json")], capsys
    )


SUITE_ORDER = [case.name for case in builtin_suite()]


def _summaries(report: Path) -> list[str]:
    return re.findall(r"<summary>(.*?) — ", report.read_text(encoding="utf-8"))


def _note(report: Path) -> str | None:
    found = re.search(r'<p class="note">(.*?)</p>', report.read_text(encoding="utf-8"))
    return html.unescape(found.group(1)) if found else None


def test_an_interrupted_run_keeps_what_finished_and_resume_runs_only_the_rest(
    demo_model_path: Path, tmp_path: Path
) -> None:
    config = EvalConfig(str(demo_model_path))
    report = tmp_path / "report.html"
    seen: dict[str, object] = {}

    async def interrupted_after_two() -> None:
        def progress(message: str) -> None:
            if " 2/14 " in message:  # the 2nd case is scored and saved: read the reports, then Ctrl-C
                seen["status"] = read_report(report.with_suffix(".json")).status
                seen["note"] = _note(report)
                runner.cancel()

        runner = asyncio.ensure_future(run_eval([config], report=report, progress=progress))
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(interrupted_after_two())
    assert seen == {
        "status": "running",
        "note": "Partial: 2 of 14 cases finished; the run had not ended when this was written.",
    }
    run = read_report(report.with_suffix(".json"))
    assert (run.status, run.finished_cases, run.total_cases) == ("interrupted", 2, 14)
    assert [r.case.name for r in run.results[0].cases] == ["read_file", "read_config"]
    assert all(r.passed for r in run.results[0].cases)
    kept = run.results[0].cases[0].outcome
    assert kept is not None and kept.answer == "README.md says: Demo, a tiny project."
    assert _note(report) == "Interrupted after 2 of 14 cases."
    assert _summaries(report) == ["read_file", "read_config"]
    data = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert (data["finished_cases"], data["results"][0]["passed"], data["results"][0]["count"]) == (2, 2, 2)

    messages: list[str] = []
    resumed = asyncio.run(run_eval([config], report=report, resume=True, progress=messages.append))
    assert messages[0].endswith("] 2/14 kept from the report")
    ran = [re.findall(r" [a-z]+/(\w+): ", m)[0] for m in messages[1:]]
    assert ran == SUITE_ORDER[2:]  # the two kept cases did not run again
    assert {r.case.name for r in resumed[0].cases if r.passed} == TRAINED
    assert [r.case.name for r in resumed[0].cases] == SUITE_ORDER
    assert resumed[0].cases[0].outcome == kept
    assert read_report(report.with_suffix(".json")).status == "finished"
    assert _note(report) is None and len(_summaries(report)) == 14


def test_ctrl_c_stops_the_command_with_the_report_of_what_finished(
    demo_model_path: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    command = [
        sys.executable,
        "-c",
        # SIGINT handled as in a terminal, even when this test runs in a background job that ignores it
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from pydantic_mlx.cli import main; sys.exit(main(sys.argv[1:]))",
        "eval",
        "--model",
        str(demo_model_path),
        "--report",
        str(report),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    assert process.stderr is not None
    for line in process.stderr:
        if " 2/14 " in line:
            process.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == EVAL_INTERRUPTED == 130
    assert "Traceback" not in err
    run = read_report(report.with_suffix(".json"))
    # The signal lands while a later case runs; whatever finished before it is kept, nothing else.
    assert run.status == "interrupted" and 2 <= run.finished_cases < 14
    assert [r.case.name for r in run.results[0].cases] == SUITE_ORDER[: run.finished_cases]
    note = f"Interrupted after {run.finished_cases} of 14 cases."
    assert _note(report) == note
    assert f"{note} Report so far: {report}" in out
    assert "Run the same command with --resume to continue." in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["tools/read_file"][1] == "pass" and f"tools/{SUITE_ORDER[run.finished_cases]}" not in rows

    resumed = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{run.finished_cases}/14 kept from the report" in resumed.stderr
    assert "1/14 tools/read_file" not in resumed.stderr
    assert read_report(report.with_suffix(".json")).finished_cases == 14
    assert "14% (2/14)" in resumed.stdout


def test_resume_refuses_a_missing_report_or_other_settings(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    argv = ["eval", "--model", str(demo_model_path), "--report", str(report), "--resume"]
    assert "cannot read report" in _error(argv, capsys)
    assert not report.exists()
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert (
        main(["eval", "--model", str(demo_model_path), "--suite", str(suite), "--report", str(report)]) == 0
    )
    capsys.readouterr()
    assert "was run with max_tokens 512, not 64" in _error([*argv, "--max-tokens", "64"], capsys)
    assert "JSON twin" in _error(
        ["eval", "--model", str(demo_model_path), "--report", str(tmp_path / "r.json")], capsys
    )
