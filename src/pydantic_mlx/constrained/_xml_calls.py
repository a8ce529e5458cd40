"""Call grammars of the formats that write each argument in its own tags, values typed by schema.

Qwen3-Coder (`<function=NAME><parameter=KEY>VALUE</parameter>`) and GLM (`<arg_key>KEY</arg_key>
<arg_value>VALUE</arg_value>`): arguments come in schema order, required ones always, optional
ones may be left out; a string-only value is raw text, any other value is JSON valid against
its schema (the parsers type values by the same schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._json_calls import call_json_rule
from ._lark import (
    CallSyntax,
    SpecialToken,
    ToolSchema,
    is_plain_string,
    json_options,
    marker,
    resolve_ref,
    text_value_rule,
    tool_arguments,
)

__all__ = ["auto", "glm", "qwen3_coder"]


def qwen3_coder(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """`<tool_call>\\n<function=NAME>\\n<parameter=KEY>\\nVALUE\\n</parameter>\\n...</function>\\n</tool_call>`;
    models also drop the opening `<tool_call>` (the parser reads a bare `<function=...>`)."""
    return _tool_call_block(tools, special_token, compact=compact, json_body=False)


def auto(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """`auto` reads both a hermes JSON body and a Qwen3-Coder body inside `<tool_call>`."""
    return _tool_call_block(tools, special_token, compact=compact, json_body=True)


def _tool_call_block(
    tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool, json_body: bool
) -> CallSyntax:
    opener, closer = marker("<tool_call>", special_token), marker("</tool_call>", special_token)
    xml_body = '"\\n" function "\\n"'
    body = f'("\\n"? call_json "\\n"? | {xml_body})' if json_body else xml_body
    rules = [f"call: {opener} {body} {closer}", *_xml_function_rules(tools, compact=compact)]
    if json_body:
        rules.append(call_json_rule(tools, compact=compact))
    return CallSyntax(
        "call",
        'call ("\\n" call)*',
        tuple(rules),
        (("<tool_call>", "call", "call"), ("<function=", "function", "function")),
    )


def _xml_function_rules(tools: Sequence[ToolSchema], *, compact: bool) -> list[str]:
    """Qwen3-Coder's `<function=NAME>` with one `<parameter=KEY>` block per argument."""
    rules = ["function: " + " | ".join(f"function_{i}" for i in range(len(tools)))]
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts = [json.dumps(f"<function={tool.name}>\n")]
        for key_index, (key, prop) in enumerate(properties.items()):
            rule = f"parameter_{index}_{key_index}"
            parts.append(rule if key in required else f"{rule}?")
            value = f"value_{index}_{key_index}"
            opener = json.dumps(f"<parameter={key}>\n")
            rules.append(f"{rule}: {opener} {value}")
            rules.append(_xml_value_rule(value, prop, defs, compact=compact))
        parts.append('"</function>"')
        rules.append(f"function_{index}: " + " ".join(parts))
    return rules


def _xml_value_rule(rule: str, prop: Mapping[str, Any], defs: Mapping[str, Any], *, compact: bool) -> str:
    """One value with its `</parameter>` closer and the newline the template writes after it."""
    prop = resolve_ref(prop, defs)
    if is_plain_string(prop):
        enum = prop.get("enum")
        if isinstance(enum, list) and enum:
            choices = " | ".join(json.dumps(v) for v in enum)  # pyright: ignore[reportUnknownVariableType]
            return f'{rule}: ({choices}) "\\n</parameter>\\n"'
        limit = prop.get("maxLength")
        length = f"{{0,{limit}}}" if isinstance(limit, int) else "*"
        # Lazy: the text ends at the first `</parameter>`, exactly where the parser ends it.
        return f'{rule}: {rule}_text "\\n"\n{rule}_text[lazy]: /(?s:.{length})<\\/parameter>/'
    schema = dict(prop)
    if defs:
        schema["$defs"] = dict(defs)
    value = json_options(schema, compact=compact)
    return f'{rule}: {rule}_json "\\n</parameter>\\n"\n{rule}_json: %json {value}'


_GLM_KEY = ("<arg_key>", "</arg_key>")
_GLM_VALUE = ("<arg_value>", "</arg_value>")


def glm(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """GLM-4.5-4.7: `<tool_call>NAME` then `<arg_key>KEY</arg_key><arg_value>VALUE</arg_value>`
    per argument and `</tool_call>`, with (GLM-4.5/4.6) or without (GLM-4.7) a newline before
    each tag; calls one per line. String values are raw text, others JSON (the template's
    `tojson`)."""
    opener, closer = marker("<tool_call>", special_token), marker("</tool_call>", special_token)
    key_open, key_close = (marker(m, special_token) for m in _GLM_KEY)
    value_open = marker(_GLM_VALUE[0], special_token)
    gap = '"\\n"?'
    rules = [
        f"glm_call: {opener} glm_function {gap} {closer}",
        "glm_function: " + " | ".join(f"glm_function_{i}" for i in range(len(tools))),
    ]
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts = [json.dumps(tool.name)]
        for key_index, (key, prop) in enumerate(properties.items()):
            pair, value = f"glm_pair_{index}_{key_index}", f"glm_value_{index}_{key_index}"
            parts.append(pair if key in required else f"{pair}?")
            rules.append(f"{pair}: {gap} {key_open} {json.dumps(key)} {key_close} {gap} {value_open} {value}")
            rules.append(
                text_value_rule(
                    value,
                    prop,
                    defs,
                    opener=_GLM_VALUE[0],
                    closer=_GLM_VALUE[1],
                    special_token=special_token,
                    compact=compact,
                )
            )
        rules.append(f"glm_function_{index}: " + " ".join(parts))
    return CallSyntax(
        "glm_call", 'glm_call ("\\n" glm_call)*', tuple(rules), (("<tool_call>", "glm_call", "glm_call"),)
    )
