"""Google Gemma 4 tool calls: `<|tool_call>call:get_weather{city:<|"|>Paris<|"|>,days:3}<tool_call|>`.

Gemma 4's chat template writes the arguments in Google's own notation (`_gemma_notation.py`),
with strings between `<|"|>` tokens. Several calls are consecutive `<|tool_call>` blocks.
Reasoning is `<|channel>thought\\n` … `<channel|>`; the turn ends with `<turn|>`, and after a call
the model writes `<|tool_response>` to hand over to the tool.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._gemma_notation import CALL_PREFIX, GemmaNotation
from ._syntax import CallSyntax, Closers, Quote

NAME = "gemma4"
REASONING = (
    ("<|channel>thought\n", "<channel|>"),
    ("<|channel>thought", "<channel|>"),
)
# A stray channel token (`<|channel><|channel>thought`, a second `<channel|>`) is markup too
# (llama.cpp's Gemma 4 edge-case tests).
DROP = ("<turn|>", "<|tool_response>", "<tool_response|>", "<eos>", "<|channel>", "<channel|>")
# Gemma 4 sometimes ends a call with the end-of-turn token instead of `<tool_call|>`, and
# sometimes drops `<|tool_call>` where its answer begins (`<channel|>call:bash{...}`).
_CALL_END = Closers(("<tool_call|>", "<turn|>"), quotes=(Quote('<|"|>', ('<|"|>',)),))
_BARE_CALL_OPENER = CALL_PREFIX
CALLS = (
    CallSyntax("<|tool_call>", _CALL_END),
    CallSyntax(_BARE_CALL_OPENER, _CALL_END, at_start=True),
)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|tool_call>call:", "<|tool_call>")

_NOTATION = GemmaNotation('<|"|>')


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in a `<|tool_call>` block: `call:NAME{...}`, usually one, sometimes several
    back to back (`call:a{...}call:b{...}`, as mlx-lm reads them). Also read: the bare opener
    `<|tool_call>:NAME{...}` (the `call` word left out) and a stray colon (`:call:NAME{...}`).

    Raises `CallSyntaxError` when the block does not begin with a readable call. What follows a
    complete call must be another call: a bad call, or other text, comes back as a
    `CallSyntaxError` carrying the rest of the block, so the calls before it are kept."""
    text = body.strip(" \t\r\n")
    if syntax.opener == _BARE_CALL_OPENER:
        text = CALL_PREFIX + text
    if text.startswith(":" + CALL_PREFIX):  # a stray colon after the token: `<|tool_call>:call:f{}`
        text = text[1:]
    elif text.startswith(":"):  # the bare opener: `<|tool_call>:get_weather{...}` (vLLM reads it)
        text = "call" + text
    if syntax.opener == _BARE_CALL_OPENER:
        call, end = _NOTATION.read_call(text, 0)
        if end < len(text):
            # Where the answer begins, `call:f{...}` followed by more is prose that looks like a call.
            raise CallSyntaxError(f"{call.name}: unexpected text after the arguments")
        return [call]
    return _NOTATION.read_calls(text)


def render(calls: Sequence[ToolCall]) -> str:
    """What Gemma 4's chat template writes for `calls`: one `<|tool_call>` block per call."""
    return "".join(f"<|tool_call>{_NOTATION.render_call(call)}<tool_call|>" for call in calls)
