"""DeepSeek calls: V3 / R1, V3.1, and the DSML of V3.2 and V4.

The markers are special tokens spelled with full-width bars `｜` (U+FF5C) and `▁` (U+2581):

- V3 and R1 (`function` is the call type, arguments in a fenced JSON block)::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
    ```json
    {"city": "Paris"}
    ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>

- V3.1 (and later non-DSML releases: V3.1-Terminus, V3.2-Exp's chat mode)::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜>
    <｜tool▁calls▁end｜>

  (one line in reality).

- DSML, V3.2 (`<｜DSML｜function_calls>`) and V4 (`<｜DSML｜tool_calls>`): several
  `<｜DSML｜invoke name="...">` elements in one block, each argument a
  `<｜DSML｜parameter name="..." string="true|false">` element, read as `_invokes.py` says
  (values typed by the `string` attribute, then the tool's schema).
  DeepSeek-V4.1 writes the same with a space after the bar and names the block `calls`
  (`<｜DSML｜ calls>`, `<｜DSML｜ invoke name="...">`, `<｜DSML｜ parameter ...>`); both spellings are
  read for every tag. Also read: invokes written without their block (the stray block closer
  after them is dropped).

JSON arguments keep their types. Reasoning is `<think>...</think>`; `<｜end▁of▁sentence｜>` ends
the turn and is dropped. Each call's own end marker must be there: a body whose last call lacks
`<｜tool▁call▁end｜>` or `</｜DSML｜invoke>` may have been cut off and is not read as a call. In a
section or block of several calls, a bad call is reported on its own (its raw text on its
problem) and the well-formed calls beside it are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._calls import arguments_from_json
from .._json import ValueScanner
from .._scan import skip_space
from .._tools import ToolSet
from .._types import CallSyntaxError, ToolCall
from ._invokes import MarkupInvokes, at_least_one_call, is_name
from ._syntax import CallSyntax, Closers, Quote

NAME = "deepseek"

_CALLS_BEGIN, _CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
_CALL_BEGIN, _CALL_END = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>"
_SEP = "<｜tool▁sep｜>"
_DSML = "｜DSML｜"
# V4.1 writes a space after the bar: every DSML tag comes in both spellings.
_SPELLINGS = (_DSML, _DSML + " ")
_INVOKES = MarkupInvokes(_SPELLINGS)
_INVOKE_OPENS, _INVOKE_CLOSES = _INVOKES.tags("invoke")
_BLOCK_NAMES = ("function_calls", "tool_calls", "calls")  # V3.2, V4, V4.1
_BLOCK_CLOSES = tuple(f"</{d}{name}>" for name in _BLOCK_NAMES for d in _SPELLINGS)

# End markers written inside an argument (a JSON string, a DSML value) do not end the region.
_JSON_STRING = Quote('"', ('"',), backslash=True)
_DSML_VALUES = _INVOKES.value_quotes
# All openers are special tokens, so they also end a `<think>` block left open (V4 starts its
# calls right after reasoning). Calls that have their own end marker stand even when the
# section's end was cut off.
_SECTION = CallSyntax(
    _CALLS_BEGIN,
    Closers((_CALLS_END,), quotes=(_JSON_STRING,), complete_at=(_CALL_END,)),
    ends_reasoning=True,
)
# A lone call without the section markers around it (the section end then is stray markup).
_LONE_CALL = CallSyntax(_CALL_BEGIN, Closers((_CALL_END,), quotes=(_JSON_STRING,)), ends_reasoning=True)
_DSML_BLOCKS = tuple(
    CallSyntax(
        f"<{d}{name}>",
        Closers(tuple(f"</{e}{name}>" for e in _SPELLINGS), quotes=_DSML_VALUES, complete_at=_INVOKE_CLOSES),
        ends_reasoning=True,
    )
    for name in _BLOCK_NAMES
    for d in _SPELLINGS
)
# An invoke without its block: it ends at its own closer, or at the `/>` of a self-closing
# tag (outside values and JSON strings). The closer stays in the body to tell the two apart.
_LONE_INVOKES = tuple(
    CallSyntax(
        opener,
        Closers((*_INVOKE_CLOSES, "/>"), quotes=(*_DSML_VALUES, _JSON_STRING)),
        ends_reasoning=True,
        closer_in_body=True,
    )
    for opener in _INVOKE_OPENS
)

REASONING = (("<think>", "</think>"),)
DROP = ("<｜end▁of▁sentence｜>", _CALLS_END, *_BLOCK_CLOSES)
CALLS = (_SECTION, *_DSML_BLOCKS, _LONE_CALL, *_LONE_INVOKES)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_CALLS_BEGIN, _CALL_BEGIN, _DSML)


def parse_region(syntax: CallSyntax, body: str, tools: ToolSet) -> list[ToolCall | CallSyntaxError]:
    """The calls in one region: a `<｜tool▁calls▁begin｜>` section, a lone call, a DSML block, or
    a lone DSML invoke. A bad call among good ones comes back as a `CallSyntaxError` in its place."""
    if syntax.opener == _CALL_BEGIN:
        return [_call(body)]
    if syntax.opener == _CALLS_BEGIN:
        return at_least_one_call(_section(body))
    if syntax.opener in _INVOKE_OPENS:
        call, end = _INVOKES.read_invoke(syntax.opener + body, 0, tools)
        if end != len(syntax.opener + body):
            raise CallSyntaxError("text after a DSML invoke")
        return [call]
    return at_least_one_call(_INVOKES.read_block(body, tools))


def render(calls: Sequence[ToolCall]) -> str:
    """The text DeepSeek-V3.1's chat template writes for `calls`."""
    parts = [
        f"{_CALL_BEGIN}{call.name}{_SEP}{json.dumps(call.arguments, ensure_ascii=False)}{_CALL_END}"
        for call in calls
    ]
    return _CALLS_BEGIN + "".join(parts) + _CALLS_END


