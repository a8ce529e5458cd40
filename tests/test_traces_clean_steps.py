"""`export --clean-steps`: a passing run's clean responses only (its first call and its final answer),
never a response sent back for a retry, the answer to one, or a call the run already made.

The retry and the clean run are real runs of the demo model through `MLXModel`; the call loop, which
the demo model was never trained to make, is a pydantic-ai agent run on a scripted model. Every trace
goes through a trace file, so the export reads what `eval --save-traces` writes.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    RetryInfo,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from pydantic_mlx.cli import main
from pydantic_mlx.demo import DEMO_TOOLS, ScriptedCall, ScriptedModel, ScriptedTurn, scenario
from pydantic_mlx.traces import (
    DroppedStep,
    Trace,
    TraceRecorder,
    export_traces,
    load_traces,
    round_trip_problems,
    save_trace,
    training_records,
)
from test_traces import READ_FILE, trace


def _saved_and_loaded(traced: Trace, folder: Path) -> Trace:
    save_trace(traced, folder)
    [loaded] = load_traces(folder / f"{traced.name}.trace.json")
    return loaded


def _trained(records: list[dict[str, Any]]) -> list[Any]:
    """What each record trains: its last message's calls (name and arguments) or its text."""
    trained: list[Any] = []
    for record in records:
        last = record["messages"][-1]
        calls = last.get("tool_calls")
        trained.append(
            [(c["function"]["name"], c["function"]["arguments"]) for c in calls] if calls else last["content"]
        )
    return trained


@pytest.fixture(scope="module")
def demo_runs(
    demo_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Trace], Any]:
    """Real `MLXModel` runs of the demo model: one with a retry, one clean; and the model's tokenizer."""
    from pydantic_mlx import MLXModel

    # Unconstrained: `unknown_tool_retry` needs the call to an undeclared tool the model was
    # trained to write (a grammar would make it a declared one).
    model = MLXModel(demo_model_path, constrained=False)
    folder = tmp_path_factory.mktemp("demo-traces")
    runs: dict[str, Trace] = {}
    for name in ("unknown_tool_retry", "tool_call_tags"):
        case = scenario(name)
        recorder = TraceRecorder(model)
        result = asyncio.run(case.agent(recorder).run(case.prompt))
        runs[name] = _saved_and_loaded(recorder.trace(result.all_messages(), name=name, passed=True), folder)
    return runs, model.loaded.tokenizer


def test_a_retried_run_keeps_only_its_final_answer(demo_runs: tuple[dict[str, Trace], Any]) -> None:
    runs, tokenizer = demo_runs
    retried = runs["unknown_tool_retry"]
    # The run as the demo model made it: a call to an unknown tool, sent back; the right call; the answer.
    calls = [
        [p.tool_name for p in m.parts if isinstance(p, ToolCallPart)]
        for m in retried.messages
        if isinstance(m, ModelResponse)
    ]
    assert calls == [["open_file"], ["read_file"], []]
    assert _trained(training_records(retried, per_request=True, tokenizer=tokenizer)) == [
        [("read_file", {"path": "setup.cfg"})],
        "setup.cfg names the project demo.",
    ]
    # The right call answers the retry prompt: a clean run makes it without one.
    [answer] = training_records(retried, clean_steps=True, tokenizer=tokenizer)
    assert _trained([answer]) == ["setup.cfg names the project demo."]
    # Its prompt is the conversation as the model saw it, the failed call included.
    assert [m["role"] for m in answer["messages"]] == [
        "system",
        "user",
        *["assistant", "tool"] * 2,
        "assistant",
    ]
    assert round_trip_problems(retried, tokenizer, per_request=True) == []


def test_a_clean_run_keeps_every_response(demo_runs: tuple[dict[str, Trace], Any], tmp_path: Path) -> None:
    runs, tokenizer = demo_runs
    clean = runs["tool_call_tags"]
    records = training_records(clean, clean_steps=True, tokenizer=tokenizer)
    assert records == training_records(clean, per_request=True, tokenizer=tokenizer)
    assert _trained(records) == [
        [("read_file", {"path": "README.md"})],
        "README.md says: Demo, a tiny project.",
    ]
    summary = export_traces(
        list(runs.values()), tmp_path / "train.jsonl", clean_steps=True, tokenizer=tokenizer
    )
    assert (summary.exported, summary.train_records, summary.checked) == (2, 3, True)
    assert summary.dropped == [
        DroppedStep("unknown_tool_retry", 1, "sent back for a retry"),
        DroppedStep("unknown_tool_retry", 2, "answers a retry"),
    ]
    written = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert _trained(written) == [
        "setup.cfg names the project demo.",
        [("read_file", {"path": "README.md"})],
        "README.md says: Demo, a tiny project.",
    ]


