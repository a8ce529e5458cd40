"""`pydantic_mlx.eval`: scoring that cannot be fooled, sandboxed tools, suite files, configurations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_evals import Case, Dataset

from pydantic_mlx.eval import (
    CaseOutcome,
    CaseResult,
    Check,
    CodePassesTests,
    ConfigError,
    ConfigResult,
    EvalCase,
    EvalConfig,
    EvalRun,
    Expectation,
    ExpectedCall,
    ReportError,
    Sandbox,
    SuiteError,
    builtin_suite,
    case_table,
    load_suite,
    read_report,
    write_report,
)
from pydantic_mlx.eval._checks import case_evaluators, final_statement
from pydantic_mlx.eval._runner import _reusable  # pyright: ignore[reportPrivateUsage]
from pydantic_mlx.eval._sandbox import SandboxError


def score(expect: Expectation, outcome: CaseOutcome) -> dict[str, tuple[bool, str | None]]:
    """Each check's verdict, scored by pydantic-evals exactly as `run_eval` scores a case."""
    case = EvalCase(name="case", category="tools", prompt="p", expect=expect)
    dataset = Dataset[EvalCase, CaseOutcome, Any](
        name="t", cases=[Case(name=case.name, inputs=case, evaluators=case_evaluators(expect))]
    )
    report = dataset.evaluate_sync(lambda _: outcome, progress=False)
    assert not report.failures
    return {name: (bool(r.value), r.reason) for name, r in report.cases[0].assertions.items()}


def run(*responses: ModelResponse | ModelRequest, answer: str = "") -> CaseOutcome:
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("What does README.md say?")])]
    return CaseOutcome(answer=answer, messages=[*messages, *responses])


READ_README = Expectation(
    calls=[ExpectedCall(tool="read_file", args={"path": "README.md"})], answer_uses_result=["tiny project"]
)


