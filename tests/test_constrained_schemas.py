"""Schemas constrained decoding must follow or refuse (issue 21): never a silent fallback.

pydantic-ai writes a recursive output type, and `Tool.from_schema` or an MCP server may write a
tool's parameters, as a root `$ref` next to its `$defs`; a schema may also nest too deeply for a
grammar. Each is either constrained (the grammar compiles, takes valid calls, refuses invalid
ones) or a `UserError` before the prompt is prefilled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

pytest.importorskip("llguidance")

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelRequest, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from pydantic_mlx import MLXModel
from pydantic_mlx._request_plan import Constraint  # pyright: ignore[reportPrivateUsage]
from pydantic_mlx.constrained import tool_call_processor
from pydantic_mlx.constrained._decoding import grammar_tokenizer
from pydantic_mlx.constrained._grammars import CALL_FORMATS, ToolSchema, tool_call_grammars
from pydantic_mlx.parsers import ToolCall
from pydantic_mlx.parsers.formats import get_format
from test_constrained import _accepts


class Node(BaseModel):
    value: int
    children: list[Node] = []


NODE_SCHEMA = Node.model_json_schema()


def test_a_recursive_model_is_a_root_ref() -> None:
    # What the rest of this file is about: pydantic's own schema of a recursive model.
    assert NODE_SCHEMA["$ref"] == "#/$defs/Node" and "properties" not in NODE_SCHEMA


@pytest.fixture(scope="module")
def loaded(random_model_path: Path) -> tuple[Any, Any]:
    from mlx_lm import load

    return load(str(random_model_path))


@pytest.mark.parametrize("tool_format", [f for f in CALL_FORMATS if f != "auto"])
def test_a_root_ref_schema_is_constrained_in_every_format(loaded: tuple[Any, Any], tool_format: str) -> None:
    grammars = tool_call_grammars(
        tool_format,
        [ToolSchema("tree", NODE_SCHEMA)],
        required=True,
        untagged_json=True,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format(tool_format).render  # "auto" writes calls as hermes does: tested there
    good = {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}
    bad = {"value": 1, "children": [{"children": []}]}  # a nested required field missing
    assert _accepts(loaded, grammars.answer, render([ToolCall("tree", good)]))
    assert not _accepts(loaded, grammars.answer, render([ToolCall("tree", bad)]))


@pytest.mark.parametrize("tool_format", ["hermes", "mistral", "qwen3_coder", "auto"])
def test_lazy_regions_of_a_root_ref_schema_compile(loaded: tuple[Any, Any], tool_format: str) -> None:
    processor = tool_call_processor(loaded[1], tool_format, [ToolSchema("tree", NODE_SCHEMA)])
    processor.check()  # raised "Pointer '/$defs/Node' does not exist" for every JSON trigger


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


@pytest.mark.parametrize("levels", [300, 2000])
def test_a_schema_too_deep_to_constrain_is_a_user_error(loaded: tuple[Any, Any], levels: int) -> None:
    constraint = Constraint(
        lambda: tool_call_processor(loaded[1], "hermes", [ToolSchema("t", _deep(levels))], required=True)
    )
    with pytest.raises(UserError, match="constrained decoding cannot follow a schema"):
        constraint()  # 300: llguidance's recursion limit, left silently free; 2000: a RecursionError


# --- fuzz: recursive and deep schemas, each with a value valid against it --------------------


def _leaf() -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    return st.one_of(
        st.just(({"type": "integer"}, 7)),
        st.just(({"type": "string", "maxLength": 5}, "ab")),
        st.just(({"type": "boolean"}, True)),
        st.just(({"enum": ["x", "y"]}, "y")),
    )


def _extend(
    children: st.SearchStrategy[tuple[dict[str, Any], Any]],
) -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    def obj(fields: list[tuple[dict[str, Any], Any]]) -> tuple[dict[str, Any], Any]:
        names = [f"k{i}" for i in range(len(fields))]
        schema = {
            "type": "object",
            "properties": {n: s for n, (s, _) in zip(names, fields, strict=True)},
            "required": names,
        }
        return schema, {n: v for n, (_, v) in zip(names, fields, strict=True)}

    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(obj),
        children.map(lambda c: ({"type": "array", "items": c[0]}, [c[1]])),
        children.map(lambda c: ({"anyOf": [c[0], {"type": "null"}]}, c[1])),
    )


def _recursive(payload: tuple[dict[str, Any], Any]) -> tuple[dict[str, Any], Any]:
    """A tree type around `payload`, written as pydantic writes one: a root `$ref`."""
    schema, value = payload
    node = {
        "type": "object",
        "properties": {"data": schema, "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
        "required": ["data"],
    }
    return {"$defs": {"Node": node}, "$ref": "#/$defs/Node"}, {"data": value, "next": {"data": value}}


SCHEMA_CASES = st.one_of(
    st.recursive(_leaf(), _extend, max_leaves=8).map(
        lambda c: ({"type": "object", "properties": {"p": c[0]}, "required": ["p"]}, {"p": c[1]})
    ),
    st.recursive(_leaf(), _extend, max_leaves=6).map(_recursive),
    st.integers(1, 400).map(lambda n: (_deep(n), json.loads('{"a": ' * n + "1" + "}" * n))),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=SCHEMA_CASES, tool_format=st.sampled_from(["hermes", "qwen3_coder", "mistral", "pythonic"]))
def test_every_schema_is_constrained_or_refused(
    loaded: tuple[Any, Any], case: tuple[dict[str, Any], Any], tool_format: str
) -> None:
    schema, value = case
    constraint = Constraint(
        lambda: tool_call_processor(loaded[1], tool_format, [ToolSchema("t", schema)], required=True)
    )
    try:
        processor = constraint()
    except UserError as error:
        assert "constrained decoding cannot follow a schema" in str(error)
        return
    grammars = processor._build(grammar_tokenizer(loaded[1]))  # pyright: ignore[reportPrivateUsage]
    text = get_format(tool_format).render([ToolCall("t", value)])
    assert _accepts(loaded, grammars.answer, text), text


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_recursive_tool_is_constrained_end_to_end(random_model_path: Path) -> None:
    model = MLXModel(random_model_path, constrained=True)
    tree = ToolDefinition(name="tree", parameters_json_schema=NODE_SCHEMA)
    response = await model.request(
        [ModelRequest.user_text_prompt("Make a tree.")],
        {"tool_choice": "required", "max_tokens": 60},
        ModelRequestParameters(function_tools=[tree]),
    )
    details = response.provider_details or {}
    assert details["constraint_problems"] == []  # was: the grammar failed to compile, output free
    assert details["constrained_regions"] == 1
    assert any(isinstance(p, ToolCallPart) and p.tool_name == "tree" for p in response.parts)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (63, "constrained decoding cannot follow a schema"),  # renders; past llguidance's limit
        (300, "nests 601 levels deep"),  # was a raw RecursionError while rendering the prompt
    ],
)
async def test_a_too_deep_tool_is_a_user_error_end_to_end(
    random_model_path: Path, levels: int, message: str
) -> None:
    model = MLXModel(random_model_path, constrained=True)
    deep = ToolDefinition(name="deep", parameters_json_schema=_deep(levels))
    with pytest.raises(UserError, match=message):
        await model.request(
            [ModelRequest.user_text_prompt("Go.")],
            {"tool_choice": "required", "max_tokens": 8},
            ModelRequestParameters(function_tools=[deep]),
        )
