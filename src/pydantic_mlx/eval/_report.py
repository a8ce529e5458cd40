"""The eval's results as text tables and as one self-contained HTML page with every transcript."""

from __future__ import annotations

import html
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from ._results import CaseResult, ConfigResult, ReportError, RunStatus

__all__ = [
    "REPORTED_PACKAGES",
    "EvalRun",
    "case_table",
    "json_report_path",
    "read_report",
    "render_html_report",
    "runtime_versions",
    "summary_table",
    "transcript",
    "write_html_report",
    "write_report",
]


REPORTED_PACKAGES = ("pydantic-mlx", "mlx", "mlx-lm", "pydantic-ai-slim", "pydantic-evals", "llguidance")
"""Whose versions a report records: what generated, parsed and scored its cases."""


def runtime_versions() -> dict[str, str]:
    """Python, the platform and `REPORTED_PACKAGES` (those installed) as the report shows them."""
    versions = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class EvalRun:
    """A whole eval run as the reports record it: its results so far and whether it ended."""

    status: RunStatus
    total_cases: int
    """Runs the eval was asked for: configurations × suite cases × repeats."""
    max_tokens: int
    results: list[ConfigResult]
    temperature: float = 0.0
    """0: greedy decoding."""
    repeat: int = 1
    """Runs of each case per configuration."""
    seed: int = 0
    """Repeat k of a case sampled from seed `seed + k - 1` (when `temperature` is above 0)."""
    versions: dict[str, str] = field(default_factory=runtime_versions)
    """What ran the cases (`runtime_versions()` when the report was written)."""

    @property
    def finished_cases(self) -> int:
        return sum(len(r.cases) for r in self.results)

    @property
    def note(self) -> str | None:
        """What a reader must know before trusting the tables: the run is partial or was interrupted."""
        done = f"{self.finished_cases} of {self.total_cases} cases"
        if self.status == "interrupted":
            return f"Interrupted after {done}."
        if self.status == "out_of_time":
            return f"Stopped at the time limit after {done}."
        if self.status == "running":
            return f"Partial: {done} finished; the run had not ended when this was written."
        return None


def _categories(results: Sequence[ConfigResult]) -> list[str]:
    return list(dict.fromkeys(c for r in results for c in r.categories))


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _score(result: ConfigResult, category: str | None = None) -> str:
    return f"{result.score(category):.0%} ({result.passed(category)}/{result.count(category)})"


def summary_table(results: Sequence[ConfigResult]) -> str:
    """One row per configuration: overall and per-category scores (runs passed), with repeats the
    cases that passed at least once, generated tokens/s, wall time."""
    categories = _categories(results)
    repeated = _repeated(results)
    header = [
        "configuration",
        "overall",
        *categories,
        *(["cases passed once+"] if repeated else []),
        "tokens/s",
        "time",
    ]
    rows = [
        [
            r.config.label,
            _score(r),
            *(_score(r, c) for c in categories),
            *([_any_passed(r)] if repeated else []),
            f"{r.tokens_per_second:.1f}",
            f"{r.seconds:.0f} s",
        ]
        for r in results
    ]
    return _grid(header, rows)


def _any_passed(result: ConfigResult) -> str:
    """Cases with at least one passing run, out of the cases run (what rejection sampling can keep)."""
    counts = result.pass_counts().values()
    return f"{sum(passed > 0 for passed, _ in counts)}/{len(counts)}"


def _repeated(results: Sequence[ConfigResult]) -> bool:
    """Whether some case ran more than once under a configuration (an eval with `repeat`)."""
    return any(r.repeat > 1 for result in results for r in result.cases)


def _tally(counts: tuple[int, int] | None, repeated: bool) -> str:
    """A case's cell: pass/FAIL for one run, passes out of runs (`2/4`) for repeats, `-` for none."""
    if counts is None:
        return "-"
    passed, runs = counts
    return f"{passed}/{runs}" if repeated else "pass" if passed else "FAIL"


def case_table(results: Sequence[ConfigResult]) -> str:
    """One row per case, one column per configuration: pass, fail, or `-` for a case that did not
    run; with repeats, the runs that passed out of those made (`3/8`)."""
    tallies = [r.pass_counts() for r in results]
    repeated = _repeated(results)
    cases = {c.case.name: c.case for r in results for c in r.cases}.values()
    header = ["case", *(r.config.label for r in results)]
    rows = [
        [f"{case.category}/{case.name}", *(_tally(t.get(case.name), repeated) for t in tallies)]
        for case in cases
    ]
    return _grid(header, rows) if rows else ""