def test_a_real_call_whose_result_the_answer_uses_passes() -> None:
    outcome = run(
        ModelResponse(parts=[ToolCallPart("read_file", {"path": "README.md"}, tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("read_file", "# Demo\nA tiny project.", tool_call_id="c1")]),
        ModelResponse(parts=[TextPart("It is a Tiny Project.")]),
        answer="It is a Tiny Project.",
    )
    assert score(READ_README, outcome) == {
        "RunCompleted": (True, None),
        "ToolCallsMade": (True, None),
        "AnswerUsesResult": (True, None),
    }


def test_text_holding_json_is_not_a_call() -> None:
    text = '{"name": "read_file", "arguments": {"path": "README.md"}} -- a tiny project'
    verdicts = score(READ_README, run(ModelResponse(parts=[TextPart(text)]), answer=text))
    assert verdicts["ToolCallsMade"] == (
        False,
        'missing read_file({"path": "README.md"}); made no tool calls',
    )
    # The answer names the snippet, but no tool ever returned it.
    assert verdicts["AnswerUsesResult"] == (False, "no tool result held ['tiny project']")


def test_a_tool_return_is_not_a_call() -> None:
    # A return without a call (e.g. forged into the history) does not count as the model calling.
    outcome = run(
        ModelRequest(parts=[ToolReturnPart("read_file", "# Demo\nA tiny project.", tool_call_id="x")]),
        ModelResponse(parts=[TextPart("A tiny project.")]),
        answer="A tiny project.",
    )
    verdicts = score(READ_README, outcome)
    assert verdicts["ToolCallsMade"][0] is False
    assert verdicts["AnswerUsesResult"] == (True, None)


def test_wrong_arguments_and_unused_results_fail() -> None:
    outcome = run(
        ModelResponse(parts=[ToolCallPart("read_file", '{"path": "setup.cfg"}', tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("read_file", "[metadata]\nname = demo", tool_call_id="c1")]),
        ModelResponse(parts=[TextPart("I read it.")]),
        answer="I read it.",
    )
    verdicts = score(READ_README, outcome)
    assert verdicts["ToolCallsMade"] == (
        False,
        'missing read_file({"path": "README.md"}); made read_file({"path": "setup.cfg"})',
    )
    assert verdicts["AnswerUsesResult"] == (
        False,
        "no tool result held ['tiny project']; the answer does not mention ['tiny project']",
    )


def test_unlisted_arguments_are_free_and_unparsable_arguments_never_match() -> None:
    expect = Expectation(calls=[ExpectedCall(tool="write_file", args={"path": "a.txt"})])
    extra = run(
        ModelResponse(parts=[ToolCallPart("write_file", {"path": "a.txt", "content": "x"})]), answer="ok"
    )
    assert score(expect, extra)["ToolCallsMade"] == (True, None)
    broken = run(ModelResponse(parts=[ToolCallPart("write_file", '{"path": "a.txt"')]), answer="ok")
    assert score(expect, broken)["ToolCallsMade"][0] is False


def test_a_run_that_ended_in_an_error_fails() -> None:
    outcome = CaseOutcome(answer="", messages=[], error="UsageLimitExceeded: too many requests")
    verdicts = score(Expectation(answer="391"), outcome)
    assert verdicts["RunCompleted"] == (False, "UsageLimitExceeded: too many requests")
    assert verdicts["AnswerIs"][0] is False


def test_files_written_compares_the_sandbox_after_the_run() -> None:
    expect = Expectation(files={"hello.txt": "Hello, world!"})
    written = CaseOutcome(answer="done", messages=[], files_after={"hello.txt": "Hello, world!\n"})
    assert score(expect, written)["FilesWritten"] == (True, None)
    wrong = CaseOutcome(answer="done", messages=[], files_after={"hello.txt": "Hello"})
    assert score(expect, wrong)["FilesWritten"] == (False, "hello.txt: holds 'Hello'")
    assert score(expect, CaseOutcome(answer="", messages=[]))["FilesWritten"] == (False, "hello.txt: missing")


CODE = Expectation(tests="assert double(2) == 4\nassert double(-1) == -2\n")


def test_code_is_judged_by_running_its_tests() -> None:
    good = "Here:\n```python\ndef double(x):\n    return 2 * x\n```\n"
    assert score(CODE, CaseOutcome(answer=good, messages=[]))["CodePassesTests"] == (True, None)
    # Keywords are not enough: the function must work.
    wrong = "```python\ndef double(x):\n    return x + 2  # double\n```"
    passed, reason = score(CODE, CaseOutcome(answer=wrong, messages=[]))["CodePassesTests"]
    assert not passed and reason is not None and "AssertionError" in reason
    # A bare answer without a fence is run as it is.
    bare = "def double(x):\n    return x * 2\n"
    assert score(CODE, CaseOutcome(answer=bare, messages=[]))["CodePassesTests"] == (True, None)


def test_code_that_never_ends_is_stopped_by_the_timeout() -> None:
    looping = "```python\ndef double(x):\n    while True:\n        pass\n```"
    case = EvalCase(name="loop", category="code", prompt="p", expect=Expectation(tests="double(1)\n"))
    dataset = Dataset[EvalCase, CaseOutcome, Any](
        name="t",
        cases=[Case(name="loop", inputs=case, evaluators=[CodePassesTests("double(1)\n", timeout=1.0)])],
    )
    report = dataset.evaluate_sync(lambda _: CaseOutcome(answer=looping, messages=[]), progress=False)
    verdict = report.cases[0].assertions["CodePassesTests"]
    assert (verdict.value, verdict.reason) == (False, "did not finish within 1 s")


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("17 * 23 = 391\nAnswer: 391", True),
        ("Answer: 391.", True),
        ("It is 391", True),  # no 'Answer:' line: the last line counts
        ("Maybe 390?\nAnswer: 390 or 391", False),  # the first number of the final statement
        ("Answer: 391\nNo wait, 17 * 23 is 400\nAnswer: 400", False),  # the last 'Answer:' counts
        ("391 is a guess.\nI am not sure.", False),
    ],
)
def test_a_numeric_answer_is_the_first_number_of_the_final_statement(answer: str, passed: bool) -> None:
    assert score(Expectation(answer="391"), CaseOutcome(answer=answer, messages=[]))["AnswerIs"][0] is passed


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("Tom > Ann > Bob.\nAnswer: Bob", True),
        ("Answer: bob", True),
        ("Answer: Ann or Bob", False),  # naming every choice is not an answer
        ("Answer: Bobby", False),
    ],
)
def test_a_choice_answer_must_name_only_the_expected_choice(answer: str, passed: bool) -> None:
    expect = Expectation(answer="Bob", choices=["Tom", "Ann", "Bob"])
    assert score(expect, CaseOutcome(answer=answer, messages=[]))["AnswerIs"][0] is passed


