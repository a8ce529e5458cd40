"""The whole loop on the tiny demo model: capture → export → `mlx_lm.lora` → eval, and the score moves.

With the tool-call format detected from its ChatML template (hermes), the demo model fails the
`list_files` case: it writes the call in Qwen3-Coder XML, which hermes cannot read. With
`tool_format=auto` the same model passes it. The traces of that variant are exported: the call is
a structured `tool_calls` entry, so the template renders it in its own hermes JSON. A LoRA of 20
steps on those records, and the detected format now reads the model's call. These are the
commands of docs/finetune.md, run as written there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pydantic_mlx.cli import main
from pydantic_mlx.eval import read_report

TRAINED = {"read_file", "read_config"}
LORA = ["--mask-prompt", "--num-layers", "1", "--batch-size", "6", "--iters", "20", "--learning-rate", "1e-3"]
"""docs/finetune.md: every record in each step (6), 20 steps; a higher rate or fewer steps unlearns the rest."""


def _passed(report: Path) -> dict[str, set[str]]:
    """The cases each configuration of a report passed."""
    run = read_report(report.with_suffix(".json"))
    return {r.config.label: {c.case.name for c in r.cases if c.passed} for r in run.results}


def test_traces_of_a_passing_variant_teach_the_model_the_case_it_failed(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(demo_model_path)
    work = tmp_path

    # 1. Capture: the model as detected, and the variant that reads its XML call.
    before = work / "before.html"
    argv = ["eval", "--model", model, "--compare", "tool_format=auto", "--save-traces", str(work / "traces")]
    assert main([*argv, "--report", str(before)]) == 0
    assert _passed(before) == {"demo-model": TRAINED, "demo-model [auto]": TRAINED | {"list_files"}}

    # 2. Export the variant's passing runs, one record per response, round-trip checked.
    data = work / "data"
    argv = ["export", str(work / "traces" / "demo-model-auto"), "--out", str(data / "train.jsonl")]
    assert main([*argv, "--only-passed", "--per-request", "--model", model]) == 0
    assert "3 of 14 traces exported (passed and round-trip checked)\n6 records" in capsys.readouterr().out
    records = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    calls = [m["tool_calls"][0]["function"] for r in records for m in r["messages"][-1:] if "tool_calls" in m]
    assert {"name": "list_files", "arguments": {"directory": "."}} in calls
    shutil.copy(data / "train.jsonl", data / "valid.jsonl")  # mlx_lm.lora --train needs one

    # 3. Train a LoRA adapter.
    adapter = work / "adapters"
    command = [sys.executable, "-m", "mlx_lm", "lora", "--model", model, "--train", "--data", str(data)]
    command += ["--adapter-path", str(adapter), *LORA, "--steps-per-eval", "1000", "--val-batches", "1"]
    env = {**os.environ, "NO_COLOR": "1"}
    trained = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]

    # 4. Compare: the base model is unchanged; the adapter passes the case the base failed.
    after = work / "after.html"
    argv = ["eval", "--model", model, "--compare", f"adapter={adapter},name=lora", "--report", str(after)]
    assert main(argv) == 0
    assert _passed(after) == {"demo-model": TRAINED, "lora": TRAINED | {"list_files"}}
    rows = {
        line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()
    }
    assert rows["demo-model"][:2] == ["14%", "(2/14)"] and rows["lora"][:2] == ["21%", "(3/14)"]
    assert rows["tools/list_files"] == ["FAIL", "pass"]
