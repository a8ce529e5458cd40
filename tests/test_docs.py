"""Every code block of README.md and docs/ runs, so a block that stops working fails CI.

Sybil parses the Markdown: Python blocks (and the `>>>` examples in them) run in one namespace per
document, in order; YAML and JSON blocks are parsed. A block that is an illustration rather than a
program (a signature with comments, one that needs a real model's answers) is marked with
`<!-- skip: next "illustration: why" -->` right above it, which shows in the source and reads as
the reason in this test's output.

Blocks name real models (`"mlx-community/..."`, short names): here those strings become the tiny
demo model's folder, so the code runs on MLX, offline and in seconds. The demo model only knows its
scripted prompts (docs/demo-model.md): on other prompts it answers, but not sensibly, so these
tests check that the documented code runs, not what a real model would say.
"""

from __future__ import annotations

import doctest
import json
import re
import unittest
from pathlib import Path

import pytest
import yaml
from sybil import Example, Sybil
from sybil.evaluators.python import PythonEvaluator, pad
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

from pydantic_mlx import MLXModel
from pydantic_mlx.demo.scenarios import list_files, read_file

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_MODEL_NAMES = re.compile(
    r"""(["'])(mlx-community/[^"']+|"""
    + "|".join(re.escape(name) for name in MLXModel.list_aliases())
    + r""")\1"""
)


class _OnTheDemoModel(PythonEvaluator):
    """Python blocks, with every real model name replaced by the demo model's folder."""

    def __init__(self, demo_model: Path) -> None:
        super().__init__()
        self._demo_model = repr(str(demo_model))

    def __call__(self, example: Example) -> None:
        __tracebackhide__ = True
        source = _MODEL_NAMES.sub(self._demo_model, example.parsed)
        code = compile(pad(source, example.line + example.parsed.line_offset), example.path, "exec")
        exec(code, example.namespace)


def _python_blocks(demo_model: Path) -> PythonCodeBlockParser:
    # The `>>>` examples wrap long reprs over several lines, as a reader would.
    parser = PythonCodeBlockParser(doctest_optionflags=doctest.NORMALIZE_WHITESPACE)
    parser.codeblock_parser = CodeBlockParser("python", _OnTheDemoModel(demo_model))
    return parser


def _parse_yaml(example: Example) -> None:
    yaml.safe_load(example.parsed)


def _parse_json(example: Example) -> None:
    json.loads(example.parsed)


def _run_document(path: Path, demo_model: Path) -> list[str]:
    """Evaluate every example of `path` in order; the reasons of those skipped as illustrations."""
    sybil = Sybil(
        parsers=[
            _python_blocks(demo_model),
            CodeBlockParser("yaml", _parse_yaml),
            CodeBlockParser("json", _parse_json),
            SkipParser(),
        ]
    )
    skipped: list[str] = []
    for example in sybil.parse(path):
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            skipped.append(f"line {example.line}: {skip}")
    return skipped


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_code_block_runs(
    document: Path, demo_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The blocks read the demo project's files and may write reports: in a folder of their own.
    for name in list_files(".").splitlines():
        (tmp_path / name).write_text(read_file(name), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    skipped = _run_document(document, demo_model_path)
    for reason in skipped:
        assert "illustration" in reason, f"{document.name} {reason}: say why the block does not run"


def test_a_block_that_fails_fails_the_test(demo_model_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text("```python\nagent = Agent(model, tools=[read_file])\n```\n")
    with pytest.raises(NameError, match="Agent"):
        _run_document(broken, demo_model_path)
    bad_yaml = tmp_path / "bad.md"
    bad_yaml.write_text("```yaml\ncases:\n  - prompt: What is it: a test?\n```\n")
    with pytest.raises(yaml.YAMLError):
        _run_document(bad_yaml, demo_model_path)


def test_model_names_in_blocks_become_the_demo_model(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nfrom pydantic_mlx import MLXModel\n"
        "print(MLXModel('Qwen2.5-Coder-1.5B').loaded.source)\n"
        'print(MLXModel("mlx-community/Qwen3-4B-4bit").loaded.source)\n```\n'
    )
    assert _run_document(page, demo_model_path) == []
    assert capsys.readouterr().out.splitlines() == [str(demo_model_path.resolve())] * 2


def test_the_readme_example_gets_its_answer_on_the_demo_model(
    demo_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo model learned this one example as the README writes it (scenario "quickstart"), so
    # here the first code a newcomer reads runs a real tool call on MLX and prints a real answer.
    (tmp_path / "README.md").write_text(read_file("README.md"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert _run_document(ROOT / "README.md", demo_model_path) == []
    assert capsys.readouterr().out == "README.md says: Demo, a tiny project.\n"
