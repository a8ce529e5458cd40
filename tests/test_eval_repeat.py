"""`pydantic-mlx eval --repeat N --temperature T --seed S --concurrency K` on the tiny demo model:
each case sampled N times from its own seed, scored as passes out of N, with a trace per run that
`pydantic-mlx export` reads; and the checks of those settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pydantic_mlx import MLXModel
from pydantic_mlx.cli import main
from pydantic_mlx.eval import EvalCase, builtin_suite, read_report, run_case
from pydantic_mlx.eval._report import transcript
from pydantic_mlx.traces import export_traces, load_traces


def _suite(tmp_path: Path) -> Path:
    """`read_file` (the demo model passes it, greedy) and `write_file` (it fails it)."""
    cases = {case.name: case for case in builtin_suite()}
    suite = tmp_path / "suite.json"
    dumped = [
        cases[name].model_dump(mode="json", exclude_defaults=True) for name in ("read_file", "write_file")
    ]
    suite.write_text(json.dumps({"cases": dumped}), encoding="utf-8")
    return suite


def _eval_argv(model: Path, tmp_path: Path, report: Path) -> list[str]:
    """`pydantic-mlx eval` of the two-case suite on `model`, reporting to `report`."""
    return ["eval", "--model", str(model), "--suite", str(_suite(tmp_path)), "--report", str(report)]


def test_each_case_runs_n_times_from_its_own_seed_with_a_trace_per_run(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, traces = tmp_path / "r.html", tmp_path / "traces"
    argv = _eval_argv(demo_model_path, tmp_path, report)
    argv += ["--save-traces", str(traces), "--repeat", "3", "--temperature", "0.7", "--seed", "5"]
    assert main([*argv, "--concurrency", "3"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert "cases passed once+" in out
    passes = int(rows["tools/read_file"][1].split("/")[0])
    assert rows["tools/read_file"][1] == f"{passes}/3" and rows["tools/write_file"][1] == "0/3"
    assert passes >= 1  # the trained call and answer are near certain at 0.7
    run = read_report(report.with_suffix(".json"))
    assert (run.temperature, run.repeat, run.seed, run.total_cases, run.status) == (0.7, 3, 5, 6, "finished")
    (result,) = run.results
    assert sorted((r.case.name, r.repeat) for r in result.cases) == [
        (name, k) for name in ("read_file", "write_file") for k in (1, 2, 3)
    ]
    assert result.pass_counts() == {"read_file": (passes, 3), "write_file": (0, 3)}
    dumped = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert dumped["results"][0]["case_passes"] == {
        "read_file": {"passed": passes, "runs": 3},
        "write_file": {"passed": 0, "runs": 3},
    }
    page = report.read_text(encoding="utf-8")
    assert "temperature 0.7, seed 5, 3 runs per case" in page and "read_file #3" in page
    # One trace per run, named by its repeat, with the seed it sampled from.
    folder = traces / "demo-model"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{name}.r{k}.trace.json" for name in ("read_file", "write_file") for k in (1, 2, 3)
    ]
    loaded = {trace.name: trace for trace in load_traces([traces])}
    assert [loaded[f"read_file.r{k}"].metadata["seed"] for k in (1, 2, 3)] == [5, 6, 7]
    assert {trace.metadata["temperature"] for trace in loaded.values()} == {0.7}
    assert sum(trace.passed is True for trace in loaded.values()) == passes
    # Export reads every run's trace: the passing ones are the training data.
    summary = export_traces(list(loaded.values()), tmp_path / "data" / "train.jsonl", only_passed=True)
    assert (summary.traces, summary.exported) == (6, passes)

    # Resume with more repeats runs only the new ones; other sampling settings are refused.
    assert main([*argv, "--resume"]) == 0
    assert "6/6 kept from the report" in capsys.readouterr().err
    argv[argv.index("--repeat") + 1] = "4"
    assert main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "6/8 kept from the report" in err and err.count("tools/") == 2  # read_file #4, write_file #4
    assert read_report(report.with_suffix(".json")).results[0].count() == 8
    argv[argv.index("--temperature") + 1] = "0.9"
    assert main([*argv, "--resume"]) == 2
    assert "was run with temperature 0.7, not 0.9" in capsys.readouterr().err


def test_a_seed_makes_a_sampled_run_again_and_another_seed_does_not(demo_model_path: Path) -> None:
    # At temperature 5 every token is close to a uniform draw, so two seeds cannot give the same run.
    case: EvalCase = builtin_suite()[0]
    model = MLXModel(str(demo_model_path))

    async def runs() -> list[list[tuple[str, str]]]:
        outcomes = [await run_case(model, case, max_tokens=12, temperature=5.0, seed=s) for s in (3, 3, 4)]
        return [transcript(o.messages) for o in outcomes]

    first, again, other = asyncio.run(runs())
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--repeat", "0"], "repeat must be at least 1, not 0"),
        (["--concurrency", "0"], "concurrency must be at least 1, not 0"),
        (["--temperature", "-1"], "temperature must be 0 (greedy) or above, not -1.0"),
        (["--temperature", "nan"], "temperature must be 0 (greedy) or above, not nan"),
        (["--time-limit", "0"], "time limit must be above 0 seconds, not 0.0"),
    ],
)
def test_bad_sampling_settings_are_refused_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    report = tmp_path / "r.html"
    assert main(["eval", "--model", str(tmp_path / "no-such-model"), "--report", str(report), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not report.exists()


def test_a_time_limit_starts_no_run_after_it_and_resume_runs_the_rest(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.html"
    argv = _eval_argv(demo_model_path, tmp_path, report)
    argv += ["--repeat", "30", "--temperature", "0.7"]
    assert main([*argv, "--time-limit", "1"]) == 0
    out = capsys.readouterr().out
    run = read_report(report.with_suffix(".json"))
    finished = run.finished_cases
    assert 1 <= finished < 60 and run.status == "out_of_time"
    assert f"Stopped at the time limit: {finished} of 60 runs finished (--resume runs the rest)" in out
    assert f"Stopped at the time limit after {finished} of 60 cases." in report.read_text(encoding="utf-8")
    # Runs go repeat by repeat: no case is more than one run ahead of another.
    counts = [runs for _, runs in run.results[0].pass_counts().values()]
    assert max(counts) - min(counts) <= 1
    assert main([*argv, "--resume"]) == 0
    assert f"{finished}/60 kept from the report" in capsys.readouterr().err
    run = read_report(report.with_suffix(".json"))
    assert (run.status, run.finished_cases) == ("finished", 60)
