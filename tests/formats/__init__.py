"""Tests of the individual tool-call formats, and strategies the XML-style ones share."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from pydantic_mlx.parsers import ToolCall

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
# String values never contain "<": a raw value holding a format's closing marker is ambiguous
# by design (the templates do not escape it). Markup-looking values have their own examples.
SAFE_TEXT = st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), max_size=20)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SAFE_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=6,
)
ARGUMENTS = st.dictionaries(NAMES, JSON_VALUES, max_size=4)
CALL_SPECS = st.lists(st.tuples(NAMES, ARGUMENTS), min_size=1, max_size=3, unique_by=lambda c: c[0])
"""(name, arguments) pairs with distinct names, so one schema per name can type every value."""
PROSE = st.text(st.sampled_from("abc xyz.,!?\n"), max_size=20)
CUTS = st.lists(st.integers(0, 2000), max_size=20)


def tool(name: str, **properties: Any) -> dict[str, Any]:
    """An OpenAI-style tool declaration whose parameters have these properties."""
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": properties}},
    }


def json_type(value: Any) -> str:
    """The JSON schema type of a decoded JSON value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}[type(value)]


def tools_typing(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool definitions whose schemas give every argument the type it has in `calls`."""
    return [
        {
            "type": "function",
            "function": {
                "name": call.name,
                "parameters": {
                    "type": "object",
                    "properties": {k: {"type": json_type(v)} for k, v in call.arguments.items()},
                },
            },
        }
        for call in calls
    ]


def soup(markers: list[str]) -> st.SearchStrategy[str]:
    """Text made of a format's markers, pieces of calls and prose, in any order."""
    pieces = [*markers, ">", "\n", " ", "f", "x", "1", '{"a": 1}', '"']
    return st.lists(st.sampled_from(pieces) | PROSE, max_size=25).map("".join)
