"""Run a suite against model configurations with pydantic-evals, and collect the scores."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic_ai import Agent, Tool, capture_run_messages
from pydantic_ai.exceptions import AgentRunError, UserError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import UsageLimits
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator
from pydantic_evals.lifecycle import CaseLifecycle
from pydantic_evals.reporting import ReportCase, ReportCaseFailure

from ..model import MLXModel
from ..traces import Trace, TraceError, TraceRecorder, save_trace
from ._checks import CaseOutcome, case_evaluators
from ._report import EvalRun, json_report_path, read_report, write_report
from ._results import CaseResult, Check, ConfigError, ConfigResult, EvalConfig, ReportError, RunStatus
from ._sandbox import TOOLBOX, Sandbox
from ._suite import EvalCase, builtin_suite

__all__ = ["DEFAULT_MAX_TOKENS", "REQUEST_LIMIT", "run_case", "run_eval"]

DEFAULT_MAX_TOKENS = 512
"""Completion tokens per model request in an eval (answers to these cases are short)."""

REQUEST_LIMIT = 8
"""Model requests one case may make before it fails (stops endless retry loops)."""


def _model(config: EvalConfig) -> MLXModel:
    """The `MLXModel` of a configuration; `ConfigError` for what can be checked without loading
    (`MLXModel` checks the model folder or name and the adapter folder when it is made)."""
    try:
        return MLXModel(
            config.model,
            adapter_path=config.adapter,
            tool_format=config.tool_format,
            model_name=config.label,
            constrained=config.constrained,
        )
    except UserError as exc:
        raise ConfigError(f"{config.label}: {exc}") from exc


async def _loaded(config: EvalConfig) -> MLXModel:
    model = _model(config)
    try:
        await model.load()
    except UserError as exc:  # a download the Hub refused or could not serve: the message says what to do
        raise ConfigError(f"{config.label}: cannot load the model: {exc}") from exc
    except Exception as exc:  # whatever mlx-lm or the hub raise, the user needs the message, not a trace
        raise ConfigError(f"{config.label}: cannot load the model: {type(exc).__name__}: {exc}") from exc
    return model


async def run_case(
    model: MLXModel,
    case: EvalCase,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    seed: int | None = None,
) -> CaseOutcome:
    """One agent run of `case` on `model`, with the case's real tools in a fresh sandbox.

    Greedy by default; with a `temperature` above 0 every request of the run samples, from `seed`
    when one is given (the same seed gives the same run, whatever runs beside it)."""
    recorder = TraceRecorder(model)  # what each request offered the model, for the case's trace
    agent = Agent(
        recorder,
        system_prompt=case.system_prompt,
        tools=[Tool(TOOLBOX[name]) for name in case.tools],
        deps_type=Sandbox,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pydantic-mlx-eval-") as folder:
        sandbox = Sandbox(Path(folder))
        sandbox.write_files(case.files)
        error: str | None = None
        answer = ""
        with capture_run_messages() as captured:
            try:
                result = await agent.run(
                    case.prompt,
                    deps=sandbox,
                    model_settings=_sampling(max_tokens, temperature, seed),
                    usage_limits=UsageLimits(request_limit=REQUEST_LIMIT),
                )
                answer = str(result.output)
                messages: list[ModelMessage] = result.all_messages()
            # The model's failure (retries used up, request limit): the case fails, with its transcript.
            except AgentRunError as exc:
                error = f"{type(exc).__name__}: {exc}"
                messages = list(captured)
        files_after = sandbox.snapshot()
    responses = [m for m in messages if isinstance(m, ModelResponse)]
    try:
        offered = recorder.trace(messages, name="case")
    except TraceError:  # the run stopped before its first request
        offered = None
    return CaseOutcome(
        answer=answer,
        messages=messages,
        error=error,
        files_after=files_after,
        seconds=time.perf_counter() - started,
        output_tokens=sum(r.usage.output_tokens for r in responses),
        decode_seconds=sum(float((r.provider_details or {}).get("decode_seconds", 0.0)) for r in responses),
        tools=offered.tools if offered else [],
        instructions=offered.instructions if offered else None,
    )


def _sampling(max_tokens: int, temperature: float, seed: int | None) -> ModelSettings:
    settings = ModelSettings(max_tokens=max_tokens, temperature=temperature)
    if seed is not None and temperature > 0:  # greedy decoding draws nothing: no seed to give
        settings["seed"] = seed
    return settings


@dataclass(frozen=True)
class _Run:
    """What one pydantic-evals case runs: a suite case, and which of its repeats (1-based)."""

    case: EvalCase
    repeat: int


Progress = Callable[[str], None]


async def run_eval(
    configs: Sequence[EvalConfig],
    cases: Sequence[EvalCase] | None = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress: Progress | None = None,
    report: Path | None = None,
    resume: bool = False,
    save_traces: Path | None = None,
    repeat: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
    concurrency: int = 1,
    time_limit: float | None = None,
) -> list[ConfigResult]:
    """Run every case (the built-in suite by default) on every configuration, scored the same way.

    Every configuration is checked and loaded before the first case runs, so a missing model or a
    bad adapter raises `ConfigError` at once. Cases run one at a time by default, so tokens/s are
    comparable; with `concurrency` above 1, that many runs of a configuration go at once (`MLXModel`
    batches their requests), and tokens/s is then each request's own rate, not the throughput.

    Decoding is greedy unless `temperature` is above 0. With `repeat` N, each case runs N times
    (repeat k samples from seed `seed + k - 1`, so a run can be made again alone); every run is a
    `CaseResult` (its `repeat` says which), scores count runs, and `ConfigResult.pass_counts()`
    gives each case's passes out of N.

    With `report` (an HTML path), the HTML report and a JSON twin beside it (`.json`) are rewritten
    after every finished run, marked partial until the eval ends; a cancelled eval (Ctrl-C) marks
    them "interrupted after N of M cases" before the cancellation goes on. With `resume`, the runs
    that JSON already holds as finished, for an equal configuration, an equal case and the same
    repeat, are kept and not run again (`ReportError` if it cannot be read or used other
    `max_tokens`, `temperature` or `seed`).

    With `time_limit` (seconds), each configuration starts no run later than that after its runs
    began (its model loaded); the runs in flight finish, the others are left out (the report says "stopped at
    the time limit", and `resume` runs them), so configurations compared get the same time.

    With `save_traces` (a folder), each finished run's trace (its message history, the tools
    offered, the verdict: `pydantic_mlx.traces`) is written to `<folder>/<configuration>/<case>.trace.json`
    (`<case>.r<k>.trace.json` with `repeat` above 1), the kept ones of a resumed eval included,
    ready for `pydantic-mlx export`.
    """
    if repeat < 1:
        raise ConfigError(f"repeat must be at least 1, not {repeat}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    if not temperature >= 0:  # also NaN
        raise ConfigError(f"temperature must be 0 (greedy) or above, not {temperature}")
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"time limit must be above 0 seconds, not {time_limit}")
    suite = list(cases) if cases is not None else builtin_suite()
    labels = [config.label for config in configs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"several configurations are called {duplicates[0]!r}: name them (name=...)")
    earlier: EvalRun | None = None
    if resume and report is None:
        raise ReportError("resume needs the report to continue")
    if report is not None:
        json_path = json_report_path(report)  # a bad path fails now, not after the first case
        earlier = read_report(json_path) if resume else None
        if earlier is not None:
            for setting, then, now in (
                ("max_tokens", earlier.max_tokens, max_tokens),
                ("temperature", earlier.temperature, temperature),
                ("seed", earlier.seed, seed),
            ):
                if then != now:
                    raise ReportError(
                        f"{json_path} was run with {setting} {then}, not {now}: "
                        "use the same value to resume it"
                    )
    # Repeat by repeat: an eval stopped early has run every case about as often.
    runs = [(case, k) for k in range(1, repeat + 1) for case in suite]
    # Each configuration's finished runs by (case, repeat): the reused ones, then each run as it ends.
    finished = [_reusable(config, runs, earlier.results if earlier else []) for config in configs]
    seconds = [sum(r.outcome.seconds for r in done.values() if r.outcome) for done in finished]

    def so_far() -> list[ConfigResult]:
        return [
            ConfigResult(config, [done[c.name, k] for c, k in runs if (c.name, k) in done], spent)
            for config, done, spent in zip(configs, finished, seconds, strict=True)
        ]

    def save(status: RunStatus) -> None:
        if report is not None:
            total = len(configs) * len(runs)
            write_report(EvalRun(status, total, max_tokens, so_far(), temperature, repeat, seed), report)

    out_of_time: set[tuple[str, int]] = set()  # runs a time limit kept from starting
    try:
        models = [await _loaded(config) for config in configs]
        save("running")
        for index, (config, model, done) in enumerate(zip(configs, models, finished, strict=True)):
            where = f"[{index + 1}/{len(configs)} {config.label}]"
            if save_traces is not None:
                for kept in done.values():
                    _save_trace(kept, config, save_traces, repeat, temperature, seed)
            if done and progress is not None:
                progress(f"{where} {len(done)}/{len(runs)} kept from the report")
            earlier_seconds, started = seconds[index], time.perf_counter()
            deadline = None if time_limit is None else time.monotonic() + time_limit

            async def task(
                run: _Run, model: MLXModel = model, deadline: float | None = deadline
            ) -> CaseOutcome:
                if deadline is not None and time.monotonic() > deadline:
                    out_of_time.add((run.case.name, run.repeat))
                    raise _OutOfTime  # not run: `keep` leaves it out
                return await run_case(
                    model,
                    run.case,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed + run.repeat - 1,
                )

            def keep(
                result: CaseResult,
                done: dict[tuple[str, int], CaseResult] = done,
                index: int = index,
                where: str = where,
                earlier_seconds: float = earlier_seconds,
                started: float = started,
                config: EvalConfig = config,
            ) -> None:
                if (result.case.name, result.repeat) in out_of_time:
                    return
                done[result.case.name, result.repeat] = result
                seconds[index] = earlier_seconds + time.perf_counter() - started
                save("running")
                if save_traces is not None:
                    _save_trace(result, config, save_traces, repeat, temperature, seed)
                if progress is not None:
                    outcome = result.outcome
                    ran = (
                        f"{outcome.seconds:.1f} s, {outcome.output_tokens} tokens"
                        if outcome
                        else "eval error"
                    )
                    verdict = "pass" if result.passed else "FAIL"
                    case = result.case
                    which = f"{case.category}/{case.name}" + (f" #{result.repeat}" if repeat > 1 else "")
                    progress(f"{where} {len(done)}/{len(runs)} {which}: {ran}, {verdict}")

            dataset = Dataset[_Run, CaseOutcome, Any](
                name="pydantic-mlx",
                cases=[
                    Case(
                        name=f"{c.name}#{k}" if repeat > 1 else c.name,
                        inputs=_Run(c, k),
                        evaluators=_for_runs(case_evaluators(c.expect)),
                    )
                    for c, k in runs
                    if (c.name, k) not in done
                ],
            )
            await dataset.evaluate(
                task,
                name=config.label,
                max_concurrency=concurrency,
                progress=False,
                lifecycle=lambda case, keep=keep: _KeepResult(case, keep),
            )
            seconds[index] = earlier_seconds + time.perf_counter() - started
    except (asyncio.CancelledError, KeyboardInterrupt):
        save("interrupted")
        raise
    save("out_of_time" if out_of_time else "finished")
    return so_far()


class _OutOfTime(Exception):
    """A run that the time limit kept from starting (never shown: it is left out of the results)."""


def _for_runs(
    evaluators: list[Evaluator[EvalCase, CaseOutcome, Any]],
) -> list[Evaluator[_Run, CaseOutcome, Any]]:
    """The case's evaluators, for a dataset whose inputs are `_Run`s: they score the run's output
    against the expectation they were built with and never read the inputs."""
    return cast(list[Evaluator[_Run, CaseOutcome, Any]], evaluators)


class _KeepResult(CaseLifecycle[_Run, CaseOutcome, Any]):
    """Hands each run's verdict over as soon as its evaluators end (pydantic-evals' own report
    comes only when every case has run, so an interrupted eval would lose them all)."""

    def __init__(self, case: Case[_Run, CaseOutcome, Any], keep: Callable[[CaseResult], None]) -> None:
        super().__init__(case)
        self._keep = keep

    async def teardown(
        self,
        result: ReportCase[_Run, CaseOutcome, Any] | ReportCaseFailure[_Run, CaseOutcome, Any] | None,
    ) -> None:
        if result is not None:  # None: the case was cancelled, nothing finished
            self._keep(_case_result(self.case.inputs, result))


def _reusable(
    config: EvalConfig, runs: list[tuple[EvalCase, int]], earlier: list[ConfigResult]
) -> dict[tuple[str, int], CaseResult]:
    """The earlier results worth keeping: same configuration, same case and repeat, and the model's
    run ended (an eval error, such as a crashed evaluator, is run again)."""
    kept = {
        (r.case.name, r.repeat): r
        for e in earlier
        if e.config == config
        for r in e.cases
        if r.outcome and not r.error
    }
    return {
        (c.name, k): kept[c.name, k] for c, k in runs if (c.name, k) in kept and kept[c.name, k].case == c
    }


def _case_result(
    run: _Run,
    reported: ReportCase[_Run, CaseOutcome, Any] | ReportCaseFailure[_Run, CaseOutcome, Any],
) -> CaseResult:
    if isinstance(reported, ReportCaseFailure):
        return CaseResult(run.case, [], None, error=reported.error_message, repeat=run.repeat)
    checks = [Check(name, bool(result.value), result.reason) for name, result in reported.assertions.items()]
    errors = [f"{f.name}: {f.error_message}" for f in reported.evaluator_failures]
    return CaseResult(run.case, checks, reported.output, error="; ".join(errors) or None, repeat=run.repeat)


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "unnamed"


def _save_trace(
    result: CaseResult, config: EvalConfig, folder: Path, repeats: int, temperature: float, seed: int
) -> None:
    """Write a finished run's trace; an eval error (no run) has none."""
    outcome, case = result.outcome, result.case
    if outcome is None:
        return
    name = _file_name(case.name) + (f".r{result.repeat}" if repeats > 1 else "")
    trace = Trace(
        name=name,
        messages=outcome.messages,
        tools=outcome.tools,
        instructions=outcome.instructions,
        passed=result.passed,
        metadata={
            "case": case.name,
            "category": case.category,
            "prompt": case.prompt,
            "configuration": {
                "label": config.label,
                "model": config.model,
                "adapter": config.adapter,
                "tool_format": config.tool_format,
                "constrained": config.constrained,
            },
            "checks": [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in result.checks],
            "run_error": outcome.error,
            "repeat": result.repeat,
            "temperature": temperature,
            "seed": seed + result.repeat - 1 if temperature > 0 else None,
        },
    )
    save_trace(trace, folder / _file_name(config.label))
