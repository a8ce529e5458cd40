"""ServiceNow Apriel thinkers (1.5, 1.6): reasoning, `[BEGIN FINAL RESPONSE]`, then the answer and
its calls as a JSON list in `<tool_calls>`.

Apriel-1.6's chat template ends the generation prompt with `Here are my reasoning steps:\\n`, so
the output starts inside reasoning, which ends at `[BEGIN FINAL RESPONSE]`; the answer follows,
every call of the turn in one list after it::

    The user wants the weather in Paris.
    [BEGIN FINAL RESPONSE]
    Let me check.
    <tool_calls>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_calls>

The list is Hunyuan-A13B's (the same tags and body, read by the same reader, so a `<tool_calls>`
that is no call list is the answer's text unless it holds a call object's `"name"`). A list
written before the marker ends the reasoning: it is the answer. Past calls are written with their
arguments as a JSON string and an `"id"`; both are read. Apriel-1.5 answers in `[BEGIN FINAL
RESPONSE] ... [END FINAL RESPONSE]` and its template opens no reasoning in the prompt: pass
`in_reasoning=True`. `<|end|>` ends the turn; `[END FINAL RESPONSE]` is dropped where the format is
named (under `auto` it is the answer's text).
"""

from __future__ import annotations

from dataclasses import replace

from . import hunyuan

NAME = "apriel"
# The prompt writes the opener; the model only ever writes the closer.
REASONING = (("Here are my reasoning steps:\n", "[BEGIN FINAL RESPONSE]"),)
DROP = ("<|end|>",)
DROP_WHEN_NAMED = ("[END FINAL RESPONSE]",)
CALLS = (replace(hunyuan.CALLS[0], ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
# Both templates' system prompt asks for the marker.
TEMPLATE_HINTS = (REASONING[0][1],)

parse_region = hunyuan.parse_region
render = hunyuan.render
