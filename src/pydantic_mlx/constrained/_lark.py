"""The pieces every call grammar is built from (llguidance's Lark dialect, as text).

A format's call grammar (`CallSyntax`) is built by that format's builder (`_json_calls.py`,
`_xml_calls.py`) from these: markers (special tokens by id, or text), JSON arguments checked by
the tool's schema (`%json`), and schema-typed bare values for the formats that write them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "JSON_WHITESPACE",
    "STANDS_ALONE",
    "Arguments",
    "CallSyntax",
    "SpecialToken",
    "ToolSchema",
    "arguments_rule",
    "call_object_schema",
    "closed_text_rules",
    "is_plain_string",
    "json_options",
    "marker",
    "marker_row",
    "raw_text_rules",
    "resolve_ref",
    "string_alternative",
    "string_choices",
    "text_value_rule",
    "tool_arguments",
    "with_local_refs_as_defs",
]

JSON_WHITESPACE = r"(?:\n[ \t]{0,24}|[ ])"
"""One gap between JSON tokens: a single space, or a newline and up to 24 spaces of indent."""

STANDS_ALONE = r"(?:^|[\n.:!?>;])[ \t]{0,16}"
"""Where an untagged call counts (the parsers' rule): at a line start or after sentence
punctuation, and not inside code or a sentence."""

SpecialToken = Callable[[str], int | None]
"""The id of the special token spelled `text` in the tokenizer, or None (then it is plain text)."""


@dataclass(frozen=True)
class ToolSchema:
    """A declared tool: its name and the JSON schema of its arguments."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class CallSyntax:
    """One format's calls as Lark expressions over `rules`."""

    one: str
    """An answer that is exactly one call."""
    many: str
    """An answer that is one or more calls (joined as the format joins them)."""
    rules: tuple[str, ...]
    openers: tuple[tuple[str, str, str], ...]
    """(marker, one call, one or more calls): the region a marker opens, from the marker on (a lazy
    trigger), when parallel calls are off and on (one section of calls, say)."""
    json_keys: tuple[str, ...] = ("arguments",)
    """The key(s) of the arguments in this format's untagged JSON call object."""
    untagged: tuple[tuple[str, str, str], ...] = ()
    """(regex, one call, one or more calls): calls opened without a marker (a bare pythonic list);
    the regex's `region` group is where the region starts."""
    at_start: tuple[tuple[str, str, str], ...] = ()
    """(regex, one call, one or more calls): calls opened without a marker that count only where
    the answer begins, after optional spaces (the parsers' `at_start` openers: gpt-oss's bare
    `to=functions.`); the regex matches the region's first bytes. `one` and `many` already
    accept these at an answer's start."""


class Arguments(NamedTuple):
    """A tool's top-level arguments, for the formats that write each one on its own."""

    properties: Mapping[str, Any]
    required: frozenset[str]
    defs: Mapping[str, Any]


def tool_arguments(tool: ToolSchema) -> Arguments:
    """The properties, required names and `$defs` of `tool`'s arguments schema (a schema that is
    a `$ref` to one of its definitions, as pydantic writes a recursive model, resolved)."""
    parameters = tool.parameters
    defs: Mapping[str, Any] = parameters.get("$defs") or parameters.get("definitions") or {}
    root = resolve_ref(parameters, defs)
    declared: Mapping[str, Any] = root.get("properties") or {}
    # A boolean schema is valid JSON Schema: `true` allows any value, `false` none (never written).
    properties = {
        key: prop if isinstance(prop, Mapping) else {}
        for key, prop in declared.items()  # pyright: ignore[reportUnknownVariableType]
        if prop is not False
    }
    return Arguments(properties, frozenset(root.get("required") or ()), defs)


def with_local_refs_as_defs(tool: ToolSchema) -> ToolSchema:
    """`tool` with every local `$ref` that is not to one of its `$defs` (`#`, or a path such as
    `#/properties/home`, as zod-to-json-schema writes a reused schema) pointing at a copy of its
    target in `$defs` instead.

    A tool's schema is embedded in larger ones (the call object, one value's schema), where a
    path from its root no longer resolves (llguidance then refuses to compile, or `#` becomes
    the call object); only `$defs` travel with it.

    A root that is only a `$ref` to one of its definitions (pydantic writes a recursive model as
    `{"$defs": {"Node": ...}, "$ref": "#/$defs/Node"}`) becomes that definition, `$defs` kept:
    embedded, the root's reference would point at the larger schema's definitions instead."""
    parameters = _root_ref_resolved(tool.parameters)
    if parameters is not tool.parameters:
        tool = ToolSchema(tool.name, parameters)
    table = "definitions" if "definitions" in parameters and "$defs" not in parameters else "$defs"
    added: dict[str, Any] = {}

    def target(pointer: str) -> Any:
        node: Any = parameters
        for part in pointer[2:].split("/") if pointer != "#" else ():
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping):
                node = node.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):  # pyright: ignore[reportUnknownArgumentType]
                node = node[int(key)]  # pyright: ignore[reportUnknownVariableType]
            else:
                return True  # a dangling reference: any value, as a lenient schema
        return node  # pyright: ignore[reportUnknownVariableType]

    def rewrite(node: Any) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():  # pyright: ignore[reportUnknownVariableType]
                if key == "$ref" and isinstance(value, str) and _is_path_ref(value):
                    name = "ref" + "".join(c if c.isalnum() else "_" for c in value[1:])
                    if name not in added:
                        added[name] = True  # a placeholder while its own references are rewritten
                        found = target(value)
                        if isinstance(found, Mapping):
                            found = {k: v for k, v in found.items() if k not in ("$defs", "definitions")}  # pyright: ignore[reportUnknownVariableType]
                        added[name] = rewrite(found)
                    value = f"#/{table}/{name}"
                out[str(key)] = value if key == "$ref" else rewrite(value)  # pyright: ignore[reportUnknownArgumentType]
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]  # pyright: ignore[reportUnknownVariableType]
        return node

    rewritten = rewrite(parameters)
    if not added:
        return tool
    rewritten[table] = {**(rewritten.get(table) or {}), **added}
    return ToolSchema(tool.name, rewritten)


