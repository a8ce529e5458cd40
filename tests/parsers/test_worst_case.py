"""Adversarial text costs the parser a few steps, not one per character (issue 21).

`"{" * n` was a full engine step per brace in `auto` (1 MB: 3-4 s): a bracket right after a
bracket never stands alone, so a run of them is passed at once. Timings are in
benchmarks/parsers.py (`--worst-case`); here, the number of steps and the result.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydantic_mlx.parsers import StreamParser, parse
from pydantic_mlx.parsers._engine import Engine

TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("unit", ["{", "[", "[{", "{["])
def test_a_run_of_brackets_is_a_few_steps(unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 0
    step_text = Engine._step_text  # pyright: ignore[reportPrivateUsage]

    def counted(self: Engine, final: bool) -> bool:
        nonlocal steps
        steps += 1
        return step_text(self, final)

    monkeypatch.setattr(Engine, "_step_text", counted)
    text = unit * 50_000
    result = parse(text, "auto", tools=TOOLS)
    assert result.content == text and not result.calls
    assert steps < 20  # was one step per bracket: 100,000


@settings(max_examples=60, deadline=None)
@given(
    brackets=st.text(alphabet="{[", min_size=1, max_size=6),
    gap=st.sampled_from(["", "\n", " "]),
    call=st.sampled_from(
        [
            '[TOOL_CALLS]read_file[ARGS]{"a": 1}',
            '{"name": "read_file", "arguments": {}}',
            '[{"name": "read_file", "arguments": {}}]',
            "[read_file(a=1)]",
        ]
    ),
)
def test_what_follows_a_run_of_brackets_is_read_as_before(brackets: str, gap: str, call: str) -> None:
    # The run is skipped but for its last bracket, which may open a marker or a call itself.
    text = brackets + gap + call
    whole = parse(text, "auto", tools=TOOLS)
    streamed = StreamParser("auto", tools=TOOLS)
    for i in range(0, len(text), 3):
        streamed.feed(text[i : i + 3])
    streamed.close()
    assert streamed.result() == whole
    # A call opened by a marker, or a list of calls on its own line, is read whatever brackets
    # come before (decided exactly as when each bracket was a step: compared on these cases).
    if call.startswith("[TOOL_CALLS]") or (gap == "\n" and call.startswith("[")):
        assert [c.name for c in whole.calls] == ["read_file"], text


@pytest.mark.parametrize("opener", ["[TOOL_CALLS]", "<|tool_call|>", "<|python_tag|>"])
def test_an_opener_repeated_thousands_of_times_is_one_unread_region(opener: str) -> None:
    # A doubled opener is one region; it was read by one recursive call per repetition, so a
    # long run (benchmarks/parsers.py's "mistral markers") raised RecursionError.
    text = opener * 5_000
    for result in (parse(text, "auto", tools=TOOLS), parse(text, "auto", tools=TOOLS, truncated=True)):
        assert (result.content, result.calls) == (None, [])
        assert [e.text for e in result.errors] == [text]
    streamed = StreamParser("auto", tools=TOOLS)
    for i in range(0, len(text), 16):
        streamed.feed(text[i : i + 16])
    streamed.close()
    assert streamed.result() == parse(text, "auto", tools=TOOLS)
