"""OpenBMB MiniCPM5 calls: bare `<function name="NAME">` elements of `<param name="K">` values.

The chat template writes no block around calls: each is one compact element, a line apart, its
arguments sorted by name::

    <function name="get_weather"><param name="city">Paris</param><param name="days">3</param></function>

A value holding `<`, `&` or a newline is wrapped in a CDATA section (`<![CDATA[...]]>`), read
verbatim; so a region's closer inside a value is inside one. The template writes a value with
Jinja's `string` filter, Python's spelling: `True`, `None`, `{'a': 1}`; typed by the tool's
schema, which reads those spellings too (without a schema, only JSON-obvious values are typed,
so `True` stays a string). `render` writes `True`/`False`/`None` that way and objects and
arrays as JSON, which models also write.

`<function name="` is spelled like an ordinary XML tag (build files, docs): an element that
cannot be read, or was cut off, is the answer's text unless it holds a `<param name="`.
Reasoning is `<think>...</think>`, opened by the generation prompt when thinking is on (a call
written there ends it); `<|im_end|>` ends the turn.
"""

from __future__ import annotations

from typing import Any

from ._tagged import TaggedCalls, json_text

NAME = "minicpm5"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>",)


def _python_text(value: Any) -> str:
    """A non-string value's text: Python's spelling of constants (the template's `string`)."""
    return str(value) if value is None or isinstance(value, bool) else json_text(value)


_CALLS = TaggedCalls(
    block=None,
    function=('<function name="', '">'),
    function_close="</function>",
    parameter=('<param name="', '">'),
    parameter_close="</param>",
    cdata=True,
    layout="",
    write_value=_python_text,
)
CALLS = (_CALLS.syntax(plain_tag=True, markup_if_holds=(_CALLS.parameter[0],)),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_CALLS.parameter[0],)

parse_region = _CALLS.parse_region
render = _CALLS.render