def _root_ref_resolved(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """`schema` with a root `$ref` to one of its definitions replaced by that definition (the
    root's other keywords kept beside it); `schema` itself when it has none."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or _is_path_ref(ref) or not ref.startswith("#/"):
        return schema
    table = "$defs" if ref.startswith("#/$defs/") else "definitions"
    defs: Any = schema.get(table)
    target: Any = defs.get(ref.rsplit("/", 1)[1]) if isinstance(defs, Mapping) else None
    if not isinstance(target, Mapping):
        return schema
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    if any(k in target for k in siblings if k not in (table, "title", "description")):
        # Keywords on both sides must both hold: keep the reference, next to the definitions.
        return {**siblings, "allOf": [*siblings.get("allOf", []), {"$ref": ref}]}
    return {**target, **siblings}


def _is_path_ref(ref: str) -> bool:
    """A local reference that is not to one definition (`#/$defs/NAME`)."""
    if not ref.startswith("#"):
        return False
    for root in ("#/$defs/", "#/definitions/"):
        if ref.startswith(root) and "/" not in ref[len(root) :]:
            return False
    return True


def marker(text: str, special_token: SpecialToken) -> str:
    """A marker in a rule: the special token (by id) when the tokenizer has it, else the text.

    By id because llguidance's `<name>` syntax cannot spell every token (`[TOOL_CALLS]`)."""
    token = special_token(text)
    return f"<[{token}]>" if token is not None else json.dumps(text)


def marker_row(pieces: Sequence[str], special_token: SpecialToken) -> str:
    """`pieces` in a row (`<`, `｜DSML｜`, `invoke name="f">`): each special token by id, and the text
    between them as one literal. One literal, because llguidance's lexer is greedy: a literal
    `<` followed by a literal `｜DSML｜` would never end where `<｜tool▁calls▁begin｜>` may go on."""
    parts: list[str] = []
    text = ""
    for piece in pieces:
        token = special_token(piece)
        if token is None:
            text += piece
            continue
        if text:
            parts.append(json.dumps(text))
        parts.append(f"<[{token}]>")
        text = ""
    if text:
        parts.append(json.dumps(text))
    return " ".join(parts)


def json_options(schema: Mapping[str, Any], *, compact: bool) -> str:
    """`schema` with llguidance's JSON options: `compact` is `{"a": 1, "b": [2]}` exactly (as
    `json.dumps` and chat templates write it); otherwise `JSON_WHITESPACE` in every gap."""
    layout: dict[str, Any] = (
        {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        if compact
        else {"whitespace_flexible": True, "whitespace_pattern": JSON_WHITESPACE}
    )
    # `lenient`: keywords llguidance does not implement (formats, ...) are ignored, not fatal.
    return json.dumps({**schema, "x-guidance": {**layout, "lenient": True}})


def arguments_rule(rule: str, tool: ToolSchema, *, compact: bool) -> str:
    """`rule`: one tool's arguments, a JSON object valid against its schema."""
    return f"{rule}: %json {json_options(_object_schema(tool.parameters), compact=compact)}"


def _object_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    # Arguments are always an object, even for a schema that forgot to say so.
    return {"type": "object", **parameters} if "type" not in parameters else dict(parameters)


def call_object_schema(
    tools: Sequence[ToolSchema],
    *,
    keys: Sequence[str] = ("arguments",),
    extra: Mapping[str, Any] | None = None,
    name_key: str = "name",
    lead: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`{"name": <tool>, <key>: <its schema>}` for each tool and each arguments key, name first
    (as templates write it); `extra` are optional properties after them (Mistral's `id`), `lead`
    required ones before them (Cohere's `tool_call_id`); `name_key` names the name's key."""

    def objects(name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "type": "object",
                "properties": {**(lead or {}), name_key: {"const": name}, key: arguments, **(extra or {})},
                "required": [*(lead or {}), name_key, key],
                "additionalProperties": False,
            }
            for key in keys
        ]

    return _any_call(tools, objects)


def keyed_call_schema(tools: Sequence[ToolSchema]) -> dict[str, Any]:
    """`{<tool's name>: <its arguments>}` for each tool, the object's only key (Apertus's calls)."""

    def objects(name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "type": "object",
                "properties": {name: arguments},
                "required": [name],
                "additionalProperties": False,
            }
        ]

    return _any_call(tools, objects)


def _any_call(
    tools: Sequence[ToolSchema], objects: Callable[[str, dict[str, Any]], list[dict[str, Any]]]
) -> dict[str, Any]:
    """Any of the call `objects` of each tool (given its name and arguments' schema), the
    tools' `$defs` hoisted to the root under distinct names."""
    defs: dict[str, Any] = {}
    variants = [
        variant
        for index, tool in enumerate(tools)
        for variant in objects(tool.name, _hoist_defs(_object_schema(tool.parameters), f"t{index}_", defs))
    ]
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


def text_value_rule(
    rule: str,
    prop: Mapping[str, Any],
    defs: Mapping[str, Any],
    *,
    opener: str,
    closer: str,
    special_token: SpecialToken,
    compact: bool,
) -> str:
    """One argument value of a format that writes values bare, followed by its `closer`.

    A string-only value is raw text up to the first `closer` and never holds `opener` (as the
    parsers read it back); an `enum` is one of its values; `minLength`/`maxLength` bound it. Any
    other value is JSON valid against its schema, which the parsers read back by schema; a
    string in a union may be raw text too (`string_alternative`), as templates write it.
    """
    prop = resolve_ref(prop, defs)
    close = marker(closer, special_token)

    def text_rules(name: str, text: Mapping[str, Any]) -> list[str]:
        enum = string_choices(text)
        if enum:
            choices = " | ".join(json.dumps(v) for v in enum)
            return [f"{name}: ({choices}) {close}"]
        low, high = text.get("minLength"), text.get("maxLength")
        low = low if isinstance(low, int) else 0
        high = high if isinstance(high, int) else None
        return raw_text_rules(name, low, high, opener=opener, closer=closer, special_token=special_token)

    if is_plain_string(prop):
        return "\n".join(text_rules(rule, prop))
    schema = dict(prop)
    if defs:
        schema["$defs"] = dict(defs)
    value = f"{rule}_json: %json {json_options(schema, compact=compact)}"
    text = string_alternative(prop, defs)
    if text is None:
        return f"{rule}: {rule}_json {close}\n{value}"
    rules = [f"{rule}: {rule}_text | {rule}_json {close}", *text_rules(f"{rule}_text", text), value]
    return "\n".join(rules)


def raw_text_rules(
    rule: str,
    low: int,
    high: int | None,
    *,
    opener: str,
    closer: str,
    special_token: SpecialToken,
    prefix: str = "",
) -> list[str]:
    """`rule`: `prefix`, then raw text of `low` to `high` characters that spells neither `opener`
    nor `closer`, then `closer` (where the parsers end the value)."""
    length = f"{{{low},{'' if high is None else high}}}"
    forbidden = "|".join(_regex_literal(m) for m in dict.fromkeys((opener, closer)))
    terminal = rule.upper()
    if special_token(closer) is not None:
        # The closer is one token, never text: the value is text that does not spell it either.
        value = f"/(?s:.{length})/ & ~/(?s:.*(?:{forbidden}).*)/"
        return [f"{rule}: {prefix} {terminal} {marker(closer, special_token)}", f"{terminal}: {value}"]
    # The closer is text: one lexeme, ending at the closer's first occurrence.
    value = f"/(?s:.{length}){_regex_literal(closer)}/ & ~/(?s:.*(?:{forbidden}).+)/"
    if opener != closer:
        value += f" & ~/(?s:.*{_regex_literal(opener)}.*)/"
    return [f"{rule}: {prefix} {terminal}", f"{terminal}: {value}"]


def closed_text_rules(
    rule: str,
    low: int,
    high: int | None,
    *,
    closer: Sequence[str],
    forbidden: Sequence[str],
    special_token: SpecialToken,
) -> list[str]:
    """`rule`: raw text of `low` to `high` characters, then `closer`, a row of pieces each a special
    token or text (`</`, `｜DSML｜`, `parameter>`): the parser ends the value at the closer's first
    occurrence. The text never spells `forbidden` (what the parser refuses inside a value).

    When a piece of the closer is a special token, the text before it is one greedy lexeme that
    ends where that token comes (it never spells the token, so the parser's first closer is the
    grammar's); otherwise the text and the whole closer are one lexeme, ending at its first
    occurrence."""
    length = f"{{{low},{'' if high is None else high}}}"
    terminal = rule.upper()
    split = next((i for i, piece in enumerate(closer) if special_token(piece) is not None), None)
    if split is None:
        text = _regex_literal("".join(closer))
        value = f"/(?s:.{length}){text}/ & ~/(?s:.*{text}.+)/"
        value += "".join(f" & ~/(?s:.*{_regex_literal(f)}.*)/" for f in forbidden)
        return [f"{rule}: {terminal}", f"{terminal}: {value}"]
    spelled = [p for p in closer[split:] if special_token(p) is not None] + list(forbidden)
    never = "|".join(_regex_literal(s) for s in dict.fromkeys(spelled))
    value = f"/(?s:.{length}){_regex_literal(''.join(closer[:split]))}/ & ~/(?s:.*(?:{never}).*)/"
    return [f"{rule}: {terminal} {marker_row(closer[split:], special_token)}", f"{terminal}: {value}"]


def _regex_literal(text: str) -> str:
    """`text` as a regex inside a Lark `/.../` (escaped, with `/` escaped too)."""
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}/-" else c for c in text)


def resolve_ref(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property that only refers to a definition (pydantic's enums and models), resolved."""
    ref = prop.get("$ref")
    if ref is None and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        ref = prop["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = defs.get(ref.rsplit("/", 1)[1])
        if isinstance(target, Mapping):
            return target  # pyright: ignore[reportUnknownVariableType]
    return prop


_SIMPLE_TYPES = frozenset({"null", "boolean", "integer", "number"})
_NARROWING = ("enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


_UNION_ONLY = frozenset({"anyOf", "oneOf", "title", "description", "default"})


def _flat_union(options: list[Any], defs: Mapping[str, Any], depth: int = 0) -> list[Any]:
    """A union's branches, with a branch that is itself only a union (`(str | None) | None`, as
    pydantic nests optional aliases) replaced by its own branches."""
    flat: list[Any] = []
    for option in options:
        branch = resolve_ref(option, defs) if isinstance(option, Mapping) else option
        nested = branch.get("anyOf") or branch.get("oneOf") if isinstance(branch, Mapping) else None
        if isinstance(nested, list) and depth < 8 and set(branch) <= _UNION_ONLY:
            flat += _flat_union(nested, defs, depth + 1)
        else:
            flat.append(option)
    return flat


def string_alternative(
    prop: Mapping[str, Any], defs: Mapping[str, Any], *, marked: bool = False
) -> Mapping[str, Any] | None:
    """The string branch of a union the parsers may read from bare text (`str | None`,
    `int | str`): one branch a plain string, every other a null, boolean or unbounded number.

    Templates write a string value bare whatever its schema, and the parsers read bare text that is
    not JSON of another allowed type as the string; any text they read as such JSON (`null`, `5`)
    is valid too, as nothing narrows those branches. Where the format `marked` the text as a
    string (DSML, XTML), the parsers keep it a string, so the other branches may be anything.
    None for any other schema."""
    options: Any = prop.get("anyOf") or prop.get("oneOf")
    kinds = prop.get("type")
    if isinstance(kinds, list) and not options and not any(k in prop for k in _NARROWING):
        options = [{"type": k} for k in kinds]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(options, list) or len(prop.get("allOf") or ()) > 0:
        return None
    strings: list[Mapping[str, Any]] = []
    for option in _flat_union(options, defs):
        if not isinstance(option, Mapping):
            return None
        branch = resolve_ref(option, defs)  # pyright: ignore[reportUnknownArgumentType]
        if is_plain_string(branch):
            strings.append(branch)
        elif not marked and (branch.get("type") not in _SIMPLE_TYPES or any(k in branch for k in _NARROWING)):
            return None
    return strings[0] if len(strings) == 1 else None


def string_choices(prop: Mapping[str, Any]) -> list[Any] | None:
    """The values a string schema allows, when it lists them: its `enum`, or its `const` (as
    pydantic writes `Literal["fixed"]`)."""
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        return enum  # pyright: ignore[reportUnknownVariableType]
    return [prop["const"]] if "const" in prop else None


def is_plain_string(prop: Mapping[str, Any]) -> bool:
    kind = prop.get("type")
    if kind == "string":
        return True
    choices = string_choices(prop)
    return kind is None and choices is not None and all(isinstance(v, str) for v in choices)
