"""Upstage Solar Open2 calls: `<|tool_call:start|>NAME`, then `<|tool_arg:start|>K<|tool_arg:value|>V
<|tool_arg:end|>` per argument, then `<|tool_call:end|>`.

The chat template asks for each call in this shape, one argument a line::

    <|tool_call:start|>get_weather
    <|tool_arg:start|>city<|tool_arg:value|>Paris<|tool_arg:end|>
    <|tool_arg:start|>days<|tool_arg:value|>3<|tool_arg:end|>
    <|tool_call:end|>

and writes a string value as is and anything else as JSON, so values are typed by the tool's
schema, as for GLM (the same reader, `formats/_arg_pairs.py`). The value has no tag of its own:
it runs from `<|tool_arg:value|>` to `<|tool_arg:end|>`, spaces included. Calls follow one
another. Reasoning is `<|think:start|>...<|think:end|>`, opened by the generation prompt at the
`medium` and `high` reasoning efforts (a call written there ends it); `<|im:end|>` ends the turn.
"""

from __future__ import annotations

from ._arg_pairs import ArgPairCalls

NAME = "solar_open"
REASONING = (("<|think:start|>", "<|think:end|>"),)
DROP = ("<|im:end|>",)
_CALLS = ArgPairCalls(
    ("<|tool_call:start|>", "<|tool_call:end|>"),
    ("<|tool_arg:start|>", "<|tool_arg:value|>"),
    ("", "<|tool_arg:end|>"),
)
CALLS = (_CALLS.syntax(ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = (_CALLS.key[1],)

parse_region = _CALLS.parse_region
render = _CALLS.render
