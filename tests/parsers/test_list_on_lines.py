"""A list of call objects written over several lines, `[` then a newline (issue 21).

Bare, every format that reads untagged JSON reads it, as vLLM's xLAM parser and llama.cpp's
generic JSON do (JSON allows any spaces after `[`), whatever the chunking. Inside LFM2's
`<|tool_call_start|>` and Llama 4's `<|python_start|>` (the pythonic format), whose bodies may be
JSON too, it was a `MalformedCall`: only `[{` counted as JSON there. llama.cpp and SGLang read
LFM2's JSON bodies with a JSON parser, so `[\\n{...}\\n]` is a call there too.
"""

from __future__ import annotations

import pytest

from pydantic_mlx.parsers import StreamParser, ToolCall, TruncatedCall, available_formats, parse
from pydantic_mlx.parsers.formats import get_format

CALL = '{"name": "f", "arguments": {"a": 1}}'
LISTS = [f"[\n{CALL}]", f"[\n  {CALL}\n]", f"[ \n\t{CALL},\n{CALL}\n]", f"[\r\n{CALL}\r\n]"]
UNTAGGED_JSON = [f for f in available_formats() if f == "auto" or "json" in get_format(f).UNTAGGED]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def _streamed(text: str, format: str, size: int) -> object:
    parser = StreamParser(format, tools=TOOLS)
    for i in range(0, len(text), size):
        parser.feed(text[i : i + size])
    parser.close()
    return parser.result()


@pytest.mark.parametrize("format", UNTAGGED_JSON)
@pytest.mark.parametrize("text", LISTS)
def test_a_bare_list_on_lines_is_read(format: str, text: str) -> None:
    result = parse(text, format, tools=TOOLS)
    assert result.calls == [ToolCall("f", {"a": 1})] * text.count(CALL), result
    assert result.content is None and result.errors == []
    for size in (1, 2, 3):
        assert _streamed(text, format, size) == result


@pytest.mark.parametrize("format", UNTAGGED_JSON)
def test_a_bare_list_never_closed_is_a_truncated_call(format: str) -> None:
    # The call inside is whole, but the list around it never ended: not repaired.
    result = parse(f"[\n{CALL}", format, tools=TOOLS)
    assert result.calls == [] and [type(e) for e in result.errors] == [TruncatedCall]


@pytest.mark.parametrize("opener", ["<|tool_call_start|>", "<|python_start|>"])
@pytest.mark.parametrize("format", ["pythonic", "auto"])
@pytest.mark.parametrize("text", LISTS)
def test_a_list_on_lines_inside_markers_is_read(opener: str, format: str, text: str) -> None:
    closer = {"<|tool_call_start|>": "<|tool_call_end|>", "<|python_start|>": "<|python_end|>"}[opener]
    result = parse(opener + text + closer, format, tools=TOOLS)
    assert result.calls == [ToolCall("f", {"a": 1})] * text.count(CALL), result
    assert result.errors == [] and result.content is None