def _section(body: str) -> list[ToolCall | CallSyntaxError]:
    items: list[ToolCall | CallSyntaxError] = []
    pos = skip_space(body, 0)
    while pos < len(body):
        if not body.startswith(_CALL_BEGIN, pos):
            # Noise before the next call: a bad item of its own, not the call after it.
            end = body.find(_CALL_BEGIN, pos)
            end = len(body) if end < 0 else end
            items.append(CallSyntaxError(f"expected {_CALL_BEGIN} in a tool-calls section", body[pos:end]))
            pos = end
            continue
        start = pos + len(_CALL_BEGIN)
        end = _call_end(body, start)
        if end < 0:
            items.append(CallSyntaxError(f"a call without its {_CALL_END}", body[pos:]))
            break
        try:
            items.append(_call(body[start:end]))
        except CallSyntaxError as exc:
            items.append(CallSyntaxError(str(exc), body[pos : end + len(_CALL_END)], exc.name))
        pos = skip_space(body, end + len(_CALL_END))
    return items


def _call_end(body: str, start: int) -> int:
    """Where the call starting at `start` ends: the first `<｜tool▁call▁end｜>` after its JSON
    arguments (one written inside a JSON string is part of the arguments), or -1."""
    end = body.find(_CALL_END, start)
    sep = body.find(_SEP, start)
    if sep < 0 or 0 <= end < sep:
        return end
    value = body.find("{", sep)  # V3.1: right after the separator; V3: inside the ``` fence
    if value < 0 or 0 <= end < value:
        return end
    closed = ValueScanner(value).scan(body)
    return end if closed is None else body.find(_CALL_END, closed)


def _call(text: str) -> ToolCall:
    """One call between `<｜tool▁call▁begin｜>` and `<｜tool▁call▁end｜>`, V3 or V3.1 style."""
    head, sep, tail = text.partition(_SEP)
    if not sep:
        raise CallSyntaxError(f"a call without {_SEP}")
    name, arguments_text = head.strip(), tail
    first_line, newline, rest = tail.partition("\n")
    if name == "function" and newline and is_name(first_line.strip()):
        # V3 / R1: the call type before the separator, then NAME, and the arguments on the next
        # line (in a ```json fence, as the template writes them, or bare).
        name, arguments_text = first_line.strip(), rest
    _check_name(name)
    return ToolCall(name=name, arguments=arguments_from_json(_unfence(arguments_text.strip()), name))


def _unfence(text: str) -> str:
    if not text.startswith("```"):
        return text
    if len(text) < 6 or not text.endswith("```"):
        raise CallSyntaxError("an unclosed ``` fence around the arguments")
    inner = text[3:-3]
    if inner.startswith("json"):
        inner = inner[4:]
    return inner


def _check_name(name: str) -> None:
    if not is_name(name):
        raise CallSyntaxError(f"not a function name: {name[:40]!r}")
