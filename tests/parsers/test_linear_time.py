"""Streaming stays linear in the text where a state waits for what follows a run of spaces."""

from __future__ import annotations

import time

import pytest

from pydantic_mlx.parsers import StreamParser, parse

# (format, text before the run, the space that repeats): each state that looks past spaces for
# what comes next, fed a run that never ends while the stream lasts.
WAITING_ON_SPACES = {
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


@pytest.mark.parametrize("case", list(WAITING_ON_SPACES))
def test_a_long_run_of_spaces_streams_in_linear_time(case: str) -> None:
    format, before, space = WAITING_ON_SPACES[case]
    short = _stream_seconds(format, before + space * 4_000)
    long = _stream_seconds(format, before + space * 40_000)
    # Ten times the text: about ten times the work (a rescan per feed would be a hundred).
    assert long < 30 * max(short, 1e-3), (short, long)