def _looping_run(folder: Path) -> Trace:
    """A passing agent run that repeats calls, as the real Qwen2.5-Coder-0.5B does when sampled: the same
    call again in the next response, and the same call twice in one response."""
    read = ScriptedCall("read_file", {"path": "README.md"})
    listing = ScriptedCall("list_files", {"directory": "."})
    turns = [
        ScriptedTurn("", (read,)),
        ScriptedTurn("", (read,)),  # the same call again: a loop
        ScriptedTurn("", (ScriptedCall("read_file", {"path": "setup.cfg"}),)),  # same tool, other file
        ScriptedTurn("", (listing, listing)),  # one call twice in one response
        ScriptedTurn("README.md says: Demo, a tiny project."),
    ]
    recorder = TraceRecorder(ScriptedModel(turns))
    result = Agent(recorder, tools=list(DEMO_TOOLS)).run_sync("What does README.md say?")
    return _saved_and_loaded(recorder.trace(result.all_messages(), name="loop", passed=True), folder)


def test_a_call_loop_keeps_the_first_call_and_the_answer(tmp_path: Path, random_model_path: Path) -> None:
    from mlx_lm.utils import load_tokenizer

    tokenizer = load_tokenizer(random_model_path)
    looping = _looping_run(tmp_path / "traces")
    assert len(training_records(looping, per_request=True)) == 5  # no retry: per request keeps them all
    summary = export_traces([looping], tmp_path / "train.jsonl", clean_steps=True, tokenizer=tokenizer)
    assert summary.dropped == [
        DroppedStep("loop", 2, "repeats a call"),
        DroppedStep("loop", 4, "repeats a call"),
    ]
    assert summary.dropped_counts() == {"repeats a call": 2}
    written = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert _trained(written) == [
        [("read_file", {"path": "README.md"})],
        [("read_file", {"path": "setup.cfg"})],
        "README.md says: Demo, a tiny project.",
    ]
    assert written == training_records(looping, clean_steps=True, tokenizer=tokenizer)
    assert summary.checked and round_trip_problems(looping, tokenizer, per_request=True) == []


def test_a_repeated_call_is_the_same_tool_and_arguments_however_written() -> None:
    messages = [
        ModelRequest(parts=[UserPromptPart("Read it.")]),
        ModelResponse(parts=[ToolCallPart("read_file", {"path": "README.md", "lines": 2}, tool_call_id="a")]),
        ModelRequest(parts=[ToolReturnPart("read_file", "# Demo", tool_call_id="a")]),
        # The same arguments as JSON text, spaced and ordered otherwise: the same call.
        ModelResponse(
            parts=[ToolCallPart("read_file", '{"lines":2,  "path":"README.md"}', tool_call_id="b")]
        ),
        ModelRequest(parts=[ToolReturnPart("read_file", "# Demo", tool_call_id="b")]),
        # Another tool with the same arguments is another call.
        ModelResponse(parts=[ToolCallPart("open_file", {"path": "README.md", "lines": 2}, tool_call_id="c")]),
        ModelRequest(parts=[ToolReturnPart("open_file", "# Demo", tool_call_id="c")]),
        ModelResponse(parts=[TextPart("Demo.")]),
    ]
    traced = Trace(name="spaced", messages=messages, tools=[READ_FILE])
    assert len(training_records(traced, clean_steps=True)) == 3
    assert _trained(training_records(traced, clean_steps=True)) == [
        [("read_file", {"path": "README.md", "lines": 2})],
        [("open_file", {"path": "README.md", "lines": 2})],
        "Demo.",
    ]


def test_a_run_with_nothing_clean_is_left_out_and_every_drop_is_reported(tmp_path: Path) -> None:
    # test_traces' run: a call to an unknown tool sent back, the right calls answering that retry,
    # then the answer. A run cut after the right calls has nothing clean left.
    cut = trace("cut")
    cut.messages = cut.messages[:4]
    summary = export_traces([trace("docs"), cut], tmp_path / "train.jsonl", clean_steps=True)
    assert (summary.exported, summary.train_records) == (1, 1)
    assert summary.skipped == ["cut: every response dropped"]
    assert summary.dropped_counts() == {"sent back for a retry": 2, "answers a retry": 2}
    # Per request drops (and now reports) only what was sent back.
    per_request = export_traces([trace("docs")], tmp_path / "train.jsonl", per_request=True)
    assert per_request.dropped == [DroppedStep("docs", 1, "sent back for a retry")]
    # A conversation record trains every response: nothing is dropped.
    assert export_traces([trace("docs")], tmp_path / "train.jsonl").dropped == []
    with pytest.raises(UserError, match="clean_steps"):
        training_records(trace(), clean_steps=True, include_retried=True)


