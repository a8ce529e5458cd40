"""Closed objects: a schema's objects hold their declared keys only, unless the schema opens them.

JSON Schema lets an object without `additionalProperties` hold any other key, and a grammar that
takes that literally lets a model close a list and go on with an invented key and an unbounded
string (a random model does, until `max_tokens`), or copy schema words into its arguments
(`{"command": "echo hello", "required": ["command"]}`, as the real Qwen2.5-Coder-0.5B did).
OpenAI's strict mode, xgrammar and llama.cpp close objects by default; so do we. An object that
says `additionalProperties: true` (or gives a schema for the extra values, as pydantic writes a
`dict[str, X]` or a model with `extra="allow"`) stays open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["close_objects"]

_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_VALUES = (
    "items",
    "additionalProperties",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
)


def close_objects(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with `additionalProperties: false` on every object schema that does not say
    otherwise (`additionalProperties` or `unevaluatedProperties` present leaves it as written).

    The members of an `allOf` of several schemas are not closed one by one (each would forbid
    the others' keys); their parent is closed over all their declared keys instead. The same
    holds for a definition such a member refers to.
    """
    defs: Mapping[str, Any] = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    left_open = _combined_definitions(schema, defs)

    def close(node: Any, *, combined: bool = False) -> Any:
        if not isinstance(node, Mapping):
            return node  # a boolean schema
        out: dict[str, Any] = {}
        for key, value in node.items():  # pyright: ignore[reportUnknownVariableType]
            if key in _SCHEMA_LISTS and isinstance(value, list):
                several = key == "allOf" and len(value) > 1  # pyright: ignore[reportUnknownArgumentType]
                out[key] = [close(v, combined=several) for v in value]  # pyright: ignore[reportUnknownVariableType]
            elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
                out[key] = {
                    name: close(v, combined=key in ("$defs", "definitions") and name in left_open)
                    for name, v in value.items()  # pyright: ignore[reportUnknownVariableType]
                }
            elif key in _SCHEMA_VALUES:
                out[key] = close(value)
            else:
                out[str(key)] = value  # pyright: ignore[reportUnknownArgumentType]
        if combined or "additionalProperties" in out or "unevaluatedProperties" in out:
            return out
        members = _combined_members(out, defs)
        if members:
            # Keys declared by any member are allowed here (the members check their values).
            declared = {name: True for m in members for name in m.get("properties") or {}}
            out["properties"] = {**declared, **(out.get("properties") or {})}
            out["additionalProperties"] = False
        elif _is_object(out):
            out["additionalProperties"] = False
        return out

    return close(schema)


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    if kind is None:
        return "properties" in node or "required" in node
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _combined_members(node: Mapping[str, Any], defs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object schemas of `node`'s `allOf` of several members (references resolved)."""
    members: Any = node.get("allOf")
    if not isinstance(members, list) or len(members) < 2:  # pyright: ignore[reportUnknownArgumentType]
        return []
    found: list[Mapping[str, Any]] = []
    for member in members:  # pyright: ignore[reportUnknownVariableType]
        if isinstance(member, Mapping):
            target = _definition(member, defs)  # pyright: ignore[reportUnknownArgumentType]
            if target is not None and _is_object(target):
                found.append(target)
    return found


def _combined_definitions(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> set[str]:
    """Names of the definitions that a member of an `allOf` of several schemas refers to."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, Mapping):
            members: Any = node.get("allOf")
            if isinstance(members, list) and len(members) > 1:  # pyright: ignore[reportUnknownArgumentType]
                for member in members:  # pyright: ignore[reportUnknownVariableType]
                    ref = member.get("$ref") if isinstance(member, Mapping) else None  # pyright: ignore[reportUnknownMemberType]
                    if isinstance(ref, str):
                        names.add(ref.rsplit("/", 1)[-1])
            for value in node.values():  # pyright: ignore[reportUnknownVariableType]
                visit(value)
        elif isinstance(node, list):
            for item in node:  # pyright: ignore[reportUnknownVariableType]
                visit(item)

    visit(schema)
    return names


def _definition(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    if ref.startswith(("#/$defs/", "#/definitions/")):
        target = defs.get(ref.rsplit("/", 1)[1])
        return target if isinstance(target, Mapping) else None  # pyright: ignore[reportUnknownVariableType]
    return None
