"""`pydantic-mlx eval`: score local model configurations on agent cases, side by side.

    from pydantic_mlx.eval import EvalConfig, run_eval, summary_table

    results = await run_eval(
        [EvalConfig("mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit")], report=Path("eval-report.html")
    )
    print(summary_table(results))

With `report`, the HTML report and its JSON twin are rewritten after every case, so an interrupted
run keeps what finished, and `resume=True` continues it.

Built on pydantic-evals: each case is a `pydantic_evals.Case` whose task is a real PydanticAI
agent run with real tools in a temporary sandbox, scored by the evaluators in `_checks`. Needs the
`eval` extra: `pip install -e ".[eval]"` in a checkout, `pip install "pydantic-mlx[eval]"` from an index.
"""

from __future__ import annotations

import importlib

from .._install import install_hint

try:
    importlib.import_module("pydantic_evals")  # every submodule needs it
except ModuleNotFoundError as missing:
    if missing.name != "pydantic_evals":
        raise
    # Said here, not as a bare "No module named 'pydantic_evals'" from deep inside a submodule.
    raise ModuleNotFoundError(
        f"pydantic_mlx.eval needs pydantic-evals, which the eval extra installs: {install_hint('eval')}",
        name="pydantic_evals",
    ) from None

from ._checks import (
    AnswerIs,
    AnswerUsesResult,
    CaseOutcome,
    CodePassesTests,
    FilesWritten,
    RunCompleted,
    ToolCallsMade,
    tool_calls,
)
from ._report import (
    EvalRun,
    case_table,
    json_report_path,
    read_report,
    render_html_report,
    summary_table,
    write_html_report,
    write_report,
)
from ._results import CaseResult, Check, ConfigError, ConfigResult, EvalConfig, ReportError, RunStatus
from ._runner import DEFAULT_MAX_TOKENS, run_case, run_eval
from ._sandbox import TOOLBOX, Sandbox
from ._suite import EvalCase, Expectation, ExpectedCall, SuiteError, builtin_suite, load_suite

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "TOOLBOX",
    "AnswerIs",
    "AnswerUsesResult",
    "CaseOutcome",
    "CaseResult",
    "Check",
    "CodePassesTests",
    "ConfigError",
    "ConfigResult",
    "EvalCase",
    "EvalConfig",
    "EvalRun",
    "Expectation",
    "ExpectedCall",
    "FilesWritten",
    "ReportError",
    "RunCompleted",
    "RunStatus",
    "Sandbox",
    "SuiteError",
    "ToolCallsMade",
    "builtin_suite",
    "case_table",
    "json_report_path",
    "load_suite",
    "read_report",
    "render_html_report",
    "run_case",
    "run_eval",
    "summary_table",
    "tool_calls",
    "write_html_report",
    "write_report",
]