def test_final_statement() -> None:
    assert final_statement("x\nANSWER:  42 \n") == "42"
    assert final_statement("a\n\nb\n\n") == "b"
    assert final_statement("") == ""


def test_the_sandbox_keeps_paths_inside(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.write_files({"a/b.txt": "x"})
    assert sandbox.snapshot() == {"a/b.txt": "x"}
    for escape in ("../outside.txt", "/etc/passwd", "a/../../x"):
        with pytest.raises(SandboxError):
            sandbox.path(escape)


def test_the_builtin_suite_has_the_three_categories_and_valid_cases() -> None:
    suite = builtin_suite()
    names = [case.name for case in suite]
    assert len(names) == len(set(names)) == 14
    assert [case.category for case in suite].count("tools") == 7
    assert {case.category for case in suite} == {"tools", "code", "reasoning"}


def test_the_builtin_code_tests_pass_on_reference_solutions_and_fail_on_empty_code() -> None:
    solutions = {
        "is_palindrome": "def is_palindrome(text):\n"
        "    s = [c.lower() for c in text if c.isalnum()]\n    return s == s[::-1]\n",
        "word_counts": "def word_counts(text):\n    out = {}\n"
        "    for w in text.lower().split():\n        out[w] = out.get(w, 0) + 1\n    return out\n",
        "flatten": "def flatten(items):\n    out = []\n    for x in items:\n"
        "        out.extend(flatten(x) if isinstance(x, list) else [x])\n    return out\n",
    }
    for case in builtin_suite():
        if case.category == "code":
            answer = f"```python\n{solutions[case.name]}```"
            assert score(case.expect, CaseOutcome(answer=answer, messages=[]))["CodePassesTests"] == (
                True,
                None,
            )
            assert score(case.expect, CaseOutcome(answer="", messages=[]))["CodePassesTests"][0] is False


def test_suites_load_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "suite.yaml"
    yaml_file.write_text(
        "cases:\n"
        "  - name: add\n    category: reasoning\n    prompt: What is 2 + 2?\n"
        "    expect: {answer: '4'}\n"
        "  - name: read\n    category: tools\n    prompt: Read a.txt\n    tools: [read_file]\n"
        "    files: {a.txt: hello}\n"
        "    expect:\n      calls: [{tool: read_file, args: {path: a.txt}}]\n      answer_uses_result: [hello]\n"
    )
    cases = load_suite(yaml_file)
    assert [c.name for c in cases] == ["add", "read"]
    assert cases[1].expect.calls == [ExpectedCall(tool="read_file", args={"path": "a.txt"})]
    json_file = tmp_path / "suite.json"
    json_file.write_text(json.dumps({"cases": [c.model_dump() for c in cases]}))
    assert load_suite(json_file) == cases


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cases: [", "cannot parse suite"),
        ("cases:\n  - name: x\n    category: tools\n    prompt: p\n    expect: {}\n", "must expect"),
        (
            "cases:\n  - name: x\n    category: tools\n    prompt: p\n    tools: [rm_rf]\n    expect: {answer: '1'}\n",
            "rm_rf",
        ),
        ("cases:\n  - {name: x, category: c, prompt: p, expect: {answer: '1'}, colour: red}\n", "colour"),
        (
            "cases:\n  - {name: x, category: c, prompt: p, expect: {answer: '1'}}\n"
            "  - {name: x, category: c, prompt: q, expect: {answer: '2'}}\n",
            "duplicate case names ['x']",
        ),
        ("cases: []\n", "has no cases"),
    ],
)
def test_a_bad_suite_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(content)
    with pytest.raises(SuiteError, match="suite") as raised:
        load_suite(path)
    assert message in str(raised.value)
    with pytest.raises(SuiteError, match="cannot read suite"):
        load_suite(tmp_path / "missing.json")


