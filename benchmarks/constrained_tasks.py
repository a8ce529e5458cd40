"""Real-model agent tasks with `constrained` off and on, side by side in one process.

For each task (a coding agent with `read_file`, `write_file` and `run_command`, as in
tests/test_model_real.py), and each setting, runs the agent and counts:

- done:      the task's tool ran and its result reached the model (the run used the tool);
- calls:     tool calls the model wrote (valid or not);
- retries:   retry prompts the agent had to send (unreadable calls, arguments that did not
             validate: `"required": [...]` copied into the arguments, say);
- failed:    the run raised (retries exhausted, token limit, more than `--max-requests` model
             requests: a model that keeps calling tools after the task is done);
- tokens:    tokens the model generated over the run;
- seconds:   wall time of the run (both models are loaded and the llguidance tokenizer is built
             before timing).

    python benchmarks/constrained_tasks.py --model PATH [--rounds 2] [--max-tokens 256] [--tasks 0,1]
        [--temperature 0.7] [--max-requests 6]

Greedy by default (every round the same but for timing); with `--temperature`, round N samples
with seed N, the same for both settings.

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL (build it with ../shared/real-model/). On Linux,
preload OpenBLAS: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic_ai import Agent, RunContext, capture_run_messages
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolReturnPart
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import UsageLimits

from pydantic_mlx import MLXModel

SYSTEM_PROMPT = "You are a coding assistant working in a project folder. Use the tools to do the task."


def read_file(ctx: RunContext[Path], path: str) -> str:
    """Read a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
    """
    target = ctx.deps / path
    try:
        return target.read_text()
    except (OSError, UnicodeDecodeError) as error:  # a tool reports, never raises: the run goes on
        return f"error: cannot read {path}: {error}"


def write_file(ctx: RunContext[Path], path: str, content: str) -> str:
    """Create or replace a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
        content: The complete new content of the file.
    """
    target = ctx.deps / path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    except OSError as error:
        return f"error: cannot write {path}: {error}"
    return f"wrote {len(content)} characters to {path}"


def run_command(ctx: RunContext[Path], command: str) -> str:
    """Run a shell command in the project folder and return its exit code and output.

    Args:
        command: The command line to run.
    """
    try:
        done = subprocess.run(command, shell=True, cwd=ctx.deps, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "error: the command ran for more than 60 s and was stopped"
    return f"exit code {done.returncode}\n{done.stdout}{done.stderr}"


@dataclass(frozen=True)
class Task:
    prompt: str
    tool: str
    evidence: str
    """Text the tool's result holds when the tool did the task."""


TASKS = [
    Task("Read the file notes.txt and tell me what it says.", "read_file", "pineapple"),
    Task("Run the command 'echo hello'.", "run_command", "hello"),
    Task("Run the command `ls` and tell me which files exist.", "run_command", "alpha.py"),
    Task("Write 'print(42)' to the file answer.py.", "write_file", "answer.py"),
]


@dataclass
class Tally:
    done: int = 0
    calls: int = 0
    retries: int = 0
    failed: int = 0
    tokens: int = 0
    seconds: float = 0.0


async def attempt(
    model: MLXModel, task: Task, settings: ModelSettings, max_requests: int
) -> tuple[bool, int, int, bool, int, float]:
    with tempfile.TemporaryDirectory() as folder:
        deps = Path(folder)
        (deps / "notes.txt").write_text("The secret word is pineapple.\n")
        (deps / "alpha.py").write_text("print('a')\n")
        agent = Agent(
            model,
            deps_type=Path,
            system_prompt=SYSTEM_PROMPT,
            tools=[read_file, write_file, run_command],
            model_settings=settings,
            retries=3,
        )
        started = time.perf_counter()
        failed = False
        with capture_run_messages() as messages:
            try:
                await agent.run(task.prompt, deps=deps, usage_limits=UsageLimits(request_limit=max_requests))
            except Exception as error:
                failed = True
                print(f"  raised {type(error).__name__}: {str(error)[:120]}")
        seconds = time.perf_counter() - started
    parts = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts]
    results = [p for p in parts if isinstance(p, ToolReturnPart) and p.outcome != "retried"]
    retried = [p for p in parts if getattr(p, "outcome", None) == "retried" or p.part_kind == "retry-prompt"]
    retries = len(retried)
    responses = [m for m in messages if isinstance(m, ModelResponse)]
    calls = sum(len(m.tool_calls) for m in responses)
    tokens = sum(m.usage.output_tokens for m in responses)
    done = any(r.tool_name == task.tool and task.evidence in str(r.content) for r in results)
    return done, calls, retries, failed, tokens, seconds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.environ.get("PYDANTIC_MLX_REAL_MODEL"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-requests", type=int, default=6, help="model requests a run may make")
    parser.add_argument("--tasks", default=None, help="indices into TASKS, comma-separated (default: all)")
    args = parser.parse_args()
    tasks = [TASKS[int(i)] for i in args.tasks.split(",")] if args.tasks else TASKS
    if not args.model:
        parser.error("--model (or $PYDANTIC_MLX_REAL_MODEL) is required")
    models = {
        "constrained=False": MLXModel(args.model, constrained=False, batching=False),
        "constrained=True": MLXModel(args.model, constrained=True, batching=False),
    }
    for model in models.values():
        await model.load()
    from pydantic_mlx.constrained._decoding import grammar_tokenizer

    started = time.perf_counter()
    grammar_tokenizer(models["constrained=True"].loaded.tokenizer)
    print(f"llguidance tokenizer (once per model): {time.perf_counter() - started:.1f} s")
    tallies = {name: Tally() for name in models}
    for round_ in range(args.rounds):
        settings: ModelSettings = {"max_tokens": args.max_tokens, "temperature": args.temperature}
        settings["seed"] = round_
        for task in tasks:
            for name, model in models.items():  # alternating, so load drifts hit both alike
                done, calls, retries, failed, tokens, seconds = await attempt(
                    model, task, settings, args.max_requests
                )
                tally = tallies[name]
                tally.done += done
                tally.calls += calls
                tally.retries += retries
                tally.failed += failed
                tally.tokens += tokens
                tally.seconds += seconds
                outcome = f"done={done} calls={calls} retries={retries} failed={failed}"
                outcome += f" tokens={tokens} {seconds:.1f}s"
                print(f"{name:18s} {task.prompt[:45]:45s} {outcome}")
    runs = args.rounds * len(tasks)
    columns = ("done", "calls", "retries", "failed", "tokens", "s/run")
    print(f"\n{'setting':18s} " + " ".join(f"{c:>8s}" for c in columns))
    for name, t in tallies.items():
        print(
            f"{name:18s} {t.done:>5d}/{runs:<2d} {t.calls:>8d} {t.retries:>8d} {t.failed:>8d}"
            f" {t.tokens:>8d} {t.seconds / runs:>8.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
