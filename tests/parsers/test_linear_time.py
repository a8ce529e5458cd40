"""Streaming stays linear in the text where a state waits for what follows a run of spaces
or of name characters."""

from __future__ import annotations

import time

import pytest

from pydantic_mlx.parsers import StreamParser, parse

# (format, text before the run, what repeats): each state that looks past spaces (or a name)
# for what comes next, fed a run that never ends while the stream lasts.
WAITING_ON_A_RUN = {
    "answer start": ("auto", "", "\n"),
    "answer start after reasoning": ("auto", "<think>x</think>", " "),
    "gpt-oss answer start": ("harmony", "", " "),
    "Gemma 4 answer start": ("gemma4", "", "\n"),
    "fence after a call": ("auto", '```json\n{"name": "f", "arguments": {}}', "\n"),
    "fence before a call": ("auto", "```json\n", "\n"),
    "separator after a bare call": ("auto", '{"name": "f", "arguments": {}}', " "),
    "Qwen3-Coder trailer": ("qwen3_coder", "<function=f>\n</function>", " "),
    "Mistral value": ("mistral", "[TOOL_CALLS]", " "),
    "Llama value": ("llama3_json", "<|python_tag|>", " "),
    "Llama separator": ("llama3_json", '<|python_tag|>{"name": "f", "parameters": {}}', " "),
    # A name before the value (`[TOOL_CALLS]add{...}`, `<|python_tag|>tool.call(...)`).
    "Mistral name": ("mistral", "[TOOL_CALLS]", "a"),
    "Llama name": ("llama3_json", "<|python_tag|>", "a"),
}


def _stream_seconds(format: str, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        parser = StreamParser(format)
        for i in range(0, len(text), 4):
            parser.feed(text[i : i + 4])
        parser.close()
        best = min(best, time.process_time() - start)
    assert parser.result() == parse(text, format=format)
    return best


@pytest.mark.parametrize("case", list(WAITING_ON_A_RUN))
def test_a_long_run_streams_in_linear_time(case: str) -> None:
    format, before, unit = WAITING_ON_A_RUN[case]
    short = _stream_seconds(format, before + unit * 4_000)
    long = _stream_seconds(format, before + unit * 40_000)
    # Ten times the text: about ten times the work (a rescan per feed would be a hundred).
    assert long < 30 * max(short, 1e-3), (short, long)
