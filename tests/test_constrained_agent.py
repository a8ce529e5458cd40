"""Agents on `MLXModel(..., constrained=True)` with the tiny model's RANDOM (untrained) weights.

Noise never answers with a valid object or a valid call by chance: every run that succeeds here
succeeded because the grammar shaped the model's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelRequest, ToolCallPart, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

pytest.importorskip("llguidance")

from pydantic_mlx import MLXModel

pytestmark = pytest.mark.anyio

SEEDS = (0, 1, 2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Strict):
    action: Literal["read", "write", "run"]
    target: Annotated[str, Field(max_length=10)]


class Plan(Strict):
    """Nested models, an enum, an array and an optional field ($defs in the schema)."""

    steps: Annotated[list[Step], Field(min_length=1, max_length=3)]
    confidence: Annotated[int, Field(ge=0, le=10)]
    note: Annotated[str, Field(max_length=8)] | None = None


class ReadArgs(Strict):
    path: Annotated[str, Field(max_length=12)]
    lines: Annotated[int, Field(ge=1, le=50)] | None = None


@pytest.fixture(scope="module")
def model(random_model_path: Path) -> MLXModel:
    return MLXModel(random_model_path, constrained=True)


@pytest.mark.parametrize("seed", [None, *SEEDS])
async def test_native_output_of_an_untrained_model_validates(model: MLXModel, seed: int | None) -> None:
    agent = Agent(model, output_type=NativeOutput(Plan))
    settings = {"max_tokens": 300} if seed is None else {"max_tokens": 300, "temperature": 1.0, "seed": seed}
    result = await agent.run("Plan the work.", model_settings=settings)  # type: ignore[arg-type]
    assert isinstance(result.output, Plan)
    response = result.all_messages()[-1]
    assert (response.provider_details or {})["constrained_regions"] == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", SEEDS)
async def test_required_tool_choice_on_an_untrained_model_is_a_valid_call(model: MLXModel, seed: int) -> None:
    tool = ToolDefinition(name="read_file", parameters_json_schema=ReadArgs.model_json_schema())
    response = await model_request(
        model,
        [ModelRequest(parts=[UserPromptPart("Read the readme.")])],
        model_settings={
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "max_tokens": 200,
            "temperature": 1.0,
            "seed": seed,
        },
        model_request_parameters=ModelRequestParameters(function_tools=[tool], allow_text_output=True),
    )
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    assert len(calls) == 1 and calls[0].tool_name == "read_file"
    ReadArgs.model_validate(calls[0].args_as_dict())
    assert response.finish_reason == "tool_call"


async def test_unconstrained_untrained_model_writes_no_valid_object(random_model_path: Path) -> None:
    """The control: the same model without the grammar does not produce a call."""
    tool = ToolDefinition(name="read_file", parameters_json_schema=ReadArgs.model_json_schema())
    response = await model_request(
        MLXModel(random_model_path, constrained=False, model_name="free"),
        [ModelRequest(parts=[UserPromptPart("Read the readme.")])],
        model_settings={"max_tokens": 60},
        model_request_parameters=ModelRequestParameters(function_tools=[tool], allow_text_output=True),
    )
    assert not [p for p in response.parts if isinstance(p, ToolCallPart)]
    assert "constrained_regions" not in (response.provider_details or {})
