"""Baidu ERNIE-4.5 thinking models: hermes' `<tool_call>` JSON after reasoning, answers in `<response>`.

ERNIE-4.5-21B-A3B-Thinking's chat template opens `<think>` in the generation prompt (so output
starts inside reasoning: `in_reasoning=True`), and the model ends it before either answer::

    I need the weather.
    </think>

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Beijing"}}
    </tool_call>

or `<response>\\nIt is sunny.\\n</response>`. Calls are read as `hermes` reads them (the same
markup). Where the format is named, `<response>` and `</response>` are dropped; under `auto`
they are ordinary text, since other answers use such XML tags too. `<|im_end|>` ends the turn.
"""

from __future__ import annotations

from . import hermes

NAME = "ernie"
REASONING = (("<think>", "</think>"),)
DROP = ("<|im_end|>",)
DROP_WHEN_NAMED = ("<response>", "</response>")
CALLS = hermes.CALLS
UNTAGGED: frozenset[str] = frozenset()
# The system turn every request starts with (`<global_setting>\nthink_mode=True\n...`).
TEMPLATE_HINTS = ("<global_setting>",)

parse_region = hermes.parse_region
render = hermes.render
