"""The whole fine-tuning loop on one model, within a wall-clock budget: capture by sampling,
export the passing runs, train a LoRA adapter, and compare base and adapter, greedy and sampled,
on the trained cases and on held-out ones.

    python examples/finetune_loop.py MODEL OUTDIR [--budget 390] [--repeat 12] [--temperature 0.8]

1. Capture: the trained cases (built-in tool cases, and variants whose prompts name the call)
   run `--repeat` times each at `--temperature`, `--concurrency` at once; the eval stops at its
   share of the budget, keeping the runs that finished (rejection sampling: only the runs that
   pass become training data).
2. Export: the passing runs, one record per response (`--clean-steps`: per clean response),
   round-trip checked on MODEL's template.
3. Train: `mlx_lm.lora`, a fixed number of steps, `--mask-prompt`; stopped at its share of the
   budget, keeping the last checkpoint.
4. Compare: base and adapter on every case (trained and held-out), greedy, then sampled.

Each step is the project's command line (`pydantic-mlx eval`, `pydantic-mlx export`) or
`mlx_lm.lora`, run as a subprocess: what is measured is what a user types. OUTDIR receives
summary.md (the before/after table), summary.json, log.txt (every command and its output) and
results.tar.gz (reports, traces, train.jsonl, the adapter). See docs/finetune.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic_mlx.eval import ConfigResult, EvalCase, builtin_suite, json_report_path, read_report

TRAINED = ("read_file", "list_files", "write_file", "run_command")
"""Built-in tool cases the capture runs (with their explicit variants) and the adapter learns."""

HELD_OUT = ("read_config", "chain_read_write", "chain_run_read")
"""Built-in tool cases never captured: the adapter's score on them measures skill, not memory."""

PHASE_SHARES = {"capture": 0.28, "export": 0.05, "train": 0.27, "greedy": 0.12, "sampled": 0.28}
"""Each phase's share of the budget still left when it starts, among the phases still to run."""


def explicit(case: EvalCase) -> EvalCase:
    """A variant of `case` whose prompt names the call to make, e.g. *"Call the read_file tool with
    {"path": "README.md"}, then answer: What does README.md say?"*: the same tools, files and checks."""
    calls = " then ".join(
        f"the {call.tool} tool" + (f" with {json.dumps(call.args)}" if call.args else "")
        for call in case.expect.calls
    )
    prompt = f"Call {calls}, then answer: {case.prompt}"
    return case.model_copy(update={"name": f"{case.name}_explicit", "prompt": prompt})


def suites() -> tuple[list[EvalCase], list[EvalCase]]:
    """The trained cases (built-in ones and their explicit variants) and the held-out ones."""
    builtin = {case.name: case for case in builtin_suite()}
    trained = [builtin[name] for name in TRAINED]
    return [*trained, *map(explicit, trained)], [builtin[name] for name in HELD_OUT]


def write_suite(cases: Sequence[EvalCase], path: Path) -> Path:
    dumped = [case.model_dump(mode="json", exclude_defaults=True) for case in cases]
    path.write_text(json.dumps({"cases": dumped}, indent=1), encoding="utf-8")
    return path


def export_arguments(traces: Sequence[str], model: str, *, clean_steps: bool) -> list[str]:
    """`pydantic_mlx export`'s arguments: the passing runs, one record per response (or per clean
    response), round-trip checked on `model`'s template, to data/train.jsonl."""
    per_response = "--clean-steps" if clean_steps else "--per-request"
    out = ["--out", "data/train.jsonl"]
    return ["pydantic_mlx", "export", *traces, *out, "--only-passed", per_response, "--model", model]


