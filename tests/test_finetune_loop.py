"""examples/finetune_loop.py's pieces that decide what is trained, what is held out, and what the
table says (the loop itself is the CLI steps tests/test_finetune_demo.py runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from pydantic_mlx.eval import CaseResult, Check, ConfigResult, EvalConfig, builtin_suite

LOOP = Path(__file__).resolve().parent.parent / "examples" / "finetune_loop.py"


@pytest.fixture(scope="module")
def loop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("finetune_loop", LOOP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_held_out_cases_are_never_captured_and_variants_keep_the_checks(loop: ModuleType) -> None:
    trained, held_out = loop.suites()
    assert [c.name for c in trained] == [
        "read_file",
        "list_files",
        "write_file",
        "run_command",
        "read_file_explicit",
        "list_files_explicit",
        "write_file_explicit",
        "run_command_explicit",
    ]
    assert [c.name for c in held_out] == ["read_config", "chain_read_write", "chain_run_read"]
    builtin = {c.name: c for c in builtin_suite()}
    explicit = {c.name: c for c in trained}["read_file_explicit"]
    assert (
        explicit.prompt
        == 'Call the read_file tool with {"path": "README.md"}, then answer: What does README.md say?'
    )
    assert (explicit.expect, explicit.tools, explicit.files) == (
        builtin["read_file"].expect,
        builtin["read_file"].tools,
        builtin["read_file"].files,
    )
    assert {c.name: c for c in trained}["list_files_explicit"].prompt.startswith(
        "Call the list_files tool, then answer: "
    )


def test_the_losses_are_read_from_either_mlx_lm_output(loop: ModuleType) -> None:
    rich = (
        "  \x1b[1miter   train_loss     tok/s     tokens\x1b[0m\n"
        "  \x1b[38;5;244m   1\x1b[0m    \x1b[1;35mval\x1b[0m \x1b[1m1.196\x1b[0m    \x1b[38;5;244m0.24s\x1b[0m\n"
        "  \x1b[38;5;244m   5\x1b[0m    \x1b[1;32m0.428 ▼\x1b[0m    \x1b[1m  204\x1b[0m    \x1b[38;5;244m  0.4k\x1b[0m\n"
        "  \x1b[1;32msave\x1b[0m  \x1b[38;5;244m0000010_adapters.safetensors\x1b[0m\n"
        "  \x1b[38;5;244m  20\x1b[0m    \x1b[1;32m0.020 ▼\x1b[0m    \x1b[1m   76\x1b[0m\n"
    )
    assert loop.training_losses(rich) == {"train": [0.428, 0.02], "valid": [1.196]}
    plain = "Iter 1: Val loss 1.766, Val took 0.1s\nIter 5: Train loss 1.234, Learning Rate 1.000e-03\n"
    assert loop.training_losses(plain) == {"train": [1.234], "valid": [1.766]}


def test_the_table_counts_passes_out_of_runs_per_case_and_per_set(loop: ModuleType) -> None:
    trained, held_out = loop.suites()
    by_name = {c.name: c for c in [*trained, *held_out]}

    def run(name: str, passed: bool, repeat: int) -> CaseResult:
        return CaseResult(by_name[name], [Check("RunCompleted", passed)], None, repeat=repeat)

    sampled = ConfigResult(
        EvalConfig("m"),
        [run("read_file", True, 1), run("read_file", False, 2), run("read_config", True, 1)],
        1.0,
    )
    text = loop.table(trained, held_out, {"base": sampled, "lora": None})
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()}
    assert rows["read_file"] == "| read_file | trained | 1/2 | - |"
    assert rows["write_file"] == "| write_file | trained | - | - |"
    assert rows["**all trained**"] == "| **all trained** | trained | **1/2** | **-** |"
    assert rows["**all held-out**"] == "| **all held-out** | held-out | **1/1** | **-** |"


def test_a_model_the_eval_cannot_load_stops_the_loop_at_once(loop: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert loop.main([str(tmp_path / "no-such-model"), str(out), "--work", str(tmp_path / "work")]) == 2
    log = (out / "log.txt").read_text(encoding="utf-8")
    assert "model folder" in log and "does not exist" in log
    assert "== export" not in log and "== train" not in log


def test_the_loop_exports_clean_steps_when_asked(
    loop: ModuleType, tmp_path: Path, random_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic_mlx.cli import main
    from pydantic_mlx.traces import save_trace
    from test_traces import trace

    # A passing run whose right call answered a retry: per response it gives 2 records, clean 1.
    save_trace(trace("docs"), tmp_path / "traces" / "base")
    monkeypatch.chdir(tmp_path)
    for clean_steps, records in ((False, 2), (True, 1)):
        argv = loop.export_arguments(["traces/base"], str(random_model_path), clean_steps=clean_steps)
        assert argv[:2] == ["pydantic_mlx", "export"]
        assert main(argv[1:]) == 0
        assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == records
