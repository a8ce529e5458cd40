"""Grammars (llguidance's Lark dialect) for one tool call in a model's own format, and for JSON output.

Pure text building: no MLX, no llguidance. A grammar describes one *region* of the output, from
its first byte: the call a trigger opened (`<tool_call>` ..., a ```json fence, a bare
`{"name": "tool"`), the calls a `tool_choice="required"` answer consists of, or the JSON of a
native-output answer.

A whole answer's JSON is compact (`{"a": 1, "b": [2]}`, as chat templates render calls); a
region the model opened itself keeps the layout it started (compact or pretty-printed) within
bounded whitespace (`JSON_WHITESPACE`). Whitespace is never unbounded: an untrained or
confused model would otherwise fill its token budget with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CALL_FORMATS",
    "JSON_WHITESPACE",
    "GrammarSet",
    "ToolSchema",
    "Trigger",
    "answer_grammars",
    "output_grammars",
    "tool_call_grammars",
]

JSON_WHITESPACE = r"(?:\n[ \t]{0,24}|[ ])"
"""One gap between JSON tokens: a single space, or a newline and up to 24 spaces of indent."""

_LEAD = r"/\n{0,2}/"
"""Whitespace allowed before a whole-answer grammar (after a reasoning block, say)."""

_OPTIONAL_WS = f"(?:{JSON_WHITESPACE})?"

IsSpecial = Callable[[str], bool]
"""Whether a marker is one special token of the tokenizer (then the grammar names the token)."""


@dataclass(frozen=True)
class ToolSchema:
    """A declared tool: its name and the JSON schema of its arguments."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class Trigger:
    """Free text that opens a constrained region: where `pattern` matches, `grammar` takes over,
    starting with the matched text itself (so the grammar's first lexemes accept it), or with
    its `region` group when it has one (text before that group is context, not region)."""

    pattern: re.Pattern[bytes]
    grammar: str


@dataclass(frozen=True)
class GrammarSet:
    """The grammars of one request.

    `answer` constrains the whole answer (after any reasoning block); otherwise the output is
    free and each of `triggers` constrains the region it opens, after which text is free again.
    `reasoning` is the (opener, closer) pair of the format's reasoning block, which stays free.
    """

    triggers: tuple[Trigger, ...] = ()
    answer: str | None = None
    reasoning: tuple[str, str] | None = None


CALL_FORMATS = ("auto", "hermes", "qwen3_coder")
"""Formats whose own call syntax has a grammar; the others get untagged-JSON triggers only."""


def tool_call_grammars(
    tool_format: str,
    tools: Sequence[ToolSchema],
    *,
    required: bool,
    parallel: bool = True,
    untagged_json: bool,
    reasoning: tuple[str, str] | None,
    is_special: IsSpecial,
) -> GrammarSet | None:
    """The grammars that make every tool call valid for `tools`, in `tool_format`.

    Lazy (`required=False`): the format's opener markers trigger a call in the format's syntax,
    and with `untagged_json` a ```json fence or a bare `{"name": "<declared tool>"` triggers a
    JSON call object (the shapes small models write instead of markers). `required=True`: the
    answer is one or more calls (exactly one unless `parallel`) in the format's syntax (a bare
    JSON call object for formats without a grammar that read untagged JSON), then the end of
    the answer. None when nothing can be constrained.
    """
    if not tools:
        return None
    if required:
        return answer_grammars(
            tool_format,
            tools,
            output_schema=None,
            parallel=parallel,
            untagged_json=untagged_json,
            reasoning=reasoning,
            is_special=is_special,
        )
    # A region the model opened follows its own JSON layout (compact or pretty-printed).
    syntax = _call_syntax(tool_format, tools, is_special, compact=False)
    triggers: list[Trigger] = []
    if syntax is not None:
        for marker, region in syntax.openers:
            grammar = "\n".join([f"start: {region}", *syntax.rules])
            triggers.append(Trigger(re.compile(re.escape(marker.encode())), grammar))
    if untagged_json:
        triggers.extend(_untagged_json_triggers(tools))
    return GrammarSet(triggers=tuple(triggers), reasoning=reasoning) if triggers else None