def test_the_export_command_lists_and_counts_what_clean_steps_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _looping_run(tmp_path / "traces")
    save_trace(trace("docs"), tmp_path / "traces")
    out = tmp_path / "data" / "train.jsonl"
    assert (
        main(["export", str(tmp_path / "traces"), "--out", str(out), "--only-passed", "--clean-steps"]) == 0
    )
    printed = capsys.readouterr()
    assert "2 of 2 traces exported" in printed.out
    assert (
        "4 responses not trained (sent back for a retry: 1, answers a retry: 1, repeats a call: 2)"
        in printed.out
    )
    assert "4 records -> " in printed.out and len(out.read_text().splitlines()) == 4
    assert printed.err.splitlines() == [
        "  not trained: docs, response 1 (sent back for a retry)",
        "  not trained: docs, response 2 (answers a retry)",
        "  not trained: loop, response 2 (repeats a call)",
        "  not trained: loop, response 4 (repeats a call)",
    ]
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--clean-steps" in capsys.readouterr().out


def test_clean_records_round_trip_on_qwen25(tmp_path: Path, real_model_path: Path) -> None:
    """The shapes the real model's passing runs have (a call loop; a right call after a retry) on its
    own template and tokenizer: every clean record is exactly what MLXModel rendered."""
    from mlx_lm.utils import load_tokenizer

    qwen = load_tokenizer(real_model_path)
    summary = export_traces(
        [_looping_run(tmp_path / "traces"), trace("docs")],
        tmp_path / "train.jsonl",
        clean_steps=True,
        tokenizer=qwen,
    )
    assert (summary.exported, summary.skipped, summary.train_records) == (2, [], 4)
    assert summary.dropped_counts() == {"sent back for a retry": 1, "answers a retry": 1, "repeats a call": 2}


_POOL = [
    ("read_file", {"path": "README.md"}),
    ("read_file", {"path": "setup.cfg"}),
    ("list_files", {"directory": "."}),
]


@st.composite
def _runs(draw: st.DrawFn) -> tuple[list[ModelMessage], list[tuple[list[int], bool]]]:
    """A run of call steps (calls from a small pool, so repeats are common; each sent back for a retry
    or not), text steps sent back for a retry, and a final answer; and the steps as drawn."""
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(st.lists(st.integers(0, len(_POOL) - 1), min_size=1, max_size=3), st.booleans()),
                st.just(([], True)),  # an answer sent back (an empty or unusable one)
            ),
            max_size=6,
        )
    )
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("Go.")])]
    for number, (calls, retried) in enumerate(steps):
        if not calls:
            messages.append(ModelResponse(parts=[TextPart(f"text {number}")]))
            feedback = RetryFeedbackPart(
                "Please return text or call a tool.", retry=RetryInfo(cause="no_output")
            )
            messages.append(ModelRequest(parts=[feedback]))
            continue
        ids = [f"call_{number}_{j}" for j in range(len(calls))]
        messages.append(
            ModelResponse(
                parts=[
                    ToolCallPart(_POOL[c][0], dict(_POOL[c][1]), tool_call_id=i)
                    for c, i in zip(calls, ids, strict=True)
                ]
            )
        )
        returns = [
            ToolReturnPart(
                _POOL[c][0], "ok", tool_call_id=i, outcome="retried" if retried and j == 0 else "success"
            )
            for j, (c, i) in enumerate(zip(calls, ids, strict=True))
        ]
        messages.append(ModelRequest(parts=list(returns)))
    messages.append(ModelResponse(parts=[TextPart("The answer.")]))
    return messages, [*steps, ([], False)]


@settings(max_examples=150, deadline=None)
@given(_runs())
def test_every_response_is_trained_or_dropped_for_the_reason_its_run_shows(
    run: tuple[list[ModelMessage], list[tuple[list[int], bool]]],
) -> None:
    messages, steps = run
    traced = Trace(name="run", messages=messages, tools=[READ_FILE])
    summary = export_traces([traced], Path(os.devnull), clean_steps=True)
    expected: list[DroppedStep] = []
    made: set[int] = set()
    for number, (calls, retried) in enumerate(steps, 1):
        repeats = any(call in made or calls.index(call) < j for j, call in enumerate(calls))
        made.update(calls)
        if retried:
            expected.append(DroppedStep("run", number, "sent back for a retry"))
        elif number > 1 and steps[number - 2][1]:
            expected.append(DroppedStep("run", number, "answers a retry"))
        elif repeats:
            expected.append(DroppedStep("run", number, "repeats a call"))
    assert summary.dropped == expected
    assert summary.train_records + len(summary.dropped) == len(steps)  # none lost, none invented
    per_request = training_records(traced, per_request=True)
    assert len(per_request) == len(steps) - sum(retried for _, retried in steps)
    clean = training_records(traced, clean_steps=True)
    assert all(record in per_request for record in clean)
    for record in clean:  # a trained response never makes a call the conversation already has
        *before, last = record["messages"]
        earlier = [
            (c["function"]["name"], c["function"]["arguments"])
            for m in before
            for c in m.get("tool_calls", [])
        ]
        mine = [(c["function"]["name"], c["function"]["arguments"]) for c in last.get("tool_calls", [])]
        assert not any(call in earlier or mine.index(call) < j for j, call in enumerate(mine))