class Loop:
    """Runs the phases in order against one deadline, logging every command and its output."""

    def __init__(self, work: Path, budget: float, log: TextIO) -> None:
        self.work = work
        self.deadline = time.monotonic() + budget
        self.log = log
        self.phases: dict[str, dict[str, Any]] = {}
        self._left = dict(PHASE_SHARES)

    def budget(self, phase: str) -> float:
        """This phase's share of the time left (at least 10 s, so a late phase still starts)."""
        share = self._left.pop(phase)
        remaining = self.deadline - time.monotonic()
        return max(10.0, remaining * share / (share + sum(self._left.values())))

    def run(
        self, phase: str, command: list[str], *, stop: signal.Signals = signal.SIGINT, evals: int = 0
    ) -> int:
        """Run `command` within the phase's budget. An eval (`evals`: its configurations) is given a
        `--time-limit` that leaves each configuration time to load and finish its runs in flight;
        past the budget (and a grace of 20 s), the command gets `stop`, and is killed 15 s later
        (an eval's report and traces keep every run that finished)."""
        budget = self.budget(phase)
        if evals:
            limit = max(5.0, (budget - 10 - 25 * evals) / evals)
            command = [*command, "--time-limit", f"{limit:.0f}"]
        self.say(f"== {phase} (budget {budget:.0f} s): {' '.join(command)}")
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.work, preexec_fn=_interruptible
        )
        stopped = False
        try:
            returncode = process.wait(timeout=budget + 20)
        except subprocess.TimeoutExpired:
            stopped = True
            process.send_signal(stop)
            try:
                returncode = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
        seconds = time.monotonic() - started
        self.phases[phase] = {"seconds": round(seconds, 1), "budget": round(budget, 1), "stopped": stopped}
        note = " (stopped: over its budget)" if stopped else ""
        self.say(f"   {phase}: exit {returncode} after {seconds:.1f} s{note}")
        return returncode

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()


