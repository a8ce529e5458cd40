"""OpenBMB MiniCPM3 calls: a ```python block of calls, one a line, between `<|tool_call_start|>`
and `<|tool_call_end|>`.

The chat template asks for a thought, then the calls, then the answer::

    <|thought_start|>
    The user wants the weather.
    <|thought_end|>
    <|tool_call_start|>
    ```python
    get_weather(city="Paris",days=3)
    get_time()
    ```
    <|tool_call_end|>

The lines are read as OLMo 3's are (Python-style calls read with `ast`, never evaluated; the
template writes each value with `tojson`, so `true`, `null` and JSON objects are read too); a
line that is no call is reported in its place. `<|tool_call_start|>` is also LFM2's opener
(`pythonic`): under `auto` each reads its own body. The thought is reasoning; `<|im_end|>` ends
the turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from . import olmo3
from ._syntax import CallSyntax, Closers

NAME = "minicpm3"
REASONING = (("<|thought_start|>", "<|thought_end|>"),)
DROP = ("<|im_end|>",)
_OPEN, _CLOSE = "<|tool_call_start|>", "<|tool_call_end|>"
_FENCE = "```"
# LFM2's region (pythonic) shares the opener and its end: the calls' strings are not scanned.
CALLS = (CallSyntax(_OPEN, Closers((_CLOSE,))),)
UNTAGGED: frozenset[str] = frozenset()
# The template's answer format (its `<|tool_call_start|>` is LFM2's too).
TEMPLATE_HINTS = (REASONING[0][0],)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in the ```python block (one a line); raises `CallSyntaxError` for a body that
    is no such block (an LFM2 call list, say) or holds no readable call."""
    inner = body.strip()
    first_line, _, rest = inner.partition("\n")
    if first_line.rstrip() not in (_FENCE, _FENCE + "python") or not rest.rstrip().endswith(_FENCE):
        raise CallSyntaxError(f"expected a {_FENCE}python block of calls")
    return olmo3.parse_region(syntax, rest.rstrip().removesuffix(_FENCE), tools)


def render(calls: Sequence[ToolCall]) -> str:
    """The block MiniCPM3's chat template writes for `calls`."""
    lines = "".join(
        f"{c.name}({','.join(f'{k}={json.dumps(v, ensure_ascii=False)}' for k, v in c.arguments.items())})\n"
        for c in calls
    )
    return f"{_OPEN}\n{_FENCE}python\n{lines}{_FENCE}\n{_CLOSE}"
