"""Phi-4-mini calls: `functools[{"name": ..., "arguments": {...}}, ...]` where the answer begins.

Phi-4-mini-instruct declares tools between `<|tool|>` and `<|/tool|>` in the system message and
answers a call with the word `functools` and a JSON list of call objects::

    functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]

`functools` is no special token: it is also Python's module. So it opens calls only where the
answer begins (after optional spaces), and there a `functools` not followed by a readable call
list (`functools.partial(...)`) stays the answer's text. `<|end|>` ends the turn.
"""

from __future__ import annotations

from ._marked_json import MarkedJson

NAME = "phi4_mini"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|end|>",)
_CALLS = MarkedJson("functools")
# Right after `functools`, a list opening a call object is a call, even one cut off or unreadable.
CALLS = (_CALLS.syntax(at_start=True, markup_if_holds=('[{"name"',)),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<|/tool|>",)

parse_region = _CALLS.parse_region
render = _CALLS.render