def _interruptible() -> None:
    """Ctrl-C ends the child, even when this loop runs where it is ignored (a shell's background
    job ignores SIGINT, and so would the eval, which could then not be stopped at its budget)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def results(report: Path) -> list[ConfigResult]:
    json_path = json_report_path(report)
    return read_report(json_path).results if json_path.is_file() else []


def tally(result: ConfigResult | None, names: Sequence[str]) -> tuple[int, int]:
    """Runs passed and runs made over the cases `names` under one configuration."""
    if result is None:
        return 0, 0
    counts = result.pass_counts()
    return sum(counts[n][0] for n in names if n in counts), sum(counts[n][1] for n in names if n in counts)


def cell(counts: tuple[int, int]) -> str:
    passed, runs = counts
    return f"{passed}/{runs}" if runs else "-"


def table(
    trained: Sequence[EvalCase], held_out: Sequence[EvalCase], columns: dict[str, ConfigResult | None]
) -> str:
    """The before/after table: one row per case (and per group), passes out of runs per column."""
    header = ["case", "set", *columns]
    rows: list[list[str]] = []
    for group, cases in (("trained", trained), ("held-out", held_out)):
        for case in cases:
            rows.append([case.name, group, *(cell(tally(r, [case.name])) for r in columns.values())])
        names = [case.name for case in cases]
        rows.append([f"**all {group}**", group, *(f"**{cell(tally(r, names))}**" for r in columns.values())])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRAIN_ROW = re.compile(r"^\s*(\d+)\s+([0-9.]+)\b")  # mlx-lm >= 0.32: "  20    0.020 ▼    76  1.5k"
_VALID_ROW = re.compile(r"^\s*(\d+)\s+val\s+([0-9.]+)")  # "  20    val 0.017    0.17s"
_OLD_ROW = re.compile(
    r"Iter (\d+): (Train|Val) loss ([0-9.]+)"
)  # earlier mlx-lm: "Iter 20: Train loss 0.020"


def training_losses(output: str) -> dict[str, list[float]]:
    """The losses mlx_lm.lora printed, in order: training (each report) and validation."""
    train: list[float] = []
    valid: list[float] = []
    for line in _ANSI.sub("", output).splitlines():
        if old := _OLD_ROW.search(line):
            (train if old[2] == "Train" else valid).append(float(old[3]))
        elif row := _VALID_ROW.match(line):
            valid.append(float(row[2]))
        elif row := _TRAIN_ROW.match(line):
            train.append(float(row[2]))
    return {"train": train, "valid": valid}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="MLX model folder or name (the base model)")
    parser.add_argument(
        "outdir", type=Path, help="where summary.md, summary.json, log.txt, results.tar.gz go"
    )
    parser.add_argument("--budget", type=float, default=390, help="wall-clock seconds for the whole loop")
    parser.add_argument("--repeat", type=int, default=12, help="capture: runs per trained case")
    parser.add_argument("--eval-repeat", type=int, default=4, help="sampled comparison: runs per case")
    parser.add_argument("--temperature", type=float, default=0.8, help="capture and sampled comparison")
    parser.add_argument("--concurrency", type=int, default=12, help="runs at once (their requests batched)")
    parser.add_argument("--max-tokens", type=int, default=256, help="token limit per model request")
    parser.add_argument("--iters", type=int, default=60, help="LoRA steps")
    parser.add_argument("--batch-size", type=int, default=4, help="LoRA records per step")
    parser.add_argument("--num-layers", type=int, default=8, help="layers (from the top) given a LoRA")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="LoRA learning rate")
    parser.add_argument(
        "--clean-steps",
        action="store_true",
        help="export only the passing runs' clean responses (docs/finetune.md: Clean steps)",
    )
    parser.add_argument("--work", type=Path, help="keep the working files here (default: a temporary folder)")
    args = parser.parse_args(argv)

    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work} is not empty: its traces and reports would mix with this run's")
    work = args.work or Path(tempfile.mkdtemp(prefix="pydantic-mlx-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    model = (
        str(Path(args.model).expanduser().resolve()) if Path(args.model).expanduser().is_dir() else args.model
    )
    trained, held_out = suites()
    everything = write_suite([*trained, *held_out], work / "suite_all.json")
    write_suite(trained, work / "suite_trained.json")
    python = [sys.executable, "-m"]
    eval_base = [*python, "pydantic_mlx", "eval", "--model", model, "--max-tokens", str(args.max_tokens)]
    eval_base += ["--concurrency", str(args.concurrency)]
    started = time.monotonic()

    with (args.outdir / "log.txt").open("w", encoding="utf-8") as log:
        loop = Loop(work, args.budget, log)
        loop.say(f"model {model}; work folder {work}; budget {args.budget:.0f} s")

        # 1. Capture: sampled runs of the trained cases on the base model, with their traces.
        code = loop.run(
            "capture",
            [
                *eval_base,
                "--suite", "suite_trained.json", "--report", "capture.html", "--save-traces", "traces",
                "--repeat", str(args.repeat), "--temperature", str(args.temperature), "--seed", "0",
            ],
            evals=1,
        )  # fmt: skip
        if code == 2:  # the eval could not start: a model it cannot load, a bad option
            loop.say(f"   the eval could not start: see {args.outdir / 'log.txt'}")
            return 2
        capture = results(work / "capture.html")

        # 2. Export the passing runs, one record per response, round-trip checked.
        data = work / "data"
        data.mkdir(exist_ok=True)
        traces = [str(p) for p in sorted((work / "traces").glob("*")) if p.is_dir()]
        records = 0
        if traces:
            loop.run("export", [*python, *export_arguments(traces, model, clean_steps=args.clean_steps)])
            train = data / "train.jsonl"
            records = len(train.read_text(encoding="utf-8").splitlines()) if train.is_file() else 0
        else:
            loop.budget("export")
        loop.say(f"   {records} training records")

        # 3. Train: mlx_lm.lora reads train.jsonl and needs valid.jsonl; here, the same records.
        adapter = work / "adapters"
        trained_adapter = False
        if records:
            shutil.copy(data / "train.jsonl", data / "valid.jsonl")
            batch = min(args.batch_size, records)
            steps_per_eval = max(1, args.iters // 3)
            code = loop.run(
                "train",
                [
                    *python, "mlx_lm", "lora", "--model", model, "--train", "--data", "data",
                    "--adapter-path", "adapters", "--mask-prompt", "--iters", str(args.iters),
                    "--batch-size", str(batch), "--num-layers", str(args.num_layers),
                    "--learning-rate", str(args.learning_rate), "--steps-per-report", "5",
                    "--steps-per-eval", str(steps_per_eval), "--val-batches", "1",
                    "--save-every", "10", "--max-seq-length", "2048",
                ],
                stop=signal.SIGTERM,
            )  # fmt: skip
            trained_adapter = (adapter / "adapters.safetensors").is_file()
            loop.say(f"   adapter {'written' if trained_adapter else 'NOT written'} (exit {code})")
        else:
            loop.budget("train")
            loop.say("   no passing run to train on: no adapter; the comparison runs the base model alone")

        # 4. Compare base and adapter on every case: greedy, then sampled with other seeds.
        compare = ["--compare", "adapter=adapters,name=lora"] if trained_adapter else []
        configurations = 2 if trained_adapter else 1
        greedy_eval = [*eval_base, "--suite", everything.name, "--report", "greedy.html", *compare]
        loop.run("greedy", greedy_eval, evals=configurations)
        loop.run(
            "sampled",
            [
                *eval_base, "--suite", everything.name, "--report", "sampled.html", *compare,
                "--repeat", str(args.eval_repeat), "--temperature", str(args.temperature), "--seed", "1000",
            ],
            evals=configurations,
        )  # fmt: skip
        greedy, sampled = results(work / "greedy.html"), results(work / "sampled.html")

        def pick(runs: list[ConfigResult], index: int) -> ConfigResult | None:
            return runs[index] if len(runs) > index else None

        columns: dict[str, ConfigResult | None] = {
            f"base capture (T={args.temperature:g})": pick(capture, 0),
            "base greedy": pick(greedy, 0),
            "lora greedy": pick(greedy, 1),
            f"base sampled (T={args.temperature:g})": pick(sampled, 0),
            f"lora sampled (T={args.temperature:g})": pick(sampled, 1),
        }
        summary_table = table(trained, held_out, columns)
        train_output = (args.outdir / "log.txt").read_text(encoding="utf-8", errors="replace")
        losses = training_losses(train_output.partition("== train")[2].partition("== greedy")[0])
        seconds = time.monotonic() - started
        lines = [
            f"# Fine-tuning loop: {Path(model).name}",
            "",
            summary_table,
            "",
            f"- capture: {cell(tally(pick(capture, 0), [c.name for c in trained]))} sampled runs passed; "
            f"{records} training records exported{' (clean steps)' if args.clean_steps else ''}",
            f"- LoRA: {args.iters} steps, batch {min(args.batch_size, max(records, 1))}, "
            f"{args.num_layers} layers, rank 8, lr {args.learning_rate:g}, --mask-prompt; "
            f"train loss {losses['train'][:1]} -> {losses['train'][-1:]}, val loss {losses['valid']}"
            if records
            else "- LoRA: not trained (no passing run)",
            "- phases: "
            + ", ".join(
                f"{name} {p['seconds']} s{' (stopped)' if p['stopped'] else ''}"
                for name, p in loop.phases.items()
            )
            + f"; total {seconds:.0f} s",
            "- tokens/s (per request): "
            + ", ".join(
                f"{label} {r.tokens_per_second:.0f}" for label, r in columns.items() if r is not None
            ),
        ]
        summary = "\n".join(lines) + "\n"
        loop.say(summary)

    (args.outdir / "summary.md").write_text(summary, encoding="utf-8")
    (args.outdir / "summary.json").write_text(
        json.dumps(
            {
                "model": model,
                "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "records": records,
                "adapter": trained_adapter,
                "phases": loop.phases,
                "losses": losses,
                "seconds": round(seconds, 1),
                "columns": {
                    label: None if r is None else {n: list(c) for n, c in r.pass_counts().items()}
                    for label, r in columns.items()
                },
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    with tarfile.open(args.outdir / "results.tar.gz", "w:gz") as archive:
        for name in ("capture", "greedy", "sampled"):
            for suffix in (".html", ".json"):
                if (work / f"{name}{suffix}").is_file():
                    archive.add(work / f"{name}{suffix}", f"{name}{suffix}")
        for name in ("traces", "data", "suite_all.json", "suite_trained.json"):
            if (work / name).exists():
                archive.add(work / name, name)
        for name in ("adapters.safetensors", "adapter_config.json"):
            if (adapter / name).is_file():
                archive.add(adapter / name, f"adapters/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
