"""Google FunctionGemma calls: `<start_function_call>call:NAME{k:<escape>v<escape>}<end_function_call>`.

FunctionGemma (Gemma 3 270M tuned for calling) writes each call in its own block, arguments in
the notation Gemma 4 took over (`_gemma_notation.py`) with strings between `<escape>` tokens::

    <start_function_call>call:get_weather{city:<escape>Paris<escape>,days:3}<end_function_call>

After its calls the model writes `<start_function_response>` (the engines' stop sequence) to
hand over to the tool; that and `<end_of_turn>` are markup. `<end_function_call>` written inside
a string is part of the string.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._gemma_notation import GemmaNotation
from ._syntax import CallSyntax, Closers, Quote

NAME = "function_gemma"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<end_of_turn>", "<start_function_response>", "<eos>")
_BLOCK = ("<start_function_call>", "<end_function_call>")
_NOTATION = GemmaNotation("<escape>")
CALLS = (CallSyntax(_BLOCK[0], Closers((_BLOCK[1],), quotes=(Quote("<escape>", ("<escape>",)),))),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<start_function_call>", "<start_function_declaration>")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in one `<start_function_call>` block: `call:NAME{...}` (several back to back are
    read too, each bad one returned in its place)."""
    return _NOTATION.read_calls(body.strip(" \t\r\n"))


def render(calls: Sequence[ToolCall]) -> str:
    """What FunctionGemma's chat template writes for `calls`: one block per call."""
    return "".join(f"{_BLOCK[0]}{_NOTATION.render_call(call)}{_BLOCK[1]}" for call in calls)
