"""Call grammars of the formats that write each argument in its own tags, values typed by schema.

Qwen3-Coder (`<function=NAME><parameter=KEY>VALUE</parameter>`), GLM (`<arg_key>KEY</arg_key>
<arg_value>VALUE</arg_value>`), DeepSeek V3.2/V4's DSML (`<｜DSML｜parameter name="KEY"
string="true">VALUE</｜DSML｜parameter>`) and Kimi-K3's XTML (`<|open|>argument key="KEY"
type="string"<|sep|>VALUE<|close|>argument<|sep|>`): arguments come in schema order, required
ones always, optional ones may be left out; a string-only value is raw text, any other value is
JSON valid against its schema (the parsers type values by the same schema; DSML and XTML also
mark each value as text or JSON, and the mark follows the value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._json_calls import call_json_rule
from ._lark import (
    CallSyntax,
    SpecialToken,
    ToolSchema,
    arguments_rule,
    closed_text_rules,
    is_plain_string,
    json_options,
    marker,
    marker_row,
    resolve_ref,
    string_alternative,
    string_choices,
    text_value_rule,
    tool_arguments,
)

__all__ = [
    "auto",
    "dsml",
    "gcml",
    "glm",
    "longcat",
    "minicpm5",
    "minimax_m2",
    "qwen3_coder",
    "seed_oss",
    "xtml",
]


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
    """One value with its `</parameter>` closer and the newline the template writes after it.
    The parser drops one newline before `</parameter>` (the template's): the value's length is
    the text's without it."""
    end, text_end = '"\\n</parameter>\\n"', ' "\\n"'
    return _bare_value_rule(
        rule, prop, defs, compact=compact, length=_text_of_length, end=end, text_end=text_end
    )


def _bare_value_rule(
    rule: str,
    prop: Mapping[str, Any],
    defs: Mapping[str, Any],
    *,
    compact: bool,
    length: Callable[[int, int | None], str],
    end: str,
    text_end: str = "",
    closer: str = "</parameter>",
) -> str:
    """One value written bare before `closer`: a string-only value is raw text whose `length`
    regex bounds it as the parser reads it back (lazy: it ends at the first `closer`, as
    there), then `text_end`; an `enum` is one of its values; any other value is JSON valid
    against its schema, then `end` (a Lark literal holding `closer`)."""
    prop = resolve_ref(prop, defs)

    def text_rules(name: str, text: Mapping[str, Any]) -> str:
        enum = string_choices(text)
        if enum:
            choices = " | ".join(json.dumps(v) for v in enum)
            return f"{name}: ({choices}) {end}"
        low, high = text.get("minLength"), text.get("maxLength")
        low = low if isinstance(low, int) else 0
        high = high if isinstance(high, int) else None
        ends = closer.replace("/", "\\/")
        return f"{name}: {name}_text{text_end}\n{name}_text[lazy]: /(?s:{length(low, high)}){ends}/"

    if is_plain_string(prop):
        return text_rules(rule, prop)
    schema = dict(prop)
    if defs:
        schema["$defs"] = dict(defs)
    value = f"{rule}_json: %json {json_options(schema, compact=compact)}"
    # A string in a union is written bare by the template: raw text, or JSON of the union.
    text = string_alternative(prop, defs)
    if text is None:
        return f"{rule}: {rule}_json {end}\n{value}"
    return f"{rule}: {rule}_raw | {rule}_json {end}\n{text_rules(f'{rule}_raw', text)}\n{value}"


def _text_of_length(low: int, high: int | None) -> str:
    """A regex for `low` to `high` characters, then a newline that does not count; or, without
    that newline, the characters alone (the last one not a newline)."""
    if high is not None and high < low:
        return r"[^\s\S]"  # no string is valid: an empty character class
    most = "" if high is None else str(high)
    shorter = "" if high is None else str(high - 1)
    alternatives = [f".{{{low},{most}}}\\n"]
    if high != 0:
        alternatives.append(f".{{{max(low - 1, 0)},{shorter}}}[^\\n]")
    if low == 0:
        alternatives.append("")
    return "(?:" + "|".join(alternatives) + ")"


def _text_in_layout(low: int, high: int | None) -> str:
    """A regex for a value of `low` to `high` characters as MiniMax-M2's and Seed-OSS's templates
    write it: inline (not starting or ending with a newline), or between two newlines that the
    parser removes (`formats/_tagged.py`), which do not count."""
    if high is not None and high < low:
        return r"[^\s\S]"
    most = "" if high is None else str(high)
    inline: list[str] = []
    if low == 0:
        inline.append("")
    if low <= 1 and (high is None or high >= 1):
        inline.append(r"[^\n]")
    if high is None or high >= 2:
        inner_most = "" if high is None else str(high - 2)
        inline.append(f"[^\\n].{{{max(low - 2, 0)},{inner_most}}}[^\\n]")
    return "(?:" + "|".join([f"\\n.{{{low},{most}}}\\n", *inline]) + ")"


def glm(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """GLM-4.5-4.7: `<tool_call>NAME` then `<arg_key>KEY</arg_key><arg_value>VALUE</arg_value>`
    per argument and `</tool_call>`, with (GLM-4.5/4.6) or without (GLM-4.7) a newline before
    each tag; calls one per line. String values are raw text, others JSON (the template's
    `tojson`)."""
    tags = (("<tool_call>", "</tool_call>"), ("<arg_key>", "</arg_key>"), ("<arg_value>", "</arg_value>"))
    return _arg_pair_calls(tools, special_token, compact=compact, prefix="glm", tags=tags)


def longcat(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """LongCat-Flash: `<longcat_tool_call>` around GLM's name-then-pairs shape with `longcat_`
    tags (Flash-Thinking, Lite) or a `{"name": ..., "arguments": {...}}` object on its own line
    (Flash-Chat's template)."""
    tags = (
        ("<longcat_tool_call>", "</longcat_tool_call>"),
        ("<longcat_arg_key>", "</longcat_arg_key>"),
        ("<longcat_arg_value>", "</longcat_arg_value>"),
    )
    return _arg_pair_calls(tools, special_token, compact=compact, prefix="longcat", tags=tags, json_body=True)


def _arg_pair_calls(
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    *,
    compact: bool,
    prefix: str,
    tags: tuple[tuple[str, str], tuple[str, str], tuple[str, str]],
    json_body: bool = False,
    sep: str | None = None,
    section: tuple[str, str] | None = None,
) -> CallSyntax:
    """Calls as the parsers' `formats/_arg_pairs.py` reads them: the block's opener, the name
    (then `sep`), then a key and a value element per argument, then the block's closer; with
    `json_body`, a JSON call object instead of the name and pairs may fill the block; with
    `section`, blocks one a line between its tags (one block when parallel calls are off)."""
    (block_open, block_close), (key_open, key_close), value_tags = tags
    gap = '"\\n"?'
    opener, closer = marker(block_open, special_token), marker(block_close, special_token)
    key_opening, key_closing = marker(key_open, special_token), marker(key_close, special_token)
    # A value the key's closer opens (Solar Open) starts right after it; else at its own tag.
    value_open = f"{gap} {marker(value_tags[0], special_token)} " if value_tags[0] else ""
    body = f"{prefix}_function {gap}"
    if json_body:
        body = f'({body} | "\\n" call_json "\\n")'
    rules = [
        f"{prefix}_call: {opener} {body} {closer}",
        f"{prefix}_function: " + " | ".join(f"{prefix}_function_{i}" for i in range(len(tools))),
    ]
    if json_body:
        rules.append(call_json_rule(tools, compact=compact))
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts = [json.dumps(tool.name)] + ([marker(sep, special_token)] if sep else [])
        for key_index, (key, prop) in enumerate(properties.items()):
            pair, value = f"{prefix}_pair_{index}_{key_index}", f"{prefix}_value_{index}_{key_index}"
            parts.append(pair if key in required else f"{pair}?")
            rules.append(f"{pair}: {gap} {key_opening} {json.dumps(key)} {key_closing} {value_open}{value}")
            rules.append(
                text_value_rule(
                    value,
                    prop,
                    defs,
                    opener=value_tags[0] or key_open,
                    closer=value_tags[1],
                    special_token=special_token,
                    compact=compact,
                )
            )
        rules.append(f"{prefix}_function_{index}: " + " ".join(parts))
    one = f"{prefix}_call"
    if section is not None:
        start, end = marker(section[0], special_token), marker(section[1], special_token)
        rules.append(f'{prefix}_one: {start} "\\n" {one} "\\n" {end}')
        rules.append(f'{prefix}_calls: {start} "\\n" {one} ("\\n" {one})* "\\n" {end}')
        return CallSyntax(
            f"{prefix}_one",
            f"{prefix}_calls",
            tuple(rules),
            ((section[0], f"{prefix}_one", f"{prefix}_calls"),),
        )
    return CallSyntax(one, f'{one} ("\\n" {one})*', tuple(rules), ((block_open, one, one),))


def _hunyuan_calls(
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    *,
    compact: bool,
    prefix: str,
    suffix: str,
    sep: str,
) -> CallSyntax:
    """Hunyuan's section of blocks, each tag spelled with the checkpoint's token suffix."""
    tag = {
        word: (f"<{word}{suffix}>", f"</{word}{suffix}>")
        for word in ("tool_calls", "tool_call", "arg_key", "arg_value")
    }
    return _arg_pair_calls(
        tools,
        special_token,
        compact=compact,
        prefix=prefix,
        tags=(tag["tool_call"], tag["arg_key"], tag["arg_value"]),
        sep=sep,
        section=tag["tool_calls"],
    )


def hy3(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Hunyuan Hy3 (released, `:opensource` tokens): `<tool_calls>` then blocks one a line,
    `<tool_call>NAME<tool_sep>` and `<arg_key>KEY</arg_key><arg_value>VALUE</arg_value>` pairs
    a newline apart, `</tool_call>`, then `</tool_calls>`; values as for `glm`."""
    return _hunyuan_calls(
        tools, special_token, compact=compact, prefix="hy3", suffix=":opensource", sep="<tool_sep:opensource>"
    )


def hy4(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Tencent Hy4-preview (`:6124c78e` tokens): Hy3's section and pairs, the name followed by
    no separator."""
    return _hunyuan_calls(tools, special_token, compact=compact, prefix="hy4", suffix=":6124c78e", sep="")


def solar_open(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Upstage Solar Open: `<|tool_call:start|>NAME`, then per argument
    `<|tool_arg:start|>KEY<|tool_arg:value|>VALUE<|tool_arg:end|>` (a newline before each
    optional), then `<|tool_call:end|>`; calls one per line; values as for `glm`."""
    tags = (
        ("<|tool_call:start|>", "<|tool_call:end|>"),
        ("<|tool_arg:start|>", "<|tool_arg:value|>"),
        ("", "<|tool_arg:end|>"),
    )
    return _arg_pair_calls(tools, special_token, compact=compact, prefix="solar", tags=tags)


def minimax_m2(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """MiniMax-M2: one `<minimax:tool_call>` block of `<invoke name="NAME">` elements, each
    argument `<parameter name="KEY">VALUE</parameter>` on its own line."""
    return _tagged_block(
        tools,
        special_token,
        compact=compact,
        prefix="minimax",
        block=("<minimax:tool_call>", "</minimax:tool_call>"),
        function=('<invoke name="', '">', "</invoke>"),
        parameter=('<parameter name="', '">'),
        one_block_per_call=False,
    )


def seed_oss(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Seed-OSS: a `<seed:tool_call>` block per call around `<function=NAME>`, each argument
    `<parameter=KEY>VALUE</parameter>` on its own line."""
    return _tagged_block(
        tools,
        special_token,
        compact=compact,
        prefix="seed",
        block=("<seed:tool_call>", "</seed:tool_call>"),
        function=("<function=", ">", "</function>"),
        parameter=("<parameter=", ">"),
        one_block_per_call=True,
    )


def _tagged_block(
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    *,
    compact: bool,
    prefix: str,
    block: tuple[str, str],
    function: tuple[str, str, str],
    parameter: tuple[str, str],
    one_block_per_call: bool,
) -> CallSyntax:
    """Calls written as the parsers' `formats/_tagged.py` reads them: a block of function
    elements, tags one per line, a string-only value raw text up to `</parameter>`, any other
    value JSON valid against its schema."""
    opener, closer = marker(block[0], special_token), marker(block[1], special_token)
    rules = _tagged_functions(
        tools,
        prefix,
        function,
        (*parameter, "</parameter>"),
        compact=compact,
        newline="\n",
        length=_text_in_layout,
    )
    one, many = f"{prefix}_call", f"{prefix}_calls"
    rules.append(f'{one}: {opener} "\\n" {prefix}_function "\\n" {closer}')
    if one_block_per_call:
        rules.append(f'{many}: {one} ("\\n" {one})*')
    else:
        rules.append(f'{many}: {opener} "\\n" {prefix}_function ("\\n" {prefix}_function)* "\\n" {closer}')
    return CallSyntax(one, many, tuple(rules), ((block[0], one, many),))


def minicpm5(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """MiniCPM5: bare `<function name="NAME">` elements, one a line, each argument
    `<param name="KEY">VALUE</param>` with nothing between tags. A string-only value is text
    without `<` or a newline, or a CDATA section (the template's spelling of a value holding
    them); any other value JSON valid against its schema."""
    function, parameter = ('<function name="', '">', "</function>"), ('<param name="', '">', "</param>")
    rules = _tagged_functions(
        tools, "minicpm5", function, parameter, compact=compact, newline="", length=_inline_or_cdata
    )
    rules.append('minicpm5_calls: minicpm5_function ("\\n" minicpm5_function)*')
    return CallSyntax(
        "minicpm5_function",
        "minicpm5_calls",
        tuple(rules),
        ((function[0], "minicpm5_function", "minicpm5_calls"),),
    )


def _tagged_functions(
    tools: Sequence[ToolSchema],
    prefix: str,
    function: tuple[str, str, str],
    parameter: tuple[str, str, str],
    *,
    compact: bool,
    newline: str,
    length: Callable[[int, int | None], str],
) -> list[str]:
    """`{prefix}_function`: one function element of a declared tool, one parameter element per
    argument in schema order (required ones always), `newline` before each tag after the first."""
    rules = [f"{prefix}_function: " + " | ".join(f"{prefix}_function_{i}" for i in range(len(tools)))]
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts = [json.dumps(f"{function[0]}{tool.name}{function[1]}")]
        for key_index, (key, prop) in enumerate(properties.items()):
            pair, value = f"{prefix}_parameter_{index}_{key_index}", f"{prefix}_value_{index}_{key_index}"
            parts.append(pair if key in required else f"{pair}?")
            # The newline is in the tag's lexeme: a lone newline lexeme beside the closer's
            # "\n</invoke>" would need the lexer to back up two bytes once `<p` follows.
            tag = json.dumps(newline + parameter[0] + key + parameter[1])
            rules.append(f"{pair}: {tag} {value}")
            end = json.dumps(parameter[2])
            rules.append(
                _bare_value_rule(
                    value, prop, defs, compact=compact, length=length, end=end, closer=parameter[2]
                )
            )
        parts.append(json.dumps(newline + function[2]))
        rules.append(f"{prefix}_function_{index}: " + " ".join(parts))
    return rules


def _inline_or_cdata(low: int, high: int | None) -> str:
    """A regex for a value of `low` to `high` characters as MiniCPM5's template writes it:
    inline without `<` or a newline, or any text in a CDATA section, which the parser unwraps."""
    most = "" if high is None else str(high)
    return f"(?:[^<\\n]{{{low},{most}}}|<!\\[CDATA\\[.{{{low},{most}}}\\]\\]>)"


def _marked_value(
    rule: str,
    prop: Mapping[str, Any],
    defs: Mapping[str, Any],
    *,
    closer: Sequence[str],
    forbidden: Sequence[str],
    special_token: SpecialToken,
    compact: bool,
) -> tuple[list[tuple[bool, str]], list[str]]:
    """One value followed by `closer` (a row of marker pieces), for the formats whose tag says
    whether the value is text: its alternatives (whether written as text, and the rule), and
    the rules. A string-only value is raw text that never spells `forbidden` (an `enum` is one of
    its values, `minLength`/`maxLength` bound it); any other value is JSON valid against its
    schema, or raw text valid for its one string branch (`str | None`, as the template writes it)."""
    prop = resolve_ref(prop, defs)
    closing = marker_row(closer, special_token)

    def text_rules(name: str, text: Mapping[str, Any]) -> list[str]:
        enum = string_choices(text)
        if enum:
            choices = " | ".join(json.dumps(v) for v in enum)
            return [f"{name}: ({choices}) {closing}"]
        low, high = text.get("minLength"), text.get("maxLength")
        return closed_text_rules(
            name,
            low if isinstance(low, int) else 0,
            high if isinstance(high, int) else None,
            closer=closer,
            forbidden=forbidden,
            special_token=special_token,
        )

    if is_plain_string(prop):
        return [(True, rule)], text_rules(rule, prop)
    schema = dict(prop)
    if defs:
        schema["$defs"] = dict(defs)
    rules = [f"{rule}: {rule}_json {closing}", f"{rule}_json: %json {json_options(schema, compact=compact)}"]
    text = string_alternative(prop, defs, marked=True)
    if text is None:
        return [(False, rule)], rules
    return [(False, rule), (True, f"{rule}_text")], rules + text_rules(f"{rule}_text", text)


def dsml(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """DeepSeek V3.2's `<｜DSML｜function_calls>` (V4: `tool_calls`) block of invokes.
    `｜DSML｜` is one special token in V3.2/V4's tokenizer, between text."""
    return _invoke_blocks(
        tools, special_token, compact=compact, prefix="dsml", namespace="｜DSML｜", blocks=_DSML_BLOCKS
    )


def gcml(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """GigaChat 3.5's `<｜GCML｜tool_calls>` block of invokes, DSML's shape in its namespace."""
    return _invoke_blocks(
        tools, special_token, compact=compact, prefix="gcml", namespace="｜GCML｜", blocks=("tool_calls",)
    )


_DSML_BLOCKS = ("function_calls", "tool_calls")
"""The block's name in DeepSeek V3.2 and in V4."""


def _invoke_blocks(
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    *,
    compact: bool,
    prefix: str,
    namespace: str,
    blocks: Sequence[str],
) -> CallSyntax:
    """A block of invokes as the parsers' `formats/_invokes.py` reads them: `<NSinvoke name="NAME">`
    then `<NSparameter name="KEY" string="true">VALUE</NSparameter>` per argument and
    `</NSinvoke>`, tags one per line (as the templates write them; an invoke without parameters
    has an empty line), `NS` being `namespace`. `string="true"` marks a string-only value (raw
    text), `string="false"` any other (JSON)."""

    def tag(before: str, after: str) -> str:
        return marker_row((before, namespace, after), special_token)

    gap = f"{prefix.upper()}_GAP?"
    invokes = " | ".join(f"{prefix}_invoke_{i}" for i in range(len(tools)))
    rules = [rf"{prefix.upper()}_GAP: /\n{{1,2}}/", f"{prefix}_invoke: {invokes}"]
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts = [tag("<", f'invoke name="{tool.name}">')]
        for key_index, (key, prop) in enumerate(properties.items()):
            parameter, value = (
                f"{prefix}_parameter_{index}_{key_index}",
                f"{prefix}_value_{index}_{key_index}",
            )
            parts.append(parameter if key in required else f"{parameter}?")
            values, value_rules = _marked_value(
                value,
                prop,
                defs,
                closer=("</", namespace, "parameter>"),
                forbidden=(f"<{namespace}parameter",),
                special_token=special_token,
                compact=compact,
            )
            marks = {
                flag: tag("<", f'parameter name="{key}" string="{str(flag).lower()}">')
                for flag in (True, False)
            }
            written = (f"{marks[is_text]} {name}" for is_text, name in values)
            rules += [f"{parameter}: {gap} ({' | '.join(written)})", *value_rules]
        parts.append(f"{gap} {tag('</', 'invoke>')}")
        rules.append(f"{prefix}_invoke_{index}: " + " ".join(parts))
    openers: list[tuple[str, str, str]] = []
    for block in blocks:
        begin, end = tag("<", f"{block}>"), tag("</", f"{block}>")
        rules.append(f"{prefix}_{block}: {begin} ({gap} {prefix}_invoke)+ {gap} {end}")
        rules.append(f"{prefix}_{block}_one: {begin} {gap} {prefix}_invoke {gap} {end}")
        openers.append((f"<{namespace}{block}>", f"{prefix}_{block}_one", f"{prefix}_{block}"))
    return CallSyntax(
        "(" + " | ".join(one for _, one, _ in openers) + ")",
        "(" + " | ".join(many for _, _, many in openers) + ")",
        tuple(rules),
        tuple(openers),
    )


_XTML_OPEN, _XTML_SEP, _XTML_CLOSE = "<|open|>", "<|sep|>", "<|close|>"
_XTML_JSON_TYPES = '("number" | "integer" | "boolean" | "array" | "object" | "null")'


def xtml(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax:
    """Kimi-K3's `tools` channel, `<|open|>tools<|sep|>` calls `<|close|>tools<|sep|>`, each
    `<|open|>call tool="NAME" index="N"<|sep|>` then per argument
    `<|open|>argument key="KEY" type="TYPE"<|sep|>VALUE<|close|>argument<|sep|>` (`type="string"`:
    a string-only value as raw text; another JSON type's name: any other value as JSON), or all
    arguments in one `<|open|>json type="object"<|sep|>{...}<|close|>json<|sep|>`, then
    `<|close|>call<|sep|>`. Attribute values escape `&` and `"`."""

    def tag(*pieces: str) -> str:
        return marker_row(pieces, special_token)

    def closing(name: str) -> str:
        return tag(_XTML_CLOSE, name, _XTML_SEP)

    type_end = tag('"', _XTML_SEP)  # after a JSON type's name
    rules = ["xtml_call: " + " | ".join(f"xtml_call_{i}" for i in range(len(tools)))]
    for index, tool in enumerate(tools):
        properties, required, defs = tool_arguments(tool)
        parts: list[str] = []
        for key_index, (key, prop) in enumerate(properties.items()):
            argument, value = f"xtml_argument_{index}_{key_index}", f"xtml_value_{index}_{key_index}"
            parts.append(argument if key in required else f"{argument}?")
            values, value_rules = _marked_value(
                value,
                prop,
                defs,
                closer=(_XTML_CLOSE, "argument", _XTML_SEP),
                forbidden=(_XTML_OPEN,),
                special_token=special_token,
                compact=compact,
            )
            head = f'argument key="{_attribute(key)}" type="'
            as_text = tag(_XTML_OPEN, f'{head}string"', _XTML_SEP)
            as_json = f"{tag(_XTML_OPEN, head)} {_XTML_JSON_TYPES} {type_end}"
            written = (f"{as_text if is_text else as_json} {name}" for is_text, name in values)
            rules += [f"{argument}: ({' | '.join(written)})", *value_rules]
        whole = f"xtml_json_{index}"
        json_opening = tag(_XTML_OPEN, 'json type="object"', _XTML_SEP)
        rules.append(f"{whole}: {json_opening} {whole}_arguments {closing('json')}")
        rules.append(arguments_rule(f"{whole}_arguments", tool, compact=compact))
        call = tag(_XTML_OPEN, f'call tool="{_attribute(tool.name)}"')
        body = f"({' '.join(parts)} | {whole})" if parts else f"{whole}?"
        index_attribute = '(" index=\\"" /[0-9]{1,3}/ "\\"")?'
        rules.append(f"xtml_call_{index}: {call} {index_attribute} {tag(_XTML_SEP)} {body} {closing('call')}")
    tools_begin = tag(_XTML_OPEN, "tools", _XTML_SEP)
    rules.append(f"xtml_tools: {tools_begin} xtml_call+ {closing('tools')}")
    rules.append(f"xtml_tools_one: {tools_begin} xtml_call {closing('tools')}")
    return CallSyntax(
        "xtml_tools_one",
        "xtml_tools",
        tuple(rules),
        ((f"{_XTML_OPEN}tools{_XTML_SEP}", "xtml_tools_one", "xtml_tools"),),
    )


def _attribute(value: str) -> str:
    """`value` inside an XTML attribute's double quotes (the parser unescapes these two)."""
    return value.replace("&", "&amp;").replace('"', "&quot;")
