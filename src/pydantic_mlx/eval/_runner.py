"""Run a suite against model configurations with pydantic-evals, and collect the scores."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, Tool, capture_run_messages
from pydantic_ai.exceptions import AgentRunError, UserError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.usage import UsageLimits
from pydantic_evals import Case, Dataset
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


async def run_case(model: MLXModel, case: EvalCase, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> CaseOutcome:
    """One agent run of `case` on `model`, with the case's real tools in a fresh sandbox."""
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
                    model_settings={"max_tokens": max_tokens},
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
) -> list[ConfigResult]:
    """Run every case (the built-in suite by default) on every configuration, scored the same way.

    Every configuration is checked and loaded before the first case runs, so a missing model or a
    bad adapter raises `ConfigError` at once. Cases run one at a time, so tokens/s are comparable.

    With `report` (an HTML path), the HTML report and a JSON twin beside it (`.json`) are rewritten
    after every finished case, marked partial until the run ends; a cancelled run (Ctrl-C) marks
    them "interrupted after N of M cases" before the cancellation goes on. With `resume`, the cases
    that JSON already holds as finished, for an equal configuration and an equal case, are kept and
    not run again (`ReportError` if it cannot be read or used other `max_tokens`).

    With `save_traces` (a folder), each finished case's trace (its message history, the tools
    offered, the verdict: `pydantic_mlx.traces`) is written to `<folder>/<configuration>/<case>.trace.json`,
    the kept ones of a resumed run included, ready for `pydantic-mlx export`.
    """
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
        if earlier is not None and earlier.max_tokens != max_tokens:
            raise ReportError(
                f"{json_path} was run with max_tokens {earlier.max_tokens}, not {max_tokens}: "
                "use the same value to resume it"
            )
    # Each configuration's finished cases by name: the reused ones, then each case as it ends.
    finished = [_reusable(config, suite, earlier.results if earlier else []) for config in configs]
    seconds = [sum(r.outcome.seconds for r in done.values() if r.outcome) for done in finished]

    def so_far() -> list[ConfigResult]:
        return [
            ConfigResult(config, [done[c.name] for c in suite if c.name in done], spent)
            for config, done, spent in zip(configs, finished, seconds, strict=True)
        ]

    def save(status: RunStatus) -> None:
        if report is not None:
            write_report(EvalRun(status, len(configs) * len(suite), max_tokens, so_far()), report)

    try:
        models = [await _loaded(config) for config in configs]
        save("running")
        for index, (config, model, done) in enumerate(zip(configs, models, finished, strict=True)):
            where = f"[{index + 1}/{len(configs)} {config.label}]"
            if save_traces is not None:
                for kept in done.values():
                    _save_trace(kept, config, save_traces)
            if done and progress is not None:
                progress(f"{where} {len(done)}/{len(suite)} kept from the report")
            earlier_seconds, started = seconds[index], time.perf_counter()

            async def task(case: EvalCase, model: MLXModel = model) -> CaseOutcome:
                return await run_case(model, case, max_tokens=max_tokens)

            def keep(
                result: CaseResult,
                done: dict[str, CaseResult] = done,
                index: int = index,
                where: str = where,
                earlier_seconds: float = earlier_seconds,
                started: float = started,
                config: EvalConfig = config,
            ) -> None:
                done[result.case.name] = result
                seconds[index] = earlier_seconds + time.perf_counter() - started
                save("running")
                if save_traces is not None:
                    _save_trace(result, config, save_traces)
                if progress is not None:
                    outcome = result.outcome
                    ran = (
                        f"{outcome.seconds:.1f} s, {outcome.output_tokens} tokens"
                        if outcome
                        else "eval error"
                    )
                    verdict = "pass" if result.passed else "FAIL"
                    case = result.case
                    progress(
                        f"{where} {len(done)}/{len(suite)} {case.category}/{case.name}: {ran}, {verdict}"
                    )

            dataset = Dataset[EvalCase, CaseOutcome, Any](
                name="pydantic-mlx",
                cases=[
                    Case(name=c.name, inputs=c, evaluators=case_evaluators(c.expect))
                    for c in suite
                    if c.name not in done
                ],
            )
            await dataset.evaluate(
                task,
                name=config.label,
                max_concurrency=1,
                progress=False,
                lifecycle=lambda case, keep=keep: _KeepResult(case, keep),
            )
            seconds[index] = earlier_seconds + time.perf_counter() - started
    except (asyncio.CancelledError, KeyboardInterrupt):
        save("interrupted")
        raise
    save("finished")
    return so_far()


class _KeepResult(CaseLifecycle[EvalCase, CaseOutcome, Any]):
    """Hands each case's verdict over as soon as its evaluators end (pydantic-evals' own report
    comes only when every case has run, so an interrupted run would lose them all)."""

    def __init__(self, case: Case[EvalCase, CaseOutcome, Any], keep: Callable[[CaseResult], None]) -> None:
        super().__init__(case)
        self._keep = keep

    async def teardown(
        self,
        result: ReportCase[EvalCase, CaseOutcome, Any] | ReportCaseFailure[EvalCase, CaseOutcome, Any] | None,
    ) -> None:
        if result is not None:  # None: the case was cancelled, nothing finished
            self._keep(_case_result(self.case.inputs, result))


def _reusable(
    config: EvalConfig, suite: list[EvalCase], earlier: list[ConfigResult]
) -> dict[str, CaseResult]:
    """The earlier results worth keeping: same configuration, same case, and the model's run ended
    (an eval error, such as a crashed evaluator, is run again)."""
    kept = {
        r.case.name: r for e in earlier if e.config == config for r in e.cases if r.outcome and not r.error
    }
    return {c.name: kept[c.name] for c in suite if c.name in kept and kept[c.name].case == c}


def _case_result(
    case: EvalCase,
    reported: ReportCase[EvalCase, CaseOutcome, Any] | ReportCaseFailure[EvalCase, CaseOutcome, Any],
) -> CaseResult:
    if isinstance(reported, ReportCaseFailure):
        return CaseResult(case, [], None, error=reported.error_message)
    checks = [Check(name, bool(result.value), result.reason) for name, result in reported.assertions.items()]
    errors = [f"{f.name}: {f.error_message}" for f in reported.evaluator_failures]
    return CaseResult(case, checks, reported.output, error="; ".join(errors) or None)


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "unnamed"


def _save_trace(result: CaseResult, config: EvalConfig, folder: Path) -> None:
    """Write a finished case's trace; an eval error (no run) has none."""
    outcome, case = result.outcome, result.case
    if outcome is None:
        return
    trace = Trace(
        name=_file_name(case.name),
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
        },
    )
    save_trace(trace, folder / _file_name(config.label))
