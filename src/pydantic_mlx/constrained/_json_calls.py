"""Call grammars of the formats whose arguments are one JSON object between markers.

Each builder returns the format's `CallSyntax`, accepting exactly the layouts its parser reads
(`parsers/formats/<name>.py`) and its `render` writes. Markers go through `marker`, so a special
token of the tokenizer is that one token in the grammar, and plain text otherwise.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._lark import (
    CallSyntax,
    SpecialToken,
    ToolSchema,
    arguments_rule,
    call_object_schema,
    json_options,
    keyed_call_schema,
    marker,
)

__all__ = [
    "apertus",
    "command",
    "deepseek",
    "gigachat",
    "granite",
    "granite_20b_fc",
    "harmony",
    "hermes",
    "hunyuan",
    "internlm2",
    "jamba",
    "kimi_k2",
    "llama3_json",
    "mistral",
    "nemotron",
    "phi4_mini",
    "xlam",
]


def call_json_rule(
    tools: Sequence[ToolSchema], *, compact: bool, keys: Sequence[str] = ("arguments",)
) -> str:
    """`call_json`: a `{"name": ..., "<key>": {...}}` object calling one of `tools`."""
    schema = call_object_schema(tools, keys=keys)
    return f"call_json: %json {json_options(schema, compact=compact)}"


def _named_calls(
    prefix: str, tools: Sequence[ToolSchema], head: str, tail: str = "", *, compact: bool
) -> list[str]:
    """`{prefix}`: for one of `tools`, `head` (a Lark expression where `{name}` stands for the
    tool's name as a string literal), its arguments as JSON, then `tail`; one alternative per
    tool, so the arguments are checked against the schema of the tool the call names."""
    rules = [f"{prefix}: " + " | ".join(f"{prefix}_{i}" for i in range(len(tools)))]
    for index, tool in enumerate(tools):
        arguments = f"{prefix}_{index}_arguments"
        named = head.replace("{name}", json.dumps(tool.name))
        rules.append(f"{prefix}_{index}: {named} {arguments} {tail}".rstrip())
        rules.append(arguments_rule(arguments, tool, compact=compact))
    return rules


def hermes(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """`<tool_call>` `\\n`? `{"name": ..., "arguments": {...}}` `\\n`? `</tool_call>`, calls one per line."""
    opener, closer = marker("<tool_call>", special_token), marker("</tool_call>", special_token)
    rules = (f'call: {opener} "\\n"? call_json "\\n"? {closer}', call_json_rule(tools, compact=compact))
    return CallSyntax("call", 'call ("\\n" call)*', rules, (("<tool_call>", "call", "call"),))


def llama3_json(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """`<|python_tag|>`? `{"name": ..., "parameters": {...}}`, several joined by `; `.

    The tag is optional in an answer (Llama 3.x writes custom tool calls bare); `"arguments"` is
    read too, so a region the model opened may use it."""
    tag = marker("<|python_tag|>", special_token)
    keys = ("parameters",) if compact else ("parameters", "arguments")
    separator = '"; "' if compact else '";" " "?'
    rules = (f"calls: call_json ({separator} call_json)*", call_json_rule(tools, compact=compact, keys=keys))
    return CallSyntax(
        f"{tag}? call_json",
        f"{tag}? calls",
        rules,
        (("<|python_tag|>", f"{tag} call_json", f"{tag} calls"),),
        json_keys=keys,
    )


_MISTRAL_ID = {"type": "string", "pattern": "^[A-Za-z0-9]{9}$"}


def _call_list(
    rule: str,
    tools: Sequence[ToolSchema],
    most: int | None,
    *,
    compact: bool,
    extra: Mapping[str, Any] | None = None,
    item: Mapping[str, Any] | None = None,
) -> str:
    """`rule`: a JSON list of one to `most` call objects (each with `extra` keys allowed), or of
    `item`s."""
    item = item or call_object_schema(tools, extra=extra)
    schema: dict[str, Any] = {
        "type": "array",
        "items": item,
        "minItems": 1,
        **({"maxItems": most} if most else {}),
    }
    if "$defs" in item:  # `$ref`s point at the root
        schema = {**schema, "items": {k: v for k, v in item.items() if k != "$defs"}, "$defs": item["$defs"]}
    return f"{rule}: %json {json_options(schema, compact=compact)}"


def mistral(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """v11+: `[TOOL_CALLS]name[ARGS]{...}` (`[CALL_ID]id` before `[ARGS]` optional), one
    `[TOOL_CALLS]` per call; before v11: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`."""
    calls, args = marker("[TOOL_CALLS]", special_token), marker("[ARGS]", special_token)
    call_id = f"({marker('[CALL_ID]', special_token)} /[A-Za-z0-9]{{9}}/)?"
    extra = {"id": _MISTRAL_ID}
    rules = (
        f"mistral_call: {calls} (mistral_named | mistral_list)",
        *_named_calls("mistral_named", tools, f"{{name}} {call_id} {args}", compact=compact),
        _call_list("mistral_list", tools, None, compact=compact, extra=extra),
        f"mistral_one: {calls} (mistral_named | mistral_list_one)",
        _call_list("mistral_list_one", tools, 1, compact=compact, extra=extra),
    )
    return CallSyntax(
        "mistral_one", "mistral_call+", rules, (("[TOOL_CALLS]", "mistral_one", "mistral_call"),)
    )


def granite(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Granite 3.x: `<|tool_call|>[{"name": ..., "arguments": {...}}, ...]`, every call in one list."""
    return _tagged_list("granite", tools, special_token, ("<|tool_call|>", None), compact=compact)


def nemotron(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Llama-Nemotron: `<TOOLCALL>[{"name": ..., "arguments": {...}}, ...]</TOOLCALL>`."""
    return _tagged_list("nemotron", tools, special_token, ("<TOOLCALL>", "</TOOLCALL>"), compact=compact)


def hunyuan(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Hunyuan-A13B: `<tool_calls>[{"name": ..., "arguments": {...}}, ...]</tool_calls>`."""
    return _tagged_list("hunyuan", tools, special_token, ("<tool_calls>", "</tool_calls>"), compact=compact)


def jamba(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Jamba: `<tool_calls>[\\n    {"name": ..., "arguments": {...}},\\n    ...\\n]</tool_calls>`, one
    call object a line as the template lays them out (a region the model opened: any layout)."""
    tags = ("<tool_calls>", "</tool_calls>")
    if not compact:
        return _tagged_list("jamba", tools, special_token, tags, compact=False)
    opener, closer = marker(tags[0], special_token), marker(tags[1], special_token)
    rules = (
        f'jamba_one: {opener} "[\\n    " call_json "\\n]" {closer}',
        f'jamba_calls: {opener} "[\\n    " call_json (",\\n    " call_json)* "\\n]" {closer}',
        call_json_rule(tools, compact=True),
    )
    return CallSyntax("jamba_one", "jamba_calls", rules, ((tags[0], "jamba_one", "jamba_calls"),))


def granite_20b_fc(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Granite-20B-FunctionCalling: `<function_call> {"name": ..., "arguments": {...}}` per call,
    calls back to back (the space after the marker may be left out, as the parser reads it)."""
    opener = marker("<function_call>", special_token)
    rules = (f'granite_fc_call: {opener} " "? call_json', call_json_rule(tools, compact=compact))
    return CallSyntax(
        "granite_fc_call",
        "granite_fc_call+",
        rules,
        (("<function_call>", "granite_fc_call", "granite_fc_call+"),),
    )


def internlm2(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """InternLM2: `<|action_start|><|plugin|>\\n{"name": ..., "parameters": {...}}<|action_end|>` per
    call. Only a plugin action triggers a region: the code interpreter's stays free."""
    start, plugin = marker("<|action_start|>", special_token), marker("<|plugin|>", special_token)
    end = marker("<|action_end|>", special_token)
    keys = ("parameters",) if compact else ("parameters", "arguments")
    rules = (
        f'internlm_action: {start} " "? {plugin} "\\n" call_json {end}',
        call_json_rule(tools, compact=compact, keys=keys),
    )
    opener = ("<|action_start|><|plugin|>", "internlm_action", "internlm_action+")
    return CallSyntax("internlm_action", "internlm_action+", rules, (opener,), json_keys=keys)


def phi4_mini(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Phi-4-mini: `functools[{"name": ..., "arguments": {...}}, ...]` where the answer begins.
    `functools` is plain text (Python's module too), so it triggers a region only at the start,
    once a call object follows."""
    syntax = _tagged_list("phi4", tools, special_token, ("functools", None), compact=compact)
    at_start = ((r'functools\[\{"name"', syntax.one, syntax.many),)
    return dataclasses.replace(syntax, openers=(), at_start=at_start)


def xlam(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """xLAM-2: the answer is `[{"name": ..., "arguments": {...}}, ...]`, no marker (so no lazy
    trigger of its own: a region the model opens is read by the untagged-JSON triggers)."""
    rules = (
        _call_list("xlam_one", tools, 1, compact=compact),
        _call_list("xlam_calls", tools, None, compact=compact),
    )
    return CallSyntax("xlam_one", "xlam_calls", rules, ())


def _tagged_list(
    prefix: str,
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    tags: tuple[str, str | None],
    *,
    compact: bool,
    item: Mapping[str, Any] | None = None,
) -> CallSyntax:
    """A JSON list of call objects (or of `item`s) after an opening tag (and before a closing
    one, if any)."""
    opener = marker(tags[0], special_token)
    closer = "" if tags[1] is None else f" {marker(tags[1], special_token)}"
    one, many = f"{prefix}_one", f"{prefix}_calls"
    rules = (
        f"{one}: {opener} {one}_list{closer}",
        _call_list(f"{one}_list", tools, 1, compact=compact, item=item),
        f"{many}: {opener} {many}_list{closer}",
        _call_list(f"{many}_list", tools, None, compact=compact, item=item),
    )
    return CallSyntax(one, many, rules, ((tags[0], one, many),))


_DS_CALLS_BEGIN, _DS_CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
_DS_CALL_BEGIN, _DS_CALL_END, _DS_SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


def deepseek(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """A `<｜tool▁calls▁begin｜>` section of calls (a lone `<｜tool▁call▁begin｜>` call too), each
    V3.1 `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>` or V3
    `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```<｜tool▁call▁end｜>` (V3 puts
    a newline between calls). V3.2/V4's DSML blocks are `_xml_calls.dsml`."""
    begin, end = marker(_DS_CALLS_BEGIN, special_token), marker(_DS_CALLS_END, special_token)
    call_begin, call_end = marker(_DS_CALL_BEGIN, special_token), marker(_DS_CALL_END, special_token)
    sep = marker(_DS_SEP, special_token)
    rules = (
        f'ds_section: {begin} ds_call ("\\n"? ds_call)* {end}',
        f"ds_one: {begin} ds_call {end}",
        f"ds_call: {call_begin} (ds_v31 | ds_v3) {call_end}",
        *_named_calls("ds_v31", tools, f"{{name}} {sep}", compact=compact),
        *_named_calls(
            "ds_v3", tools, f'"function" {sep} {{name}} "\\n```json\\n"', '"\\n```"', compact=compact
        ),
    )
    return CallSyntax(
        "ds_one",
        "ds_section",
        rules,
        ((_DS_CALLS_BEGIN, "ds_one", "ds_section"), (_DS_CALL_BEGIN, "ds_call", "ds_call")),
    )


_KIMI_SECTIONS = (
    ("<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"),
    ("<|tool_call_section_begin|>", "<|tool_call_section_end|>"),
)


def kimi_k2(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """A `<|tool_calls_section_begin|>` section (the singular spelling too) of calls
    `<|tool_call_begin|>functions.NAME:INDEX<|tool_call_argument_begin|>{...}<|tool_call_end|>`;
    a lone call too. Kimi-K3's XTML channel is `_xml_calls.xtml`."""
    call_begin = marker("<|tool_call_begin|>", special_token)
    call_end = marker("<|tool_call_end|>", special_token)
    arguments = marker("<|tool_call_argument_begin|>", special_token)
    rules: list[str] = [
        f"kimi_call: {call_begin} kimi_named {call_end}",
        *_named_calls(
            "kimi_named", tools, f'"functions." {{name}} ":" /[0-9]{{1,3}}/ {arguments}', compact=compact
        ),
    ]
    openers = [("<|tool_call_begin|>", "kimi_call", "kimi_call")]
    for index, (begin, end) in enumerate(_KIMI_SECTIONS):
        section_begin, section_end = marker(begin, special_token), marker(end, special_token)
        rules.append(f"kimi_section_{index}: {section_begin} kimi_call+ {section_end}")
        rules.append(f"kimi_one_{index}: {section_begin} kimi_call {section_end}")
        openers.append((begin, f"kimi_one_{index}", f"kimi_section_{index}"))
    return CallSyntax("kimi_one_0", "kimi_section_0", tuple(rules), tuple(openers))


def harmony(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """gpt-oss: a commentary (or analysis) message to `functions.NAME` holding the JSON arguments,
    `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}<|call|>`, or with the
    recipient first, `<|start|>assistant to=functions.NAME<|channel|>commentary json<|message|>...`.
    Several calls are messages joined by `<|start|>assistant`. After a prompt that ended with
    `<|start|>assistant`, the answer may begin with the recipient itself,
    ` to=functions.NAME<|channel|>commentary json<|message|>{...}<|call|>` (only there)."""
    start, channel = marker("<|start|>", special_token), marker("<|channel|>", special_token)
    message, call = marker("<|message|>", special_token), marker("<|call|>", special_token)
    content_type = f'(" " {marker("<|constrain|>", special_token)} "json" | " json")?'
    rules = (
        f'h_channel_first: {channel} ("commentary" | "analysis") " to=" h_channel_call',
        *_named_calls(
            "h_channel_call", tools, f'"functions." {{name}} {content_type} {message}', call, compact=compact
        ),
        f'h_recipient_first: {start} "assistant to=" h_recipient_call',
        *_named_calls(
            "h_recipient_call",
            tools,
            f'"functions." {{name}} {channel} "commentary" {content_type} {message}',
            call,
            compact=compact,
        ),
        f'h_message: {start} "assistant" (" to=" h_recipient_call | h_channel_first)',
        'h_bare: "to=" h_recipient_call',
    )
    first = '(h_message | h_channel_first | " "? h_bare)'
    return CallSyntax(
        first,
        f"{first} h_message*",
        rules,
        (
            ("<|channel|>commentary to=", "h_channel_first", "h_channel_first"),
            ("<|channel|>analysis to=", "h_channel_first", "h_channel_first"),
            ("<|start|>assistant to=", "h_recipient_first", "h_recipient_first"),
        ),
        at_start=((r"to=functions\.", "h_bare", "h_bare"),),
    )


def apertus(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Apertus: `<|tools_prefix|>[{"NAME": {...}}, ...]<|tools_suffix|>`, each call an object
    keyed by the tool's name."""
    tags = ("<|tools_prefix|>", "<|tools_suffix|>")
    return _tagged_list("apertus", tools, special_token, tags, compact=compact, item=keyed_call_schema(tools))


def command(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Command A / R7B: `<|START_ACTION|>[` then `{"tool_call_id": "0", "tool_name": ...,
    "parameters": {...}}` objects (ids numbered as the template numbers them) and
    `]<|END_ACTION|>`, laid out one object a line as the template writes them, or on one line."""
    call_id = {"type": "string", "pattern": "^[0-9]{1,3}$"}
    item = call_object_schema(
        tools, keys=("parameters",), name_key="tool_name", lead={"tool_call_id": call_id}
    )
    opener, closer = marker("<|START_ACTION|>", special_token), marker("<|END_ACTION|>", special_token)
    gap = "COMMAND_GAP?"
    more = f'({gap} "," {gap} command_item)*'
    rules = (
        r"COMMAND_GAP: /\n?[ \t]{1,8}|\n/",
        f"command_item: %json {json_options(item, compact=compact)}",
        f'command_one: {opener} {gap} "[" {gap} command_item {gap} "]" {gap} {closer}',
        f'command_calls: {opener} {gap} "[" {gap} command_item {more} {gap} "]" {gap} {closer}',
    )
    return CallSyntax(
        "command_one", "command_calls", rules, (("<|START_ACTION|>", "command_one", "command_calls"),)
    )


def gigachat(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """GigaChat 3: `function call<|role_sep|>` `\\n` `{"name": ..., "arguments": {...}}`; 3.1: the
    same object after `<|function_call|>`. One call a turn."""
    header = f'"function call" {marker("<|role_sep|>", special_token)} "\\n"'
    rules = (
        f"gc_message: {header} call_json",
        f"gc_token: {marker('<|function_call|>', special_token)} call_json",
        call_json_rule(tools, compact=compact),
    )
    openers = (
        ("function call<|role_sep|>", "gc_message", "gc_message"),
        ("<|function_call|>", "gc_token", "gc_token"),
    )
    return CallSyntax("(gc_message | gc_token)", "(gc_message | gc_token)", rules, openers)
