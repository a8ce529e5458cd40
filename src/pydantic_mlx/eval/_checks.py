"""The pydantic-evals evaluators that score a case, one per kind of check.

Scoring reads the run's messages, never the text's appearance: a call counts only as a
`ToolCallPart` of a model response (a tool's *return* is not a call; text holding JSON that looks
like a call is not a call), and a result counts as used only when the final answer repeats a piece
of it that the run's tool results really contain.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.tools import ToolDefinition
from pydantic_evals.evaluators import EvaluationReason, Evaluator, EvaluatorContext

from ._suite import EvalCase, Expectation, ExpectedCall

__all__ = [
    "CODE_TIMEOUT",
    "AnswerIs",
    "AnswerUsesResult",
    "CaseOutcome",
    "CodePassesTests",
    "FilesWritten",
    "RunCompleted",
    "ToolCallsMade",
    "case_evaluators",
    "tool_calls",
]

CODE_TIMEOUT = 10.0
"""Seconds the answer's code and its tests may run."""


@dataclass
class CaseOutcome:
    """What one agent run produced: the answer, the whole transcript, and what it cost."""

    answer: str
    messages: list[ModelMessage]
    error: str | None = None
    """Why the run stopped without an answer (usage limit, too many retries...), if it did."""
    files_after: dict[str, str] = field(default_factory=dict[str, str])
    seconds: float = 0.0
    output_tokens: int = 0
    decode_seconds: float = 0.0
    """Generation time reported by the model (MLXModel's `decode_seconds`), summed over requests."""
    tools: list[ToolDefinition] = field(default_factory=list[ToolDefinition])
    """The tools the run's last request offered the model (for its trace)."""
    instructions: str | None = None
    """The instructions in force for the run's last request (for its trace)."""


Context = EvaluatorContext[EvalCase, CaseOutcome, Any]


def tool_calls(messages: list[ModelMessage]) -> list[ToolCallPart]:
    """The tool calls the model made: `ToolCallPart`s of model responses, nothing else."""
    return [
        part
        for message in messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]


def _call_args(call: ToolCallPart) -> dict[str, Any] | None:
    try:
        # Without `raise_if_invalid`, unreadable arguments come back as `{"INVALID_JSON": ...}`,
        # which would match a call expected with no arguments.
        return call.args_as_dict(raise_if_invalid=True)
    except (ValueError, TypeError, AssertionError):  # arguments that are not a JSON object
        return None


def _matches(call: ToolCallPart, expected: ExpectedCall) -> bool:
    args = _call_args(call)
    return (
        call.tool_name == expected.tool
        and args is not None
        and all(key in args and args[key] == value for key, value in expected.args.items())
    )


def _describe(call: ToolCallPart) -> str:
    args = _call_args(call)
    shown = json.dumps(args, ensure_ascii=False) if args is not None else repr(call.args)
    return f"{call.tool_name}({shown})"


@dataclass
class RunCompleted(Evaluator[EvalCase, CaseOutcome, Any]):
    """The agent run ended with an answer (not with an error such as too many retries)."""

    def evaluate(self, ctx: Context) -> EvaluationReason:
        error = ctx.output.error
        return EvaluationReason(value=error is None, reason=error)


@dataclass
class ToolCallsMade(Evaluator[EvalCase, CaseOutcome, Any]):
    """Each expected call was made as a real tool call with the expected arguments."""

    calls: list[ExpectedCall]

    def evaluate(self, ctx: Context) -> EvaluationReason:
        made = tool_calls(ctx.output.messages)
        missing = [e for e in self.calls if not any(_matches(call, e) for call in made)]
        if not missing:
            return EvaluationReason(value=True)
        wanted = ", ".join(f"{e.tool}({json.dumps(e.args, ensure_ascii=False)})" for e in missing)
        seen = ", ".join(_describe(call) for call in made) or "no tool calls"
        return EvaluationReason(value=False, reason=f"missing {wanted}; made {seen}")