def answer_grammars(
    tool_format: str,
    tools: Sequence[ToolSchema],
    *,
    output_schema: Mapping[str, Any] | None,
    parallel: bool = True,
    untagged_json: bool,
    reasoning: tuple[str, str] | None,
    is_special: IsSpecial,
) -> GrammarSet | None:
    """The grammar of a whole answer: calls to `tools` (one, or several when `parallel`) in the
    format's syntax (a bare JSON call object for formats without a grammar that read untagged
    JSON), or one JSON value valid against `output_schema` (native output), then the end.

    The answer is written compactly (`{"a": 1, "b": [2]}`, as chat templates render calls).
    None when nothing can be constrained.
    """
    alternatives: list[str] = []
    rules: list[str] = []
    if tools:
        syntax = _call_syntax(tool_format, tools, is_special, compact=True)
        if syntax is not None:
            rules += [f"call: {syntax.rule}", *syntax.rules]
        elif untagged_json:
            rules += ["call: call_json", _call_json_rule(tools, compact=True)]
        if rules:
            alternatives.append('call ("\\n" call)*' if parallel else "call")
    if output_schema is not None:
        alternatives.append("answer")
        rules.append(f"answer: %json {_json_options(dict(output_schema), compact=True)}")
    if not alternatives:
        return None
    start = (
        f"start: {_LEAD} {alternatives[0]}"
        if len(alternatives) == 1
        else f"start: {_LEAD} ({' | '.join(alternatives)})"
    )
    return GrammarSet(answer="\n".join([start, *rules]), reasoning=reasoning)


def output_grammars(schema: Mapping[str, Any], *, reasoning: tuple[str, str] | None) -> GrammarSet:
    """The grammar of an answer that is one JSON value valid against `schema` (native output)."""
    found = answer_grammars(
        "auto", (), output_schema=schema, untagged_json=False, reasoning=reasoning, is_special=lambda _: False
    )
    assert found is not None
    return found


@dataclass(frozen=True)
class _CallSyntax:
    rule: str
    """One whole call, as a Lark expression."""
    rules: list[str]
    """The rules `rule` uses."""
    openers: tuple[tuple[str, str], ...]
    """(marker, expression): a region opened by the marker, from the marker on."""


def _call_syntax(
    tool_format: str, tools: Sequence[ToolSchema], is_special: IsSpecial, *, compact: bool
) -> _CallSyntax | None:
    opener = _marker("<tool_call>", is_special)
    closer = _marker("</tool_call>", is_special)
    json_body = '"\\n"? call_json "\\n"?'
    xml_body = '"\\n" function "\\n"'
    if tool_format == "hermes":
        rule = f"{opener} {json_body} {closer}"
        return _CallSyntax(rule, [_call_json_rule(tools, compact=compact)], (("<tool_call>", rule),))
    if tool_format in ("qwen3_coder", "auto"):
        # `auto` reads both bodies inside <tool_call>, so both are valid there.
        body = xml_body if tool_format == "qwen3_coder" else f"({json_body} | {xml_body})"
        rules = _xml_function_rules(tools, compact=compact)
        if tool_format == "auto":
            rules.append(_call_json_rule(tools, compact=compact))
        rule = f"{opener} {body} {closer}"
        # Models also drop the opening <tool_call> (the parser reads a bare <function=...>).
        return _CallSyntax(rule, rules, (("<tool_call>", rule), ("<function=", "function")))
    return None


def _call_json_rule(tools: Sequence[ToolSchema], *, compact: bool) -> str:
    return f"call_json: %json {_json_options(_call_object_schema(tools), compact=compact)}"


def _untagged_json_triggers(tools: Sequence[ToolSchema]) -> list[Trigger]:
    """A call object after a ```json fence (closed by the fence) or bare (ended by its `}`).

    Like llama.cpp's pattern triggers, they fire only once the object names a declared tool:
    JSON that is not a call (an answer, an example) stays free.
    """
    names = "|".join(re.escape(t.name) for t in sorted(tools, key=lambda t: -len(t.name)))
    head = rf'\{{{_OPTIONAL_WS}"name"{_OPTIONAL_WS}:{_OPTIONAL_WS}"(?:{names})"'
    fence = r"```(?:json)?[ \t]{0,4}\n[ \t]{0,8}"
    call_json = _call_json_rule(tools, compact=False)
    # A bare object counts as a call where it stands alone (the parser's rule): at a line start or
    # after sentence punctuation, and followed by a line end or the end of the output.
    alone = rb"(?:^|[\n.:!?>;])[ \t]{0,16}"
    return [
        Trigger(
            re.compile((fence + head).encode()),
            "\n".join(['start: FENCE call_json "\\n"? "```"', f"FENCE: /{fence}/", call_json]),
        ),
        Trigger(
            re.compile(alone + b"(?P<region>" + head.encode() + b")"),
            "\n".join(["start: call_json LINE_END?", r"LINE_END: /[ \t]{0,4}\n/", call_json]),
        ),
    ]


