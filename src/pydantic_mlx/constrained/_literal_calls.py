"""Call grammars of the formats that write arguments in their own literal notation, not JSON.

Pythonic calls (`[get_weather(city='Paris', days=3)]`, Python literals) and Gemma 4's
(`call:get_weather{city:<|"|>Paris<|"|>,days:3}`) need the tool's JSON schema turned into a
grammar of that notation: `LiteralValues` does it, one rule per schema node (`$defs` once each,
so recursive models work). Numbers are JSON numbers in both notations, so they use llguidance's
`%json` (bounds included); strings, booleans, null, objects and arrays are spelled per notation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._lark import (
    STANDS_ALONE,
    CallSyntax,
    SpecialToken,
    ToolSchema,
    json_options,
    marker,
    raw_text_rules,
    tool_arguments,
)

__all__ = ["gemma4", "minicpm3", "olmo3", "pythonic"]


@dataclass(frozen=True)
class _Notation:
    """How one notation spells values (each a Lark expression)."""

    string: Callable[[str, int, int | None], list[str]]
    """Rules for `rule`: a string of `min` to `max` characters (max None: unbounded)."""
    string_literal: Callable[[str], str]
    """A given string (an `enum` or `const` value)."""
    true: str
    false: str
    null: str
    key: Callable[[str], str]
    """A given object key."""
    bare_key: str | None
    item_separator: str
    key_separator: str


class LiteralValues:
    """Rules spelling values valid against JSON schemas in one notation (`prefix` names them)."""

    def __init__(self, notation: _Notation, prefix: str) -> None:
        self.notation = notation
        self.prefix = prefix
        self.rules: list[str] = []
        self._count = 0
        self._defs: dict[str, str] = {}

    def _new(self) -> str:
        self._count += 1
        return f"{self.prefix}_{self._count}"

    def value(self, schema: Any, defs: Mapping[str, Any]) -> str:
        """A rule name (or expression) for one value valid against `schema`."""
        if schema is True or not isinstance(schema, Mapping) or not schema:
            return self._any()
        node: Mapping[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
            return self._definition(ref.rsplit("/", 1)[1], defs)
        for combinator in ("anyOf", "oneOf"):
            options = node.get(combinator)
            if isinstance(options, list) and options:
                return self._rule(" | ".join(self.value(o, defs) for o in options))  # pyright: ignore[reportUnknownVariableType]
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:  # pyright: ignore[reportUnknownArgumentType]
            return self.value(all_of[0], defs)
        if "const" in node:
            return self.literal(node["const"])
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return self._rule(" | ".join(self.literal(v) for v in enum))  # pyright: ignore[reportUnknownVariableType]
        kind = node.get("type")
        if isinstance(kind, list):
            return self._rule(" | ".join(self.value({**node, "type": k}, defs) for k in kind))  # pyright: ignore[reportUnknownVariableType]
        return self._typed(kind, node, defs)

    def _typed(self, kind: Any, node: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
        notation = self.notation
        if kind == "string":
            rule = self._new()
            low, high = node.get("minLength"), node.get("maxLength")
            self.rules += notation.string(
                rule, low if isinstance(low, int) else 0, high if isinstance(high, int) else None
            )
            return rule
        if kind in ("integer", "number"):
            keys = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
            number = {k: node[k] for k in keys if k in node}
            return self._rule(f"%json {json_options(number, compact=True)}")
        if kind == "boolean":
            return self._rule(f"{notation.true} | {notation.false}")
        if kind == "null":
            return notation.null
        if kind == "array" or (kind is None and "items" in node):
            return self._array(node, defs)
        if kind == "object" or (kind is None and "properties" in node):
            properties: Mapping[str, Any] = node.get("properties") or {}
            if properties:
                required: set[str] = set(node.get("required") or ())
                members = [
                    (notation.key(key), self.value(prop, defs), key in required)
                    for key, prop in properties.items()
                ]
                return self.members("{", members, notation.key_separator, "}")
            extra = node.get("additionalProperties", True)
            if extra is False:
                return self._rule('"{" "}"')
            pair = f"{self._any_key()} {notation.key_separator} {self.value(extra, defs)}"
            return self._rule(f'"{{" ({pair} ({notation.item_separator} {pair})*)? "}}"')
        return self._any()

    def members(
        self, opener: str, members: list[tuple[str, str, bool]], key_separator: str, closer: str
    ) -> str:
        """`opener` members `closer`: each member `key key_separator value` in the given order,
        required ones always and optional ones maybe, separated by the item separator."""
        name = self._new()
        sep = self.notation.item_separator
        count = len(members)
        self.rules += [f"{name}_f{count}: ", f"{name}_a{count}: "]
        for index in reversed(range(count)):
            key, value, required = members[index]
            member = f"{key} {key_separator} {value}"
            after = f"{name}_a{index + 1}"
            if required:
                self.rules.append(f"{name}_f{index}: {member} {after}")
                self.rules.append(f"{name}_a{index}: {sep} {member} {after}")
            else:
                self.rules.append(f"{name}_f{index}: {member} {after} | {name}_f{index + 1}")
                self.rules.append(f"{name}_a{index}: ({sep} {member})? {after}")
        self.rules.append(f"{name}: {json.dumps(opener)} {name}_f0 {json.dumps(closer)}")
        return name

    def _array(self, node: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
        item = self.value(node.get("items", True), defs)
        low, high = node.get("minItems"), node.get("maxItems")
        low = low if isinstance(low, int) else 0
        high = high if isinstance(high, int) else None
        sep = self.notation.item_separator
        if high == 0:
            return self._rule('"[" "]"')
        rest = f"{{{max(low - 1, 0)},{'' if high is None else high - 1}}}"
        body = f"{item} ({sep} {item}){rest}"
        return self._rule(f'"[" {body} "]"' if low > 0 else f'"[" ({body})? "]"')

    def literal(self, value: Any) -> str:
        """A constant value, spelled in this notation."""
        notation = self.notation
        if value is None:
            return notation.null
        if value is True:
            return notation.true
        if value is False:
            return notation.false
        if isinstance(value, str):
            return notation.string_literal(value)
        if isinstance(value, int | float):
            return json.dumps(json.dumps(value))
        if isinstance(value, list):
            items = f" {notation.item_separator} ".join(self.literal(v) for v in value)  # pyright: ignore[reportUnknownVariableType]
            return f'"[" {items} "]"'
        if isinstance(value, Mapping):
            pairs = (
                f"{notation.key(str(k))} {notation.key_separator} {self.literal(v)}"
                for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
            )
            return f'"{{" {f" {notation.item_separator} ".join(pairs)} "}}"'
        raise TypeError(f"not a JSON value: {value!r}")

    def _definition(self, name: str, defs: Mapping[str, Any]) -> str:
        found = self._defs.get(name)
        if found is None:
            found = self._defs[name] = self._new()
            self.rules.append(f"{found}: {self.value(defs.get(name, True), defs)}")
        return found

    def _any(self) -> str:
        """Any JSON value (a schema that says nothing), bounded in depth by nothing but the schema."""
        name = f"{self.prefix}_any"
        if name not in self._defs:
            self._defs[name] = name
            string = self._new()
            self.rules += self.notation.string(string, 0, None)
            key = self._any_key()
            number = self._rule(f"%json {json_options({'type': 'number'}, compact=True)}")
            notation = self.notation
            sep, key_sep = notation.item_separator, notation.key_separator
            self.rules += [
                f"{name}: {string} | {number} | {notation.true} | {notation.false} | {notation.null}"
                f' | "[" ({name} ({sep} {name})*)? "]"'
                f' | "{{" ({key} {key_sep} {name} ({sep} {key} {key_sep} {name})*)? "}}"'
            ]
        return name

    def _any_key(self) -> str:
        """Any object key (a mapping's, not a declared property)."""
        name = f"{self.prefix}_key"
        if name not in self._defs:
            self._defs[name] = name
            string = self._new()
            self.rules += self.notation.string(string, 0, None)
            bare = self.notation.bare_key
            self.rules.append(f"{name}: {string}" + (f" | {bare}" if bare else ""))
        return name

    def _rule(self, body: str) -> str:
        name = self._new()
        self.rules.append(f"{name}: {body}")
        return name


# --- pythonic ---------------------------------------------------------------------------------------

_PY_ESCAPE = r"""\\[\\'"nrt]|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}"""
_PY_CHAR = {q: rf"(?:[^{q}\\\n\r\x00]|{_PY_ESCAPE})" for q in "'\""}
"""One character of a Python string literal in each quote (an escape is one character; a line
break or NUL cannot be written raw)."""


def _python_string(rule: str, low: int, high: int | None) -> list[str]:
    # Each escape counts as the one character it stands for, so lengths are exact.
    count = f"{{{low},{'' if high is None else high}}}"
    quoted = "|".join(f"{quote}{char}{count}{quote}" for quote, char in _PY_CHAR.items())
    return [f"{rule}: /(?:{quoted})/"]


def _python_string_literal(value: str) -> str:
    return f"({json.dumps(repr(value))} | {json.dumps(json.dumps(value, ensure_ascii=False))})"


def _pythonic_notation(compact: bool) -> _Notation:
    return _Notation(
        string=_python_string,
        string_literal=_python_string_literal,
        true='"True"',
        false='"False"',
        null='"None"',
        key=_python_string_literal,
        bare_key=None,
        item_separator='", "' if compact else '"," " "?',
        key_separator='": "' if compact else '":" " "?',
    )


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pythonic(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax | None:
    """`[NAME(KEY=VALUE, ...), ...]` with Python literal values, bare or in Llama 4's
    `<|python_start|>`…`<|python_end|>` or LFM2's `<|tool_call_start|>`…`<|tool_call_end|>`
    (Llama 3.2 writes it after `<|python_tag|>` too). Strings take either quote. A tool whose
    parameter names are not identifiers cannot be called in this notation and is left out."""
    notation = _pythonic_notation(compact)
    values = LiteralValues(notation, "py")
    calls, declared = _keyword_calls(tools, values, compact=compact)
    if not calls:
        return None
    names = "|".join(re.escape(n) for n in sorted(declared, key=len, reverse=True))
    sep = notation.item_separator
    start, end = marker("<|python_start|>", special_token), marker("<|python_end|>", special_token)
    lfm_start, lfm_end = (
        marker("<|tool_call_start|>", special_token),
        marker("<|tool_call_end|>", special_token),
    )
    tag = marker("<|python_tag|>", special_token)
    rules = (
        "py_call: " + " | ".join(calls),
        f'py_list: "[" py_call ({sep} py_call)* "]"',
        'py_list_one: "[" py_call "]"',
        *values.rules,
    )

    def wrapped(body: str) -> str:
        return f"({start} {body} {end} | {lfm_start} {body} {lfm_end} | {body})"

    return CallSyntax(
        wrapped("py_list_one"),
        wrapped("py_list"),
        rules,
        (
            ("<|python_start|>", f"{start} py_list_one {end}", f"{start} py_list {end}"),
            ("<|tool_call_start|>", f"{lfm_start} py_list_one {lfm_end}", f"{lfm_start} py_list {lfm_end}"),
            ("<|python_tag|>", f"{tag} py_list_one", f"{tag} py_list"),
        ),
        json_keys=("parameters", "arguments"),
        # Llama 3.2 writes the list bare; it counts where it stands alone and names a declared tool.
        untagged=((rf"{STANDS_ALONE}(?P<region>\[(?:{names})\()", "py_list_one", "py_list"),),
    )


def _keyword_calls(
    tools: Sequence[ToolSchema], values: LiteralValues, *, compact: bool
) -> tuple[list[str], list[str]]:
    """One `NAME(KEY=VALUE, ...)` rule per tool, values in `values`' notation, and the tools'
    names. A tool whose parameter names are not identifiers cannot be called so: left out."""
    assign = '"="' if compact else '" "? "=" " "?'
    declared: list[str] = []
    calls: list[str] = []
    for tool in tools:
        properties, required, defs = tool_arguments(tool)
        if not _IDENTIFIER.fullmatch(tool.name.replace(".", "_")) or not all(
            _IDENTIFIER.fullmatch(k) for k in properties
        ):
            continue
        members = [
            (json.dumps(key), values.value(prop, defs), key in required) for key, prop in properties.items()
        ]
        calls.append(values.members(f"{tool.name}(", members, assign, ")"))
        declared.append(tool.name)
    return calls, declared


def olmo3(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax | None:
    """OLMo 3: `<function_calls>\\nNAME(KEY=VALUE, ...)\\n...\\n</function_calls>`, one call a
    line, strings quoted as in Python and the rest as the template writes it: `null`, `true`,
    `false` and JSON."""
    return _call_lines(
        tools, special_token, "olmo", ("<function_calls>", "</function_calls>"), ("", ""), compact=compact
    )


def minicpm3(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax | None:
    """MiniCPM3: `<|tool_call_start|>\\n```python\\n`, one `NAME(KEY=VALUE, ...)` line per call,
    then `\\n```\\n<|tool_call_end|>`; values as for `olmo3` (the template's `tojson`)."""
    tags = ("<|tool_call_start|>", "<|tool_call_end|>")
    fence = ("```python\\n", "\\n```")
    # The template writes `k=v,k2=v2` (no space) but JSON values with `, ` inside: either.
    return _call_lines(tools, special_token, "minicpm3", tags, fence, compact=compact, comma='"," " "?')


def _call_lines(
    tools: Sequence[ToolSchema],
    special_token: SpecialToken,
    prefix: str,
    tags: tuple[str, str],
    fence: tuple[str, str],
    *,
    compact: bool,
    comma: str = '", "',
) -> CallSyntax | None:
    """Python-style calls one a line between `tags` (each on its own line), inside `fence`'s
    opening and closing text where the template writes one; `comma` separates arguments and
    items in the template's own (compact) layout."""
    notation = dataclasses.replace(_pythonic_notation(compact), true='"true"', false='"false"', null='"null"')
    if compact:
        notation = dataclasses.replace(notation, item_separator=comma)
    values = LiteralValues(notation, prefix)
    calls, _ = _keyword_calls(tools, values, compact=compact)
    if not calls:
        return None
    opener, closer = marker(tags[0], special_token), marker(tags[1], special_token)
    head, tail = (f'"\\n{fence[0]}"', f'"{fence[1]}\\n"')
    rules = (
        f"{prefix}_call: " + " | ".join(calls),
        f"{prefix}_one: {opener} {head} {prefix}_call {tail} {closer}",
        f'{prefix}_calls: {opener} {head} {prefix}_call ("\\n" {prefix}_call)* {tail} {closer}',
        *values.rules,
    )
    return CallSyntax(
        f"{prefix}_one", f"{prefix}_calls", rules, ((tags[0], f"{prefix}_one", f"{prefix}_calls"),)
    )


# --- gemma4 -------------------------------------------------------------------------------------------

_GEMMA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GEMMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def gemma4(tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool) -> CallSyntax | None:
    """`<|tool_call>call:NAME{key:VALUE,...}<tool_call|>` per call, strings between `<|"|>`
    tokens. Where the answer begins, the first call may leave out `<|tool_call>`
    (`call:NAME{...}<tool_call|>`, as Gemma 4 sometimes does); that bare call counts once it
    names a declared tool and opens its `{`."""
    return _gemma_calls(tools, special_token, _GEMMA4, bare_at_start=True)


def function_gemma(
    tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool
) -> CallSyntax | None:
    """FunctionGemma: `<start_function_call>call:NAME{key:VALUE,...}<end_function_call>` per call,
    strings between `<escape>` tokens."""
    return _gemma_calls(tools, special_token, _FUNCTION_GEMMA, bare_at_start=False)


@dataclass(frozen=True)
class _GemmaStyle:
    """One model's spelling of the notation: rule names' `prefix`, the string `quote` token, and
    the `block` markers around a call."""

    prefix: str
    quote: str
    block: tuple[str, str]


_GEMMA4 = _GemmaStyle("gm", '<|"|>', ("<|tool_call>", "<tool_call|>"))
_FUNCTION_GEMMA = _GemmaStyle("fg", "<escape>", ("<start_function_call>", "<end_function_call>"))


def _gemma_calls(
    tools: Sequence[ToolSchema], special_token: SpecialToken, style: _GemmaStyle, *, bare_at_start: bool
) -> CallSyntax | None:
    """Calls in Google's notation (`parsers/formats/_gemma_notation.py`), one block each: strings
    between quote tokens (raw text, never holding one), bare numbers, `true`/`false`/`null`,
    bare keys (quoted when not identifiers), `{}`/`[]` without spaces. With `bare_at_start`, the
    first call may leave out the block's opener where the answer begins."""
    prefix, quote, block = style.prefix, style.quote, style.block
    quoted = marker(quote, special_token)

    def string(rule: str, low: int, high: int | None) -> list[str]:
        return raw_text_rules(
            rule, low, high, opener=quote, closer=quote, special_token=special_token, prefix=quoted
        )

    def string_literal(value: str) -> str:
        return f"{quoted} {json.dumps(value)} {quoted}"

    def key(name: str) -> str:
        return json.dumps(name) if _GEMMA_KEY.fullmatch(name) else string_literal(name)

    bare_key = f"/{_GEMMA_KEY.pattern}/"
    notation = _Notation(string, string_literal, '"true"', '"false"', '"null"', key, bare_key, '","', '":"')
    values = LiteralValues(notation, prefix)
    calls: list[str] = []
    declared: list[str] = []
    for tool in tools:
        if not _GEMMA_NAME.fullmatch(tool.name):
            continue
        defs: Mapping[str, Any] = tool.parameters.get("$defs") or tool.parameters.get("definitions") or {}
        arguments = values.value({"type": "object", **tool.parameters}, defs)
        calls.append(f'"call:" {json.dumps(tool.name)} {arguments}')
        declared.append(tool.name)
    if not calls:
        return None
    opener, closer = marker(block[0], special_token), marker(block[1], special_token)
    call, bare = f"{prefix}_call", f"{prefix}_bare"
    rules = (f"{call}: {opener} {bare}", f"{bare}: ({' | '.join(calls)}) {closer}", *values.rules)
    if not bare_at_start:
        return CallSyntax(call, f"{call}+", rules, ((block[0], call, call),))
    names = "|".join(re.escape(n) for n in sorted(declared, key=len, reverse=True))
    return CallSyntax(
        f"({call} | {bare})",
        f"({call} | {bare}) {call}*",
        rules,
        ((block[0], call, call),),
        at_start=((rf"call:(?:{names})\{{", bare, bare),),
    )
