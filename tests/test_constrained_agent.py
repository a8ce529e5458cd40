"""Agents on `MLXModel(..., constrained=True)` with the tiny model's RANDOM (untrained) weights.

Noise never answers with a valid object or a valid call by chance: every run that succeeds here
succeeded because the grammar shaped the model's output.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent, NativeOutput, capture_run_messages
from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

pytest.importorskip("llguidance")

from pydantic_mlx import MLXModel

pytestmark = pytest.mark.anyio

SEEDS = (0, 1, 2)


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


@pytest.mark.parametrize("seed", [None, *SEEDS])
async def test_native_output_with_tools_is_a_valid_call_or_a_valid_answer(
    model: MLXModel, seed: int | None
) -> None:
    """An agent with function tools and NativeOutput: the answer is a call or the output object."""
    from pydantic_ai.output import OutputObjectDefinition

    tool = ToolDefinition(name="read_file", parameters_json_schema=ReadArgs.model_json_schema())
    output = OutputObjectDefinition(json_schema=Plan.model_json_schema(), name="Plan")
    settings = {"max_tokens": 300, "parallel_tool_calls": False}
    if seed is not None:
        settings |= {"temperature": 1.0, "seed": seed}
    response = await model_request(
        model,
        [ModelRequest(parts=[UserPromptPart("Plan the work.")])],
        model_settings=settings,  # type: ignore[arg-type]
        model_request_parameters=ModelRequestParameters(
            function_tools=[tool], output_mode="native", output_object=output, allow_text_output=False
        ),
    )
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    if calls:
        assert len(calls) == 1
        ReadArgs.model_validate(calls[0].args_as_dict())
    else:
        assert response.text is not None
        Plan.model_validate_json(response.text)


@pytest.mark.real_model
async def test_real_model_fenced_call_is_constrained(real_model_path: Path) -> None:
    """Qwen2.5-Coder-0.5B writes its calls as ```json fences: the pattern trigger constrains them."""

    def read_file(path: str) -> str:
        """Read a text file of the project."""
        return "# Demo"

    agent = Agent(MLXModel(real_model_path, constrained=True), tools=[read_file])
    with capture_run_messages() as messages, contextlib.suppress(Exception):
        await agent.run("Read README.md and tell me what it says.", model_settings={"max_tokens": 80})
    first = next(m for m in messages if isinstance(m, ModelResponse))
    calls = [p for p in first.parts if isinstance(p, ToolCallPart)]
    assert calls and calls[0].tool_name == "read_file", first
    assert isinstance(calls[0].args_as_dict()["path"], str)
    assert (first.provider_details or {})["constrained_regions"] >= 1


async def test_batched_constrained_requests_equal_their_one_at_a_time_runs(random_model_path: Path) -> None:
    """Each batched row has its own grammar state: concurrent constrained requests (required calls
    and native output, greedy and seeded) answer exactly as they do one at a time."""
    import asyncio

    from pydantic_ai.output import OutputObjectDefinition

    tool = ToolDefinition(name="read_file", parameters_json_schema=ReadArgs.model_json_schema())
    output = OutputObjectDefinition(json_schema=Plan.model_json_schema(), name="Plan")
    calls = ModelRequestParameters(function_tools=[tool], allow_text_output=True)
    native = ModelRequestParameters(output_mode="native", output_object=output, allow_text_output=False)
    cases = [
        (params, {"max_tokens": 120, **({"tool_choice": "required"} if params is calls else {}), **sampling})
        for params in (calls, native)
        for sampling in ({}, *({"temperature": 1.0, "seed": seed} for seed in SEEDS))
    ]

    async def answer(model: MLXModel, params: ModelRequestParameters, settings: dict[str, object]) -> str:
        response = await model_request(
            model,
            [ModelRequest(parts=[UserPromptPart("Plan the work.")])],
            model_settings=settings,  # type: ignore[arg-type]
            model_request_parameters=params,
        )
        return repr(
            [(p.part_kind, getattr(p, "content", None), getattr(p, "args", None)) for p in response.parts]
        )

    serial = MLXModel(random_model_path, constrained=True, batching=False, model_name="serial")
    expected = [await answer(serial, params, settings) for params, settings in cases]
    batched = MLXModel(random_model_path, constrained=True, model_name="batched")
    assert await asyncio.gather(*(answer(batched, p, s) for p, s in cases)) == expected
