"""`drop=`: a tokenizer's control tokens are removed outside calls, never the formats' own markers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydantic_mlx.parsers import ToolCall, available_formats, parse, render_calls

from .conftest import events_agree, stream
from .test_properties import MARKERS, SETTINGS, marked_text

FORMATS = available_formats()
CONTROL = ["<|im_start|>", "<|endoftext|>", "<start_of_turn>", "<|fim_middle|>"]
# Formats whose calls are read only where the answer begins (Phi-4-mini's plain-word `functools`).
ANSWER_START_ONLY = frozenset({"phi4_mini"})
# Special tokens the formats' own markers are made of (as real tokenizers list them).
FORMAT_TOKENS = [
    "<|channel|>",
    "<|message|>",
    "<|start|>",
    "<|end|>",
    "<|call|>",
    "<|constrain|>",  # gpt-oss
    "[TOOL_CALLS]",
    "[ARGS]",
    "[CALL_ID]",
    "<|python_tag|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|tool_calls_section_begin|>",
    "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>",
    "<|tool_call_end|>",
    "<|tool_calls_section_end|>",
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁sep｜>",
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "<|tool_call>",
    "<tool_call|>",
    '<|"|>',
]


@SETTINGS
@given(
    text=st.lists(st.one_of(st.sampled_from(CONTROL), marked_text), max_size=6).map("".join),
    format=st.sampled_from(FORMATS),
    drop=st.lists(st.sampled_from([*CONTROL, *FORMAT_TOKENS, *MARKERS]), max_size=4),
    data=st.data(),
)
def test_streaming_with_drop_equals_parse_and_never_raises(
    text: str, format: str, drop: list[str], data: st.DataObject
) -> None:
    whole = parse(text, format=format, drop=drop)
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=10))
    result, events = stream(text, cuts, format=format, drop=drop)
    assert result == whole
    assert events_agree(result, events)


@SETTINGS
@given(
    before=st.text(alphabet="ab <|>", max_size=12),
    control=st.sampled_from(CONTROL),
    format=st.sampled_from([f for f in FORMATS if f != "auto"]),
)
def test_dropped_text_is_gone_and_calls_still_parse_when_their_markers_are_asked_to_drop(
    before: str, control: str, format: str
) -> None:
    call = render_calls([ToolCall("read_file", {"path": "a.txt"})], format)
    if format in ANSWER_START_ONLY:
        before = ""  # its calls count only where the answer begins: after dropped text, still
    text = f"{control}{before}{control}\n{call}{control}"
    plain = parse(text, format=format)
    # Every marker of every format, and the tokens they are made of, are in `drop` too: the
    # format's own must still work.
    result = parse(text, format=format, drop=[*CONTROL, *FORMAT_TOKENS, *MARKERS])
    if format not in ANSWER_START_ONLY:  # there, undropped, the control text began the answer
        assert result.calls == plain.calls
    assert [(c.name, c.arguments) for c in result.calls] == [("read_file", {"path": "a.txt"})]
    assert control not in (result.content or "") + (result.reasoning or "")


@pytest.mark.parametrize("format", ["auto", "xlam", "hermes", "pythonic"])
@pytest.mark.parametrize("cuts", [[], list(range(1, 80))])
def test_brackets_and_fences_asked_to_drop_after_markup_still_open_calls(
    format: str, cuts: list[int]
) -> None:
    # Markup dropped right after markup is dropped in one step (issue 21); a `{`, `[` or fence
    # in `drop` is still read as a possible call first, as when each marker took a step.
    text = '<|im_start|><|im_start|>\n[{"name": "read_file", "arguments": {"path": "a.txt"}}]<|im_start|>'
    drop = ["<|im_start|>", "\n", "[", "{", "```"]
    result, events = stream(text, cuts, format=format, drop=drop)
    assert result.calls == [ToolCall("read_file", {"path": "a.txt"})]
    assert result == parse(text, format=format, drop=drop) and events_agree(result, events)
