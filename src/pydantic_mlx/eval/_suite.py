"""Eval cases: what the agent is asked, which real tools it gets, and what counts as a pass.

A suite is a list of `EvalCase`s. The built-in one (`builtin_suite()`) has three categories:
`tools` (call the right tool with the right arguments and use its result), `code` (write a
function that passes tests run in a subprocess) and `reasoning` (short questions with one
checkable answer). `load_suite(path)` reads your own cases from a YAML or JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "CODE_SYSTEM_PROMPT",
    "REASONING_SYSTEM_PROMPT",
    "TOOLS_SYSTEM_PROMPT",
    "EvalCase",
    "Expectation",
    "ExpectedCall",
    "SuiteError",
    "builtin_suite",
    "load_suite",
]

TOOLS_SYSTEM_PROMPT = "You are a coding assistant. Use the tools to look at the project before answering."
"""The demo model's system prompt, so the tiny model meets the prompts it was trained on."""

CODE_SYSTEM_PROMPT = "You are a Python programmer. Answer with the complete code in one ```python block."

REASONING_SYSTEM_PROMPT = (
    "Answer the question. Think briefly, then end with a last line of the form 'Answer: <answer>'."
)

ToolName = Literal["read_file", "list_files", "write_file", "run_command"]


class SuiteError(ValueError):
    """A suite file that cannot be read or holds an invalid case."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedCall(_Strict):
    """A tool call the agent must make: the tool's name, and the arguments that must match exactly
    (arguments not listed are not checked)."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict[str, Any])


class Expectation(_Strict):
    """What a case checks. Every check given must pass for the case to pass."""

    calls: list[ExpectedCall] = Field(default_factory=list[ExpectedCall])
    """Each must be made as a real tool call (text that looks like a call does not count)."""
    answer_uses_result: list[str] = Field(default_factory=list[str])
    """Snippets of tool results the final answer must repeat (case-insensitive); each must occur
    in a tool result of the run, so the answer cannot know them without the tool."""
    files: dict[str, str] = Field(default_factory=dict[str, str])
    """Files the sandbox must hold after the run (compared without trailing whitespace)."""
    tests: str | None = None
    """Python test code run against the code of the final answer (a ```python block, else the
    whole answer) in a fresh interpreter; the case passes when it exits cleanly in time."""
    answer: str | None = None
    """The reasoning answer: read from the last 'Answer:' (else the last line) of the final answer;
    a number must equal it, anything else must be the only one of `choices` named there."""
    choices: list[str] = Field(default_factory=list[str])

    @model_validator(mode="after")
    def _checks_something(self) -> Expectation:
        if not (self.calls or self.answer_uses_result or self.files or self.tests or self.answer):
            raise ValueError(
                "a case must expect something: calls, answer_uses_result, files, tests or answer"
            )
        return self


class EvalCase(_Strict):
    """One agent run: a prompt, the system prompt, the real tools offered, the sandbox's files."""

    name: str
    category: str
    prompt: str
    expect: Expectation
    system_prompt: str = TOOLS_SYSTEM_PROMPT
    tools: list[ToolName] = Field(default_factory=list[ToolName])
    files: dict[str, str] = Field(default_factory=dict[str, str])
    """The sandbox's files before the run (relative path -> text)."""


class _SuiteFile(_Strict):
    cases: list[EvalCase]


def load_suite(path: Path) -> list[EvalCase]:
    """The cases of a YAML (`.yaml`/`.yml`) or JSON file: `{"cases": [EvalCase, ...]}`.

    Raises `SuiteError` with the file name and what is wrong (unreadable file, bad syntax, a field
    that is missing or unknown, duplicate names).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read suite {path}: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # pydantic-evals depends on PyYAML

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError or json.JSONDecodeError: report the position
        raise SuiteError(f"cannot parse suite {path}: {exc}") from exc
    try:
        cases = _SuiteFile.model_validate(data).cases
    except ValidationError as exc:
        raise SuiteError(f"invalid suite {path}:\n{_describe_errors(exc)}") from exc
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SuiteError(f"invalid suite {path}: duplicate case names {duplicates}")
    if not cases:
        raise SuiteError(f"suite {path} has no cases")
    return cases


def _describe_errors(error: ValidationError) -> str:
    """One line per mistake, located in the file's own terms (`cases[0].expect.bogus`), without
    pydantic's header, which names the private model class that validates the file."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"])
        lines.append(f"  {where.lstrip('.') or '(top level)'}: {detail['msg']} (got {detail['input']!r})")
    return "\n".join(lines)


_DEMO_FILES = {
    "README.md": "# Demo\nA tiny project.",
    "pyproject.toml": '[project]\nname = "demo"\nversion = "0.1.0"',
    "setup.cfg": "[metadata]\nname = demo",
}
"""The project the demo model was trained to look at."""

_READ_TOOLS: list[ToolName] = ["read_file", "list_files"]
_ALL_TOOLS: list[ToolName] = ["read_file", "list_files", "write_file", "run_command"]


def builtin_suite() -> list[EvalCase]:
    """The built-in suite: 7 `tools` cases, 3 `code` cases, 4 `reasoning` cases."""
    return [*_TOOL_CASES, *_CODE_CASES, *_REASONING_CASES]


