"""examples/ run offline on the demo model (`--demo`) and print a real result of MLX generation."""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RunExample = Callable[..., str]
"""Runs `examples/NAME` with the arguments given; returns what it printed."""

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def run_example(
    demo_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> RunExample:
    # `build_demo_model()` inside the examples finds the session's model in this cache.
    monkeypatch.setenv("PYDANTIC_MLX_CACHE", str(demo_model_path.parent))

    def run(name: str, *args: str) -> str:
        monkeypatch.setattr(sys, "argv", [name, *args])
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        return capsys.readouterr().out

    return run


def test_coding_agent_demo_calls_tools_and_answers(run_example: RunExample) -> None:
    out = run_example("coding_agent.py", "--demo")
    assert out.startswith("[demo model] Read README.md and setup.cfg.\n")
    assert '→ read_file({"path":"README.md"})' in out
    assert '→ read_file({"path":"setup.cfg"})' in out
    assert "← # Demo\nA tiny project." in out


def test_streaming_demo_streams_the_answer_after_a_tool_call(run_example: RunExample) -> None:
    out = run_example("streaming.py", "--demo")
    assert out.startswith("[demo model] What does README.md say?\nREADME.md says: Demo, a tiny project.\n")
    assert "RunUsage(" in out


@pytest.mark.parametrize(("flags", "city"), [((), "Paris"), (("--prompted",), "Rome")])
def test_structured_output_demo_fills_the_schema(
    run_example: RunExample, flags: tuple[str, ...], city: str
) -> None:
    out = run_example("structured_output.py", "--demo", *flags)
    first, _, answer = out.partition("\n")
    assert first.startswith("[demo model] Which city is the capital of")
    assert json.loads(answer)["city"] == city


def test_an_example_without_a_task_says_what_to_give(
    run_example: RunExample, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_example("coding_agent.py")
    assert exit_info.value.code == 2
    assert "give a task, or --demo" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "task"),
    [("coding_agent.py", "Add a test"), ("streaming.py", "Hi"), ("structured_output.py", "Hi")],
)
def test_an_example_given_a_model_it_cannot_use_says_so_without_a_traceback(
    run_example: RunExample, name: str, task: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_example(name, task, "--model", "./no-such-model")
    assert str(exit_info.value.code).startswith("error: model folder './no-such-model' does not exist; pass")
