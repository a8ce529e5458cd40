"""Typing the string values of XML-style formats by the tool's JSON schema.

Formats such as Qwen3-Coder (`<parameter=k>v</parameter>`), GLM (`<arg_value>`) and DeepSeek
DSML write every argument value as bare text: `5`, `true`, `hello`, `[1, 2]`. The text alone
cannot say whether `5` was the number or the string "5"; the tool's schema can.

The rule, for one value's text:

- The schema allows `string` only: the text, untouched.
- The schema allows other types: the text read as JSON (strict, then lenient: single quotes,
  Python `True`/`None`, trailing commas). When `string` is also allowed, the JSON reading is
  kept only if its type is one of the allowed ones (`null` for `string | null`), otherwise
  the text stays a string. A text that is not JSON at all stays a string: the call is what the
  model wrote, and validating it against the schema is the agent's job, not the parser's.
  An integral number where only `integer` is allowed becomes an `int` (`3.0` -> `3`).
  Where only an object or array fits (no `string`), a value written JSON-escaped, as if inside
  a JSON string (`[{\\"id\\": 1}]`, GLM-4.6 writes them), is unescaped once and then read.
- No schema (tools unknown, tool or property not declared, or a property without types):
  only *obviously* typed text is converted: `true`, `false`, `null`, a JSON object or array,
  and a number whose JSON spelling is exactly the text (`5`, `-2`, `3.5`; not `007`, `1.10` or
  `1e3`, which could be version strings or codes). Everything else stays a string.

Local `$ref`s (`#/$defs/...`, as pydantic writes them), `anyOf`/`oneOf`/`allOf`, type lists,
`enum` and `const` are followed to find the allowed types; the non-standard type names people
put in hand-written schemas (`int`, `float`, `bool`, `str`, `dict`, `list`) count as their JSON
counterparts.

Formats that mark a value's type themselves (DeepSeek DSML's `string="true"`, Kimi-K3's
`type=`) pass that mark as `written_as`; the schema, when it declares types, still decides.
And when a model wraps all the arguments in one undeclared `arguments` parameter, the wrapped
object is the arguments (`unwrap_arguments`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from ._json import loads_lenient
from ._tools import ToolSet

__all__ = ["coerce_argument", "coerce_arguments", "coerce_value", "unwrap_arguments"]

_MAX_SCHEMA_DEPTH = 32
_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})
_TYPE_ALIASES = {
    "int": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "str": "string",
    "text": "string",
    "dict": "object",
    "list": "array",
}


def coerce_value(
    text: str, schema: Mapping[str, Any] | None, *, root: Mapping[str, Any] | None = None
) -> Any:
    """The value `text` stands for, typed by `schema` (one property's JSON schema).

    `root` is the whole parameters schema, used to resolve `$ref`s (defaults to `schema`).
    Never raises: text that does not fit the schema comes back as the string it is.
    """
    allowed = _allowed_types(schema, root if root is not None else schema, 0) if schema else frozenset()
    if not allowed:
        return _obvious_value(text)
    if allowed == frozenset({"string"}):
        return text
    value = _read_json(text)
    if value is _NOT_JSON and "string" not in allowed and allowed & _CONTAINERS:
        value = _read_escaped_json(text)
    if value is _NOT_JSON:
        return text
    kind = _json_type(value)
    if kind == "number" and not math.isfinite(value):
        return text
    if kind == "number" and "integer" in allowed and "number" not in allowed and float(value).is_integer():
        value, kind = int(value), "integer"
    if kind == "integer" and "number" in allowed:
        kind = "number"
    if "string" in allowed and kind not in allowed:
        return text
    return value


def coerce_arguments(name: str, raw: Mapping[str, str], tools: ToolSet) -> dict[str, Any]:
    """The arguments of a call to `name`, each raw text value typed by the declared schema
    (and unwrapped when all of them came in one `arguments` parameter: `unwrap_arguments`)."""
    return unwrap_arguments(
        name, {key: coerce_argument(name, key, text, tools) for key, text in raw.items()}, tools
    )


def coerce_argument(
    name: str, key: str, text: str, tools: ToolSet, *, written_as: Literal["string", "json"] | None = None
) -> Any:
    """One argument's raw text, typed by the schema of property `key` of tool `name`.

    `written_as` is the type the format itself marked the value with, when it marks one (DSML's
    `string="true|false"`, Kimi-K3's `type=`). The schema, when it has types, still decides:
    a value marked as a string stays text when the schema allows strings, and is typed by the
    schema when it does not (the model mislabelled it); a value marked as JSON is read as JSON
    when that fits the schema. Without schema types the mark decides.
    """
    schema, root = _property_schema(name, key, tools)
    allowed = _allowed_types(schema, root, 0)
    if written_as == "json":
        value = _read_json(text)
        if value is not _NOT_JSON and (not allowed or _fits(value, allowed)):
            return value
        return coerce_value(text, schema, root=root) if allowed else text
    if written_as == "string" and (not allowed or "string" in allowed):
        return text
    return coerce_value(text, schema, root=root)


def _property_schema(name: str, key: str, tools: ToolSet) -> tuple[Mapping[str, Any] | None, Any]:
    """The schema of property `key` of tool `name` (or None), and the root it resolves against."""
    root = tools.schema(name)
    if not isinstance(root, Mapping):
        return None, None
    prop: Any = None
    properties = root.get("properties")
    if isinstance(properties, Mapping):
        prop = properties.get(key)  # type: ignore[union-attr]
    if prop is None and isinstance(root.get("additionalProperties"), Mapping):
        prop = root["additionalProperties"]
    return (prop if isinstance(prop, Mapping) else None), root


def _fits(value: Any, allowed: frozenset[str]) -> bool:
    kind = _json_type(value)
    return kind in allowed or (kind == "integer" and "number" in allowed)


class _NotJson:
    pass


_NOT_JSON: Any = _NotJson()


def _read_json(text: str) -> Any:
    try:
        return loads_lenient(text)
    except ValueError:
        return _NOT_JSON


_CONTAINERS = frozenset({"object", "array"})


def _read_escaped_json(text: str) -> Any:
    """An object or array written JSON-escaped (`{\\"k\\": 1}`): the text read as the inside of
    a JSON string, then that string as JSON. Anything else is not JSON here."""
    try:
        unescaped = json.loads(f'"{text.strip()}"', strict=False)
    except ValueError:
        return _NOT_JSON
    value = _read_json(unescaped) if isinstance(unescaped, str) else _NOT_JSON
    return value if isinstance(value, dict | list) else _NOT_JSON


def _obvious_value(text: str) -> Any:
    stripped = text.strip()
    if stripped in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[stripped]
    if stripped[:1] in ("{", "["):
        try:
            return _STRICT_JSON.decode(stripped)
        except (ValueError, RecursionError):
            return text
    if stripped[:1] == "-" or stripped[:1].isdigit():
        try:
            number = _STRICT_JSON.decode(stripped)
        except (ValueError, RecursionError):
            return text
        # Only a number that spells itself back exactly: "1.10" or "1e3" may be strings.
        if isinstance(number, int | float) and math.isfinite(number) and json.dumps(number) == stripped:
            return number
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _allowed_types(schema: Any, root: Any, depth: int) -> frozenset[str]:
    """The JSON types `schema` admits (empty when it says nothing about types)."""
    if depth > _MAX_SCHEMA_DEPTH or not isinstance(schema, Mapping):
        return frozenset()
    node: Mapping[str, Any] = schema
    found: set[str] = set()
    ref = node.get("$ref")
    if isinstance(ref, str):
        found |= _allowed_types(_resolve(ref, root), root, depth + 1)
    declared = node.get("type")
    if isinstance(declared, str):
        found.add(_TYPE_ALIASES.get(declared, declared))
    elif isinstance(declared, list):
        found.update(_TYPE_ALIASES.get(t, t) for t in declared if isinstance(t, str))
    for combinator in ("anyOf", "oneOf", "allOf"):
        branches = node.get(combinator)
        if isinstance(branches, list):
            for branch in branches:
                found |= _allowed_types(branch, root, depth + 1)
    if not found:
        choices = node.get("enum")
        if isinstance(choices, list):
            found.update(_json_type(v) for v in choices)
        elif "const" in node:
            found.add(_json_type(node["const"]))
        elif "properties" in node:
            found.add("object")
        elif "items" in node:
            found.add("array")
    return frozenset(found & _JSON_TYPES)


def _resolve(ref: str, root: Any) -> Any:
    """The schema a local `#/...` reference points at, or None."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        if not isinstance(node, Mapping):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


_WRAPPER_KEYS = ("arguments", "input")


def unwrap_arguments(name: str, arguments: dict[str, Any], tools: ToolSet) -> dict[str, Any]:
    """The arguments themselves when a model wrapped them all in one `arguments` (or `input`)
    parameter, as XML-style formats invite: `<parameter=arguments>{"city": "Paris"}</parameter>`.

    Only when that is certain: the tool is declared with properties, the wrapper is not one of
    them, and the wrapped value is an object whose keys all are. Otherwise `arguments` as given.
    """
    if len(arguments) != 1:
        return arguments
    ((key, inner),) = arguments.items()
    root = tools.schema(name)
    properties = root.get("properties") if isinstance(root, Mapping) else None
    if key not in _WRAPPER_KEYS or not isinstance(properties, Mapping) or key in properties:
        return arguments
    if isinstance(inner, str):
        inner = _read_json(inner)
    if isinstance(inner, dict) and inner and all(k in properties for k in inner):
        return inner  # type: ignore[return-value]
    return arguments