_TOOL_CASES = [
    EvalCase(
        name="read_file",
        category="tools",
        prompt="What does README.md say?",
        tools=_READ_TOOLS,
        files=_DEMO_FILES,
        expect=Expectation(
            calls=[ExpectedCall(tool="read_file", args={"path": "README.md"})],
            answer_uses_result=["tiny project"],
        ),
    ),
    EvalCase(
        name="read_config",
        category="tools",
        prompt="Show me pyproject.toml.",
        tools=_READ_TOOLS,
        files=_DEMO_FILES,
        expect=Expectation(
            calls=[ExpectedCall(tool="read_file", args={"path": "pyproject.toml"})],
            answer_uses_result=["0.1.0"],
        ),
    ),
    EvalCase(
        name="list_files",
        category="tools",
        prompt="Which files are in the project?",
        tools=_READ_TOOLS,
        files=_DEMO_FILES,
        expect=Expectation(
            calls=[ExpectedCall(tool="list_files")],
            answer_uses_result=["pyproject.toml", "setup.cfg"],
        ),
    ),
    EvalCase(
        name="write_file",
        category="tools",
        prompt="Create the file hello.txt containing exactly: Hello, world!",
        tools=_ALL_TOOLS,
        expect=Expectation(
            calls=[ExpectedCall(tool="write_file", args={"path": "hello.txt"})],
            files={"hello.txt": "Hello, world!"},
        ),
    ),
    EvalCase(
        name="run_command",
        category="tools",
        prompt="Run `python3 count.py` and tell me the number it prints.",
        tools=_ALL_TOOLS,
        files={"count.py": "print(sum(n * n for n in range(1, 13)))\n"},
        expect=Expectation(calls=[ExpectedCall(tool="run_command")], answer_uses_result=["650"]),
    ),
    EvalCase(
        name="chain_read_write",
        category="tools",
        prompt="Read VERSION, then write release.txt whose only content is 'Release ' followed by "
        "that version.",
        tools=_ALL_TOOLS,
        files={"VERSION": "2.4.1\n"},
        expect=Expectation(
            calls=[
                ExpectedCall(tool="read_file", args={"path": "VERSION"}),
                ExpectedCall(tool="write_file", args={"path": "release.txt"}),
            ],
            files={"release.txt": "Release 2.4.1"},
        ),
    ),
    EvalCase(
        name="chain_run_read",
        category="tools",
        prompt="Run `python3 report.py`, then read the file it writes and tell me the total it holds.",
        tools=_ALL_TOOLS,
        files={
            "report.py": "with open('report.txt', 'w') as f:\n"
            "    f.write('total: ' + str(sum(range(17, 52, 7))))\n"
            "print('wrote report.txt')\n"
        },
        expect=Expectation(
            calls=[
                ExpectedCall(tool="run_command"),
                ExpectedCall(tool="read_file", args={"path": "report.txt"}),
            ],
            answer_uses_result=["155"],
        ),
    ),
]

_CODE_CASES = [
    EvalCase(
        name="is_palindrome",
        category="code",
        system_prompt=CODE_SYSTEM_PROMPT,
        prompt="Write a Python function `is_palindrome(text: str) -> bool` that tells whether text reads "
        "the same backwards, ignoring case and every character that is not a letter or digit.",
        expect=Expectation(
            tests="assert is_palindrome('A man, a plan, a canal: Panama')\n"
            "assert is_palindrome('')\n"
            "assert is_palindrome('No 1on')\n"
            "assert not is_palindrome('hello')\n"
            "assert not is_palindrome('ab1')\n"
        ),
    ),
    EvalCase(
        name="word_counts",
        category="code",
        system_prompt=CODE_SYSTEM_PROMPT,
        prompt="Write a Python function `word_counts(text: str) -> dict[str, int]` that counts the "
        "lower-cased words of text, where words are separated by whitespace.",
        expect=Expectation(
            tests="assert word_counts('The cat the  DOG\\ncat') == {'the': 2, 'cat': 2, 'dog': 1}\n"
            "assert word_counts('') == {}\n"
        ),
    ),
    EvalCase(
        name="flatten",
        category="code",
        system_prompt=CODE_SYSTEM_PROMPT,
        prompt="Write a Python function `flatten(items: list) -> list` that returns the non-list "
        "elements of arbitrarily nested lists, in order.",
        expect=Expectation(
            tests="assert flatten([1, [2, [3, [4]], 5], [], 'ab']) == [1, 2, 3, 4, 5, 'ab']\n"
            "assert flatten([]) == []\n"
            "assert flatten([[[[]]]]) == []\n"
        ),
    ),
]

_REASONING_CASES = [
    EvalCase(
        name="multiply",
        category="reasoning",
        system_prompt=REASONING_SYSTEM_PROMPT,
        prompt="What is 17 times 23?",
        expect=Expectation(answer="391"),
    ),
    EvalCase(
        name="unit_price",
        category="reasoning",
        system_prompt=REASONING_SYSTEM_PROMPT,
        prompt="Three pencils cost 45 cents. How many cents do seven pencils cost?",
        expect=Expectation(answer="105"),
    ),
    EvalCase(
        name="trip_minutes",
        category="reasoning",
        system_prompt=REASONING_SYSTEM_PROMPT,
        prompt="A train leaves at 14:40 and arrives at 16:15 the same day. How many minutes does the "
        "trip take?",
        expect=Expectation(answer="95"),
    ),
    EvalCase(
        name="youngest",
        category="reasoning",
        system_prompt=REASONING_SYSTEM_PROMPT,
        prompt="Tom is older than Ann. Ann is older than Bob. Who is the youngest of the three?",
        expect=Expectation(answer="Bob", choices=["Tom", "Ann", "Bob"]),
    ),
]
