"""GLM-4.5 / 4.6 / 4.7 (and GLM-5) calls: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>`.

GLM-4.5 and 4.6 put a newline after the name and between the tags::

    <tool_call>get_weather
    <arg_key>city</arg_key>
    <arg_value>Paris</arg_value>
    <arg_key>days</arg_key>
    <arg_value>3</arg_value>
    </tool_call>

GLM-4.7 writes the same without newlines, and a call without arguments is just
`<tool_call>NAME</tool_call>`. Values are typed by the tool's schema; the shapes GLM models also
write (JSON arguments, a whole JSON call object, GLM-4.7's last `</arg_value>` left out) are
read as `_arg_pairs.py` says. Reasoning is `<think>...</think>`; `<|user|>`, `<|observation|>`
and `<|endoftext|>` end the turn and are dropped. `<tool_call>` is shared with hermes and
qwen3_coder, so a body that starts with `<function=` or is anything but these shapes is
rejected here.
"""

from __future__ import annotations

from ._arg_pairs import ArgPairCalls

NAME = "glm"
REASONING = (("<think>", "</think>"),)
DROP = ("<|user|>", "<|observation|>", "<|endoftext|>")
_CALLS = ArgPairCalls(
    ("<tool_call>", "</tool_call>"), ("<arg_key>", "</arg_key>"), ("<arg_value>", "</arg_value>")
)
# GLM-4.7's prompt opens `<think>`; a call there ends it.
CALLS = (_CALLS.syntax(ends_prompt_reasoning=True),)
UNTAGGED: frozenset[str] = frozenset()
TEMPLATE_HINTS = ("<arg_key>",)
parse_region = _CALLS.parse_region
render = _CALLS.render