@dataclass
class AnswerUsesResult(Evaluator[EvalCase, CaseOutcome, Any]):
    """The final answer repeats each snippet, and each snippet came back from a tool in this run."""

    snippets: list[str]

    def evaluate(self, ctx: Context) -> EvaluationReason:
        answer = ctx.output.answer.casefold()
        results = " ".join(
            part.model_response_str().casefold()
            for message in ctx.output.messages
            for part in message.parts
            if isinstance(part, ToolReturnPart) and part.outcome == "success"
        )
        not_returned = [s for s in self.snippets if s.casefold() not in results]
        not_answered = [s for s in self.snippets if s.casefold() not in answer]
        problems: list[str] = []
        if not_returned:
            problems.append(f"no tool result held {not_returned}")
        if not_answered:
            problems.append(f"the answer does not mention {not_answered}")
        return EvaluationReason(value=not problems, reason="; ".join(problems) or None)


@dataclass
class FilesWritten(Evaluator[EvalCase, CaseOutcome, Any]):
    """The sandbox holds these files after the run (trailing whitespace ignored)."""

    files: dict[str, str]

    def evaluate(self, ctx: Context) -> EvaluationReason:
        after = ctx.output.files_after
        problems = [
            f"{path}: {'missing' if path not in after else f'holds {after[path]!r}'}"
            for path, text in self.files.items()
            if path not in after or after[path].rstrip() != text.rstrip()
        ]
        return EvaluationReason(value=not problems, reason="; ".join(problems) or None)


_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def answer_code(answer: str) -> str:
    """The code of an answer: its last ```python (or unlabelled) block, else the whole answer."""
    blocks = _FENCE.findall(answer)
    return blocks[-1] if blocks else answer


@dataclass
class CodePassesTests(Evaluator[EvalCase, CaseOutcome, Any]):
    """The answer's code, followed by the tests, runs cleanly in a fresh isolated interpreter."""

    tests: str
    timeout: float = CODE_TIMEOUT

    def evaluate(self, ctx: Context) -> EvaluationReason:
        source = f"{answer_code(ctx.output.answer)}\n\n# tests\n{self.tests}"
        with tempfile.TemporaryDirectory(prefix="pydantic-mlx-code-") as folder:
            script = Path(folder) / "check.py"
            script.write_text(source, encoding="utf-8")
            try:
                done = subprocess.run(
                    [sys.executable, "-I", str(script)],
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return EvaluationReason(value=False, reason=f"did not finish within {self.timeout:g} s")
        if done.returncode == 0:
            return EvaluationReason(value=True)
        last_lines = "\n".join(done.stderr.strip().splitlines()[-3:])
        return EvaluationReason(value=False, reason=f"exit code {done.returncode}: {last_lines}")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ANSWER_LINE = re.compile(r"answer\s*:(.*)", re.IGNORECASE)


def final_statement(answer: str) -> str:
    """What an answer concludes: the text after its last 'Answer:', else its last non-empty line."""
    marked = _ANSWER_LINE.findall(answer)
    if marked:
        return marked[-1].strip()
    lines = [line for line in answer.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@dataclass
class AnswerIs(Evaluator[EvalCase, CaseOutcome, Any]):
    """The answer's final statement gives the expected answer, and no other choice.

    A numeric answer must be the first number there (commas ignored); otherwise it must be named
    there as a whole word, and no other of `choices` may be.
    """

    answer: str
    choices: list[str] = field(default_factory=list[str])

    def evaluate(self, ctx: Context) -> EvaluationReason:
        statement = final_statement(ctx.output.answer)
        if _NUMBER.fullmatch(self.answer):
            numbers = _NUMBER.findall(statement.replace(",", ""))
            ok = bool(numbers) and float(numbers[0]) == float(self.answer)
        else:
            named = {c for c in {self.answer, *self.choices} if _names(statement, c)}
            ok = named == {self.answer}
        return EvaluationReason(value=ok, reason=None if ok else f"expected {self.answer}, got {statement!r}")


def _names(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def case_evaluators(expect: Expectation) -> list[Evaluator[EvalCase, CaseOutcome, Any]]:
    """The evaluators of one case: the run must complete, plus one evaluator per expected check."""
    evaluators: list[Evaluator[EvalCase, CaseOutcome, Any]] = [RunCompleted()]
    if expect.calls:
        evaluators.append(ToolCallsMade(list(expect.calls)))
    if expect.answer_uses_result:
        evaluators.append(AnswerUsesResult(list(expect.answer_uses_result)))
    if expect.files:
        evaluators.append(FilesWritten(dict(expect.files)))
    if expect.tests is not None:
        evaluators.append(CodePassesTests(expect.tests))
    if expect.answer is not None:
        evaluators.append(AnswerIs(expect.answer, list(expect.choices)))
    return evaluators
