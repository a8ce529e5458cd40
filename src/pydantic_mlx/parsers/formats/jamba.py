"""AI21 Jamba (1.5-1.7 Mini and Large) calls: `<tool_calls>` around a JSON list of call objects.

The chat template writes the assistant's text, then every call of the turn in one list, one
call object a line::

    Let me check.<tool_calls>[
        {"name": "get_weather", "arguments": {"city": "Dallas"}},
        {"name": "get_weather", "arguments": {"city": "Orlando"}}
    ]</tool_calls>

`<|eom|>` ends a message. A `<tool_calls>` whose body is no call list and holds no call object's
`"name"` is the answer's text (a sentence about the tag), as for Hunyuan, which uses the same
tags. Jamba Reasoning 3B writes hermes' `<tool_call>` instead, and is read as `hermes`.
"""

from __future__ import annotations

from ._marked_json import MarkedJson

NAME = "jamba"
REASONING: tuple[tuple[str, str], ...] = ()
DROP = ("<|eom|>",)
_CALLS = MarkedJson("<tool_calls>", "</tool_calls>", layout=("[\n    ", ",\n    ", "\n]"))
CALLS = (_CALLS.syntax(plain_tag=True, markup_if_holds=('"name"',)),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<tool_definitions>",)

parse_region = _CALLS.parse_region
render = _CALLS.render
