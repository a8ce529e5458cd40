"""Typing the bare-text values of XML-style formats by the tool's JSON schema."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydantic_mlx.parsers._schema import coerce_argument, coerce_arguments, coerce_value, unwrap_arguments
from pydantic_mlx.parsers._tools import tool_set

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
OBJECT = {"type": "object"}
ARRAY = {"type": "array", "items": {"type": "integer"}}


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ("5", STRING, "5"),
        ("true", STRING, "true"),
        ("null", STRING, "null"),
        (" padded \n", STRING, " padded \n"),
        ('"quoted"', STRING, '"quoted"'),
        ("5", INTEGER, 5),
        ("-12", INTEGER, -12),
        ("3.0", INTEGER, 3),
        ("3.5", INTEGER, 3.5),  # kept as the model wrote it: validation is the agent's job
        ("five", INTEGER, "five"),
        ("5", NUMBER, 5),
        ("2.5", NUMBER, 2.5),
        ("1e3", NUMBER, 1000.0),
        ("1e999", NUMBER, "1e999"),  # not a finite number: stays text
        ("NaN", NUMBER, "NaN"),
        ("true", BOOLEAN, True),
        ("False", BOOLEAN, False),  # Python spelling
        ("yes", BOOLEAN, "yes"),
        ('{"a": [1, 2]}', OBJECT, {"a": [1, 2]}),
        ("{'a': True,}", OBJECT, {"a": True}),  # lenient JSON
        ("[1, 2]", ARRAY, [1, 2]),
        ("[1, 2", ARRAY, "[1, 2"),  # cut-off JSON is never repaired
        ("null", {"type": ["string", "null"]}, None),
        ("hello", {"type": ["string", "null"]}, "hello"),
        ("7", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, 7),
        ("null", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, None),
        ("7", {"anyOf": [{"type": "string"}, {"type": "integer"}]}, 7),
        ("[1]", {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "[1]"),
        ("red", {"enum": ["red", "green"]}, "red"),
        ("2", {"enum": [1, 2, 3]}, 2),
        ("x", {"const": "x"}, "x"),
        ('{"k": 1}', {"properties": {"k": INTEGER}}, {"k": 1}),
        ("[3]", {"items": INTEGER}, [3]),
        ("5", {"type": "int"}, 5),  # hand-written schemas' type names
        ("5", {"type": "str"}, "5"),
        ("true", {"type": "bool"}, True),
        ('{"a": 1}', {"type": "dict"}, {"a": 1}),
        ("2.5", {"type": "float"}, 2.5),
    ],
)
def test_typed_by_schema(text: str, schema: dict[str, Any], expected: Any) -> None:
    value = coerce_value(text, schema)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("-2", -2),
        ("3.5", 3.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", [1, 2]),
        ("007", "007"),  # a code, not a number
        ("1.10", "1.10"),  # a version
        ("1e3", "1e3"),
        ("Paris", "Paris"),
        ("True", "True"),
        ('"quoted"', '"quoted"'),
        ("{not json}", "{not json}"),
        ("", ""),
    ],
)
def test_without_schema_only_obvious_types(text: str, expected: Any) -> None:
    for schema in (None, {}, {"description": "no type"}):
        value = coerce_value(text, schema)
        assert value == expected
        assert type(value) is type(expected)


def test_refs_are_followed_to_the_root_defs() -> None:
    root = {
        "type": "object",
        "properties": {
            "point": {"$ref": "#/$defs/Point"},
            "mode": {"anyOf": [{"$ref": "#/$defs/Mode"}, {"type": "null"}]},
        },
        "$defs": {
            "Point": {"type": "object", "properties": {"x": INTEGER}},
            "Mode": {"enum": ["fast", "slow"], "type": "string"},
        },
    }
    tools = tool_set([{"type": "function", "function": {"name": "plot", "parameters": root}}])
    args = coerce_arguments("plot", {"point": '{"x": 1}', "mode": "fast"}, tools)
    assert args == {"point": {"x": 1}, "mode": "fast"}
    assert coerce_argument("plot", "mode", "null", tools) is None
    assert coerce_value("5", {"$ref": "#/$defs/Missing"}, root=root) == 5  # dangling ref: no schema
    assert (
        coerce_value("5", {"$ref": "#/$defs/Loop"}, root={"$defs": {"Loop": {"$ref": "#/$defs/Loop"}}}) == 5
    )


def test_arguments_use_the_declared_tool() -> None:
    tools = tool_set(
        [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": STRING, "days": INTEGER}},
                },
            }
        ]
    )
    raw = {"city": "123", "days": "3", "extra": "4"}
    assert coerce_arguments("get_weather", raw, tools) == {"city": "123", "days": 3, "extra": 4}
    assert coerce_arguments("other_tool", raw, tools) == {"city": 123, "days": 3, "extra": 4}
    assert coerce_arguments("get_weather", raw, tool_set(None)) == {"city": 123, "days": 3, "extra": 4}


@pytest.mark.parametrize(
    ("key", "text", "written_as", "expected"),
    [
        ("days", "4", "string", 4),  # the schema allows no string: typed anyway
        ("city", "4", "string", "4"),
        ("city", "null", "string", "null"),
        ("city", '"Paris"', "json", "Paris"),
        ("city", "Paris", "json", "Paris"),  # not JSON: the schema decides
        ("days", "4", "json", 4),
        ("days", "four", "json", "four"),
        ("undeclared", "4", "string", "4"),  # no schema: the mark decides
        ("undeclared", "4", "json", 4),
        ("undeclared", "[1", "json", "[1"),
        ("undeclared", '"x"', "json", "x"),
    ],
)
def test_the_formats_own_type_mark(key: str, text: str, written_as: Any, expected: Any) -> None:
    schema = {"type": "object", "properties": {"city": STRING, "days": INTEGER}}
    tools = tool_set([{"type": "function", "function": {"name": "get_weather", "parameters": schema}}])
    value = coerce_argument("get_weather", key, text, tools, written_as=written_as)
    assert value == expected
    assert type(value) is type(expected)


WEATHER_TOOLS = tool_set(
    [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": STRING, "days": INTEGER}},
            },
        },
        {
            "type": "function",
            "function": {"name": "run", "parameters": {"type": "object", "properties": {"input": STRING}}},
        },
    ]
)


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_weather", {"arguments": {"city": "Paris"}}, {"city": "Paris"}),
        ("get_weather", {"input": {"city": "Paris", "days": 2}}, {"city": "Paris", "days": 2}),
        ("get_weather", {"arguments": '{"city": "Paris"}'}, {"city": "Paris"}),
        # not certain, so left as the model wrote it:
        ("get_weather", {"arguments": {"town": "Paris"}}, {"arguments": {"town": "Paris"}}),
        ("get_weather", {"arguments": {}}, {"arguments": {}}),
        ("get_weather", {"arguments": "Paris"}, {"arguments": "Paris"}),
        ("get_weather", {"arguments": {"city": "P"}, "days": 1}, {"arguments": {"city": "P"}, "days": 1}),
        ("run", {"input": {"input": "x"}}, {"input": {"input": "x"}}),  # `input` is a real parameter
        ("undeclared", {"arguments": {"city": "Paris"}}, {"arguments": {"city": "Paris"}}),
    ],
)
def test_wrapped_arguments_are_unwrapped_only_when_certain(
    name: str, arguments: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert unwrap_arguments(name, arguments, WEATHER_TOOLS) == expected
    assert unwrap_arguments(name, arguments, tool_set(None)) == arguments


def test_coerce_arguments_unwraps() -> None:
    raw = {"arguments": '{"city": "Paris", "days": 3}'}
    assert coerce_arguments("get_weather", raw, WEATHER_TOOLS) == {"city": "Paris", "days": 3}


def test_additional_properties_schema_types_undeclared_keys() -> None:
    schema = {"type": "object", "additionalProperties": STRING}
    tools = tool_set([{"type": "function", "function": {"name": "tag", "parameters": schema}}])
    assert coerce_arguments("tag", {"k": "5"}, tools) == {"k": "5"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sampled_from([None, STRING, INTEGER, NUMBER, BOOLEAN, OBJECT, ARRAY, {}]))
def test_never_raises(text: str, schema: dict[str, Any] | None) -> None:
    coerce_value(text, schema)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_rendered_values_come_back_with_their_type(value: Any) -> None:
    import json

    kind = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}
    schema = {"type": kind.get(type(value), "object" if isinstance(value, dict) else "array")}
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    assert coerce_value(text, schema) == value


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ('[{\\"id\\": \\"1\\"}]', {"type": "array"}, [{"id": "1"}]),
        ('{\\"path\\": \\"C:\\\\\\\\tmp\\"}', {"type": "object"}, {"path": "C:\\tmp"}),
        ('{\\"note\\": \\"a\\\\\\\\nb\\"}', {"type": "object"}, {"note": "a\\nb"}),
        # A string is allowed: the text is that string, escapes and all.
        ('[{\\"id\\": 1}]', {"type": ["array", "string"]}, '[{\\"id\\": 1}]'),
        # Unescaped once it is still no object or array: the text as written.
        ('\\"5\\"', {"type": "array"}, '\\"5\\"'),
        ("[1, 2", {"type": "array"}, "[1, 2"),
    ],
)
def test_json_escaped_containers_are_unescaped_once(text: str, schema: dict[str, Any], expected: Any) -> None:
    # GLM-4.6 writes array and object parameters as if inside a JSON string.
    assert coerce_value(text, schema) == expected