def _marker(text: str, is_special: IsSpecial) -> str:
    """A marker in a rule: the special token by name when the tokenizer has it, else the text."""
    return text if is_special(text) else json.dumps(text)


def _json_options(schema: dict[str, Any], *, compact: bool) -> str:
    """`schema` with llguidance's JSON options: `compact` is `{"a": 1, "b": [2]}` exactly (as
    `json.dumps` and chat templates write it); otherwise `JSON_WHITESPACE` in every gap."""
    layout: dict[str, Any] = (
        {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        if compact
        else {"whitespace_flexible": True, "whitespace_pattern": JSON_WHITESPACE}
    )
    # `lenient`: keywords llguidance does not implement (formats, ...) are ignored, not fatal.
    return json.dumps({**schema, "x-guidance": {**layout, "lenient": True}})


def _call_object_schema(tools: Sequence[ToolSchema]) -> dict[str, Any]:
    """`{"name": <tool>, "arguments": <its schema>}` for each tool, name first (as templates write it)."""
    defs: dict[str, Any] = {}
    variants: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        arguments = _hoist_defs(tool.parameters, f"t{index}_", defs)
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, "arguments": arguments},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def _hoist_defs(schema: Mapping[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its `$defs`, which move (renamed with `prefix`) into `defs`, and every local
    `$ref` to them rewritten: a tool's schema is nested inside the call object, where its own
    `#/$defs/...` references would no longer resolve."""
    local = schema.get("$defs") or schema.get("definitions") or {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():  # pyright: ignore[reportUnknownVariableType]
                if key == "$ref" and isinstance(value, str):
                    for root in ("#/$defs/", "#/definitions/"):
                        if value.startswith(root):
                            value = "#/$defs/" + prefix + value[len(root) :]
                    out[key] = value
                else:
                    out[str(key)] = rewrite(value)  # pyright: ignore[reportUnknownArgumentType]
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]  # pyright: ignore[reportUnknownVariableType]
        return node

    for name, definition in dict(local).items():
        defs[prefix + str(name)] = rewrite(definition)
    return {k: rewrite(v) for k, v in schema.items() if k not in ("$defs", "definitions")}


def _xml_function_rules(tools: Sequence[ToolSchema], *, compact: bool) -> list[str]:
    """Qwen3-Coder's `<function=NAME>` with one `<parameter=KEY>` block per argument.

    Parameters come in schema order, required ones always, optional ones may be left out. A
    string-only value is bare text up to its `</parameter>` (an `enum` is one of its values);
    any other value is JSON valid against its schema, which the parser reads back as JSON.
    """
    rules = ["function: " + " | ".join(f"function_{i}" for i in range(len(tools)))]
    for index, tool in enumerate(tools):
        properties: Mapping[str, Any] = tool.parameters.get("properties") or {}
        required: set[str] = set(tool.parameters.get("required") or ())
        defs = tool.parameters.get("$defs") or {}
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
    prop = _resolve(prop, defs)
    if _is_plain_string(prop):
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
    value = _json_options(schema, compact=compact)
    return f'{rule}: {rule}_json "\\n</parameter>\\n"\n{rule}_json: %json {value}'


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property that only refers to a definition (pydantic's enums and models), resolved."""
    ref = prop.get("$ref")
    if ref is None and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        ref = prop["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, Mapping):
            return target  # pyright: ignore[reportUnknownVariableType]
    return prop


def _is_plain_string(prop: Mapping[str, Any]) -> bool:
    kind = prop.get("type")
    if kind == "string":
        return True
    return (
        kind is None
        and isinstance(prop.get("enum"), list)
        and all(
            isinstance(v, str)
            for v in prop["enum"]  # pyright: ignore[reportUnknownVariableType]
        )
    )