def test_suite_validation_errors_point_into_the_file_without_private_names(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("cases:\n  - {name: x, prompt: 3, expect: {bogus: 1}}\n")
    with pytest.raises(SuiteError) as raised:
        load_suite(path)
    assert str(raised.value).splitlines() == [
        f"invalid suite {path}:",
        "  cases[0].category: Field required (got {'name': 'x', 'prompt': 3, 'expect': {'bogus': 1}})",
        "  cases[0].prompt: Input should be a valid string (got 3)",
        "  cases[0].expect.bogus: Extra inputs are not permitted (got 1)",
    ]


def test_compare_specs_vary_the_base_configuration() -> None:
    base = EvalConfig("models/qwen", tool_format="hermes")
    assert base.varied("tool_format=auto") == EvalConfig("models/qwen", tool_format="auto")
    assert base.varied("adapter=out/v2, name=v2, constrained") == EvalConfig(
        "models/qwen", adapter="out/v2", tool_format="hermes", constrained=True, name="v2"
    )
    assert base.varied("tool-format=auto,constrained=false").label == "qwen [auto]"
    assert EvalConfig("m", adapter="a/lora", constrained=True).label == "m +lora [constrained]"
    for bad in ("colour=red", "constrained=maybe", "model="):
        with pytest.raises(ConfigError, match="--compare"):
            base.varied(bad)


def test_without_pydantic_evals_the_command_says_what_to_install() -> None:
    blocker = (
        "import sys\nfrom importlib.abc import MetaPathFinder\n"
        "class Refuse(MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pydantic_evals':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from pydantic_mlx.cli import main\n"
        "raise SystemExit(main(['eval', '--model', 'some/model']))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    # This test suite runs from an editable install of the checkout, so the hint says so.
    assert (
        done.stderr.strip()
        == 'pydantic-mlx eval needs pydantic-evals: pip install -e ".[eval]" (in your pydantic-mlx checkout)'
    )


def _finished(case: EvalCase, *, error: str | None = None) -> CaseResult:
    outcome = run(ModelResponse(parts=[TextPart("It is a tiny project.")]), answer="It is a tiny project.")
    return CaseResult(case, [Check("RunCompleted", True)], outcome, error=error)


def test_the_json_report_holds_the_whole_run_and_reads_back(tmp_path: Path) -> None:
    first, second, *_ = builtin_suite()
    config = EvalConfig("models/qwen", tool_format="auto")
    run_so_far = EvalRun("interrupted", 28, 512, [ConfigResult(config, [_finished(first)], 1.5)])
    html_path, json_path = write_report(run_so_far, tmp_path / "out" / "r.html")
    assert json_path == tmp_path / "out" / "r.json" and sorted(
        p.name for p in json_path.parent.iterdir()
    ) == [
        "r.html",
        "r.json",
    ]  # nothing left aside
    assert read_report(json_path) == run_so_far
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert (data["status"], data["finished_cases"], data["results"][0]["cases"][0]["passed"]) == (
        "interrupted",
        1,
        True,
    )
    assert "Interrupted after 1 of 28 cases." in html_path.read_text(encoding="utf-8")
    # A partial grid: a case one configuration has not run yet shows as '-'.
    other = ConfigResult(EvalConfig("models/other"), [_finished(first), _finished(second)], 2.0)
    rows = case_table([run_so_far.results[0], other]).splitlines()[2:]
    assert [row.split() for row in rows] == [
        [f"tools/{first.name}", "pass", "pass"],
        [f"tools/{second.name}", "-", "pass"],
    ]


def test_the_html_report_has_the_grid_times_settings_and_versions(tmp_path: Path) -> None:
    first, second, *_ = builtin_suite()
    failed = CaseResult(second, [Check("RunCompleted", False, "boom")], run(), error=None)
    base = ConfigResult(EvalConfig("models/qwen"), [_finished(first), failed], 12.4)
    other = ConfigResult(EvalConfig("models/qwen", tool_format="auto"), [_finished(first)], 3.0)
    run_so_far = EvalRun("finished", 4, 256, [base, other], versions={"python": "3.11.7", "mlx": "0.32.4"})
    page = write_report(run_so_far, tmp_path / "r.html")[0].read_text(encoding="utf-8")
    assert (
        '<p class="kind">Run: max tokens per request 256, greedy decoding, python 3.11.7, mlx 0.32.4</p>'
        in page
    )
    # The summary has the run's time; the grid is the command's, one row per case, a column per configuration.
    assert "<th>time</th>" in page and "<td>12 s</td>" in page
    grid = re.search(r'<table class="grid">(.*?)</table>', page)
    assert grid is not None
    rows = [re.sub(r"<[^>]+>", " ", row).split() for row in re.findall(r"<tr>(.*?)</tr>", grid.group(1))]
    assert rows == [
        ["case", "qwen", "qwen", "[auto]"],
        [f"tools/{first.name}", "pass", "0.0", "s", "pass", "0.0", "s"],
        [f"tools/{second.name}", "FAIL", "0.0", "s", "-"],
    ]


def test_reports_record_the_versions_that_ran_them() -> None:
    versions = EvalRun("running", 1, 8, []).versions
    assert versions["pydantic-mlx"] == version("pydantic-mlx") and versions["mlx"] == version("mlx")
    assert set(versions) >= {"python", "platform", "pydantic-ai-slim", "pydantic-evals"}


def test_a_demo_or_hub_cache_folder_is_labelled_by_its_model_not_its_hash(
    demo_model_path: Path, tmp_path: Path
) -> None:
    assert EvalConfig(str(demo_model_path)).label == "demo-model"
    snapshot = tmp_path / "models--mlx-community--Qwen2.5-Coder-0.5B-Instruct-4bit" / "snapshots" / "0123abcd"
    assert EvalConfig(str(snapshot)).label == "Qwen2.5-Coder-0.5B-Instruct-4bit"
    assert EvalConfig("models/qwen").label == "qwen"


def test_a_report_that_cannot_be_resumed_says_why(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot read report"):
        read_report(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"cases": []}')
    with pytest.raises(ReportError, match="is not a pydantic-mlx eval report"):
        read_report(tmp_path / "other.json")


def test_resume_keeps_only_finished_runs_of_the_same_case_and_configuration() -> None:
    first, second, third, fourth, *_ = builtin_suite()
    config = EvalConfig("models/qwen")
    earlier = [
        ConfigResult(
            config,
            [
                _finished(first),
                _finished(second, error="AnswerIs: crashed"),  # the eval failed, not the model: run again
                CaseResult(third, [], None, error="RuntimeError: task crashed"),
            ],
            3.0,
        ),
        ConfigResult(config.varied("tool_format=auto"), [_finished(fourth)], 1.0),
    ]
    runs = [(case, 1) for case in (first, second, third, fourth)]
    assert list(_reusable(config, runs, earlier)) == [(first.name, 1)]
    edited = first.model_copy(update={"prompt": "Something else?"})
    assert _reusable(config, [(edited, 1)], earlier) == {}
    # With repeats, a run is kept only for the repeat it was: repeat 2 of `first` never ran.
    assert list(_reusable(config, [(first, 1), (first, 2)], earlier)) == [(first.name, 1)]


def test_a_model_the_hub_cannot_give_is_one_line_saying_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants

    from pydantic_mlx.cli import main

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["eval", "--model", "Qwen2.5-Coder-0.5B", "--report", str(tmp_path / "r.html")]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(
        "error: Qwen2.5-Coder-0.5B: cannot load the model: cannot download "
        "'mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit': the Hugging Face Hub could not be reached"
    )