def transcript(messages: Sequence[ModelMessage]) -> list[tuple[str, str]]:
    """The run's messages as (kind, text) lines: every part of every request and response."""
    lines: list[tuple[str, str]] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, SystemPromptPart):
                    lines.append(("system", part.content))
                elif isinstance(part, UserPromptPart):
                    lines.append(
                        ("user", part.content if isinstance(part.content, str) else str(part.content))
                    )
                elif isinstance(part, ToolReturnPart):
                    outcome = "" if part.outcome == "success" else f" ({part.outcome})"
                    lines.append((f"tool result · {part.tool_name}{outcome}", part.model_response_str()))
                else:  # retry feedback and the rarer request parts: their content is what the model saw
                    content = getattr(part, "content", part)
                    lines.append((part.part_kind, content if isinstance(content, str) else str(content)))
        else:
            for part in message.parts:
                if isinstance(part, TextPart):
                    lines.append(("model text", part.content))
                elif isinstance(part, ThinkingPart):
                    lines.append(("model thinking", part.content))
                elif isinstance(part, ToolCallPart):
                    lines.append(("model tool call", f"{part.tool_name}({part.args_as_json_str()})"))
                else:
                    lines.append((type(part).__name__, str(part)))
    return lines


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pass { color: #176117; } .fail { color: #a31515; font-weight: bold; }
details { margin: .3em 0 .3em 1em; } summary { cursor: pointer; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 6px; margin: 2px 0 8px; }
.kind { color: #555; font-size: 12px; }
table.grid td:not(:first-child) { text-align: center; }
.note { background: #fff3cd; border: 1px solid #e0c36a; padding: 6px 10px; font-weight: bold; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _case_details(result: CaseResult, repeated: bool) -> str:
    which = f" #{result.repeat}" if repeated else ""
    parts = [f"<summary>{_e(result.case.name)}{which} — {_verdict(result.passed)}</summary><ul>"]
    parts += [
        f"<li>{_e(c.name)}: {_verdict(c.passed)}{' — ' + _e(c.reason) if c.reason else ''}</li>"
        for c in result.checks
    ]
    if result.error:
        parts.append(f"<li>eval error: {_e(result.error)}</li>")
    parts.append("</ul>")
    outcome = result.outcome
    if outcome is not None:
        parts.append(
            f'<p class="kind">{outcome.output_tokens} tokens generated, {outcome.seconds:.1f} s'
            f"{', run error: ' + _e(outcome.error) if outcome.error else ''}</p>"
        )
        for kind, text in transcript(outcome.messages):
            parts.append(f'<div class="kind">{_e(kind)}</div><pre>{_e(text)}</pre>')
        if result.case.expect.files:
            shown = json.dumps(outcome.files_after, ensure_ascii=False, indent=2)
            parts.append(f'<div class="kind">sandbox files after the run</div><pre>{_e(shown)}</pre>')
    return f"<details>{''.join(parts)}</details>"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, classes: str = "") -> str:
    """Cells are HTML already (escape text with `_e`)."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{classes}"><tr>{head}</tr>{body}</table>'


def _case_grid(results: Sequence[ConfigResult]) -> str:
    """`case_table` as HTML: one row per case, pass/FAIL (or `-`, not run) per configuration, with
    each run's time; with repeats, passes out of runs and their total time."""
    runs = [{name: [c for c in r.cases if c.case.name == name] for name in r.pass_counts()} for r in results]
    repeated = _repeated(results)
    cases = {c.case.name: c.case for r in results for c in r.cases}.values()

    def cell(chosen: list[CaseResult] | None) -> str:
        if not chosen:
            return "-"
        spent = sum(c.outcome.seconds for c in chosen if c.outcome)
        seconds = f' <span class="kind">{spent:.1f} s</span>' if any(c.outcome for c in chosen) else ""
        passed = sum(c.passed for c in chosen)
        if repeated:
            shown = f"{passed}/{len(chosen)}"
            return (
                f'<span class="pass">{shown}</span>' if passed else f'<span class="fail">{shown}</span>'
            ) + seconds
        return _verdict(chosen[0].passed) + seconds

    rows = [[_e(f"{case.category}/{case.name}"), *(cell(r.get(case.name)) for r in runs)] for case in cases]
    return _html_table(["case", *(_e(r.config.label) for r in results)], rows, classes="grid") if rows else ""


def _run_settings(
    max_tokens: int | None, versions: dict[str, str] | None, sampling: tuple[float, int, int] | None
) -> str:
    items = [f"max tokens per request {max_tokens}"] if max_tokens is not None else []
    if sampling is not None:
        temperature, repeat, seed = sampling
        items.append(f"temperature {temperature:g}, seed {seed}" if temperature > 0 else "greedy decoding")
        if repeat > 1:
            items.append(f"{repeat} runs per case")
    items += [f"{name} {value}" for name, value in (versions or {}).items()]
    return f'<p class="kind">Run: {_e(", ".join(items))}</p>' if items else ""


def render_html_report(
    results: Sequence[ConfigResult],
    title: str = "pydantic-mlx eval",
    *,
    note: str | None = None,
    max_tokens: int | None = None,
    versions: dict[str, str] | None = None,
    sampling: tuple[float, int, int] | None = None,
) -> str:
    """A self-contained HTML page: the run's settings (`sampling`: temperature, repeats per case,
    seed) and versions, the summary table (scores,
    tokens/s, time), the pass/fail grid of every case per configuration (as the command prints it,
    with each run's time), then every case with each configuration's checks and full transcript
    (prompts, calls, tool results, answers); `note` is shown above all."""
    categories = _categories(results)
    repeated = _repeated(results)
    summary = [
        [
            _e(r.config.label),
            _e(_score(r)),
            *(_e(_score(r, c)) for c in categories),
            *([_any_passed(r)] if repeated else []),
            f"{r.tokens_per_second:.1f}",
            f"{r.seconds:.0f} s",
        ]
        for r in results
    ]
    body = [f"<h1>{_e(title)}</h1>"]
    if note:
        body.append(f'<p class="note">{_e(note)}</p>')
    body.append(_run_settings(max_tokens, versions, sampling))
    header = [
        "configuration",
        "overall",
        *map(_e, categories),
        *(["cases passed once+"] if repeated else []),
        "tokens/s",
        "time",
    ]
    body.append(_html_table(header, summary))
    body.append(_case_grid(results))
    for r in results:
        config = r.config
        settings = (
            f"model {config.model}, adapter {config.adapter or '—'}, "
            f"tool format {config.tool_format or 'from the chat template'}, "
            f"constrained {'yes' if config.constrained else 'no'}"
        )
        body.append(f'<h2>{_e(config.label)}</h2><p class="kind">{_e(settings)}</p>')
        for category in r.categories:
            body.append(f"<h3>{_e(category)} — {_e(_score(r, category))}</h3>")
            body += [_case_details(c, repeated) for c in r.cases if c.case.category == category]
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_html_report(results: Sequence[ConfigResult], path: Path, title: str = "pydantic-mlx eval") -> Path:
    """Write `render_html_report(results)` to `path` (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html_report(results, title), encoding="utf-8")
    return path


_RUN = TypeAdapter(EvalRun)


def json_report_path(report: Path) -> Path:
    """Where the JSON twin of the HTML report `report` goes: beside it, ending in `.json`."""
    json_path = report.with_suffix(".json")
    if json_path == report:
        raise ReportError(f"{report}: the report is the HTML page; its JSON twin is written beside it")
    return json_path


def write_report(run: EvalRun, report: Path, title: str = "pydantic-mlx eval") -> tuple[Path, Path]:
    """Write the HTML report to `report` and the run as JSON beside it; return both paths.

    Each file is replaced whole (written aside, then renamed), so an interruption while writing
    leaves the previous version, never half a file. The JSON holds everything `read_report` needs
    to resume, plus `passed` per run and per configuration and `case_passes` (each case's passes
    and runs, `{name: {"passed": k, "runs": n}}`) for scripts.
    """
    json_path = json_report_path(report)
    data: dict[str, Any] = _RUN.dump_python(run, mode="json")
    data["finished_cases"] = run.finished_cases
    for result, dumped in zip(run.results, data["results"], strict=True):
        dumped["passed"], dumped["count"] = result.passed(), result.count()
        dumped["case_passes"] = {
            name: {"passed": passed, "runs": runs} for name, (passed, runs) in result.pass_counts().items()
        }
        for case, dumped_case in zip(result.cases, dumped["cases"], strict=True):
            dumped_case["passed"] = case.passed
    _replace(json_path, json.dumps(data, ensure_ascii=False, indent=1))
    _replace(
        report,
        render_html_report(
            run.results,
            title,
            note=run.note,
            max_tokens=run.max_tokens,
            versions=run.versions,
            sampling=(run.temperature, run.repeat, run.seed),
        ),
    )
    return report, json_path


def read_report(json_path: Path) -> EvalRun:
    """The run a JSON report written by `write_report` holds; `ReportError` saying why if it cannot."""
    try:
        return _RUN.validate_json(json_path.read_bytes())
    except OSError as exc:
        raise ReportError(f"cannot read report {json_path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise ReportError(f"{json_path} is not a pydantic-mlx eval report: {exc.errors()[0]['msg']}") from exc


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(text, encoding="utf-8")
    os.replace(aside, path)
