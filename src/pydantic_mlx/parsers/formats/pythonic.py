"""Pythonic tool calls: `[get_weather(city="Paris"), get_time()]`.

Llama 3.2 (pythonic template), Llama 4 and LFM2 write a Python list of calls with literal
keyword arguments. Llama 4 wraps it in `<|python_start|>` … `<|python_end|>`, LFM2 in
`<|tool_call_start|>` … `<|tool_call_end|>` (and writes JSON call objects there too; it also
echoes the call list after the closer, and leaves stray closers: both dropped); Llama 3.2
writes it after `<|python_tag|>` or bare
(the engine's untagged habit, counted only for declared tools). Values are read with `ast`, never
evaluated. The same templates may ask for JSON instead (`{"name": ..., "parameters": ...}`), so
bare JSON calls to declared tools and Llama 4's `<|python_start|><|python_end|>{json}` count too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._calls import calls_from_value
from .._json import loads_lenient
from .._pythonic import parse_pythonic_calls, render_pythonic_calls
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._syntax import CallSyntax, Closers, JsonValue

NAME = "pythonic"
_LFM2_OPEN, _LFM2_CLOSE = "<|tool_call_start|>", "<|tool_call_end|>"
# LFM2 / LFM2.5 thinking models reason in <think> … </think> before their calls.
REASONING = (("<think>", "</think>"),)
# End-of-turn tokens of Llama 3.x (`<|eot_id|>`, `<|eom_id|>`), Llama 4 (`<|eot|>`, `<|eom|>`)
# and LFM2 (ChatML's `<|im_end|>`), and the stray `<|tool_call_end|>` LFM2 writes after an echo.
DROP = ("<|eot_id|>", "<|eom_id|>", "<|eot|>", "<|eom|>", "<|im_end|>", _LFM2_CLOSE)
# Llama 4's own (Hugging Face) template renders a call as an empty python block followed by
# JSON: `<|python_start|><|python_end|>{"name": "f", "parameters": {...}}`.
_LLAMA4_JSON_OPENER = "<|python_start|><|python_end|>"
CALLS = (
    CallSyntax(_LLAMA4_JSON_OPENER, JsonValue(separator=";")),
    CallSyntax("<|python_start|>", Closers(("<|python_end|>",))),
    CallSyntax(_LFM2_OPEN, Closers((_LFM2_CLOSE,)), echoed=True),
    # Llama 3.2's pythonic template writes `<|python_tag|>[f(a=1)]`; the region ends where the
    # list closes, as for llama3_json (whose end rule this must match: they share the opener).
    CallSyntax("<|python_tag|>", JsonValue(separator=";", after_name=True)),
)
# Llama 3.2 / Llama 4 templates ask for either shape; both count only for declared tools.
UNTAGGED = frozenset({"pythonic", "json"})
TEMPLATE_HINTS = ("[func_name1(", "<|python_start|>", "<|tool_call_start|>")

# A body of JSON call objects: an object, or a list of them (JSON allows spaces after the `[`).
_JSON_START = re.compile(r"\{|\[[ \t\r\n]*\{")


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall]:
    """The calls in a marked region: `[f(a=1), g()]` or a single `f(a=1)`, or JSON call objects
    (after Llama 4's empty `<|python_start|><|python_end|>` block, or inside the markers).

    Raises `CallSyntaxError` for anything that is not literal-only keyword calls."""
    stripped = body.strip()
    if syntax.opener == _LLAMA4_JSON_OPENER or _JSON_START.match(stripped):
        # JSON call objects: after Llama 4's empty python block, or inside LFM2's or Llama 4's
        # markers (a pythonic list never starts with `{` or `[{`, nor with `[` and spaces before
        # the `{`: `[\n  {"name": ...}\n]` is JSON, as llama.cpp and SGLang read LFM2's).
        try:
            value = loads_lenient(stripped)
        except ValueError as exc:
            raise CallSyntaxError(f"not a JSON call: {exc}") from None
        return calls_from_value(value, tools, untagged=False)
    return [ToolCall(name, arguments) for name, arguments in parse_pythonic_calls(body)]


def render(calls: Sequence[ToolCall]) -> str:
    """Llama 4 style: `<|python_start|>[f(a=1), g()]<|python_end|>`."""
    pairs = [(call.name, call.arguments) for call in calls]
    return "<|python_start|>" + render_pythonic_calls(pairs) + "<|python_end|>"
