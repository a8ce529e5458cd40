"""MLXModel(constrained=True) on the tiny demo model (needs the `constrained` extra: llguidance)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pydantic_ai import Agent, NativeOutput, capture_run_messages
from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import UnexpectedModelBehavior, UserError
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import Tool

from pydantic_mlx import MLXModel
from pydantic_mlx.demo import CityInfo, scenario

pytest.importorskip("llguidance")

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def constrained_model(demo_model_path: Path) -> MLXModel:
    return MLXModel(demo_model_path, constrained=True)


def responses(messages: list[object]) -> list[ModelResponse]:
    return [m for m in messages if isinstance(m, ModelResponse)]


@pytest.mark.parametrize(
    ("name", "regions"),
    [("tool_call_tags", [1, 0]), ("tool_call_json_fence", [1, 0]), ("parallel_calls", [2, 0])],
)
async def test_valid_calls_pass_through_the_grammar(
    constrained_model: MLXModel, name: str, regions: list[int]
) -> None:
    """The trained calls are already valid: constrained, the run is the same, and each call was constrained."""
    sc = scenario(name)
    result = await sc.agent(constrained_model).run(sc.prompt)
    assert result.output == sc.turns[-1].text
    details = [r.provider_details or {} for r in responses(result.all_messages())]
    assert [d["constrained_regions"] for d in details] == regions
    assert all(d["constraint_problems"] == [] for d in details)


async def test_required_tool_choice_forces_a_call(constrained_model: MLXModel) -> None:
    # Unconstrained, this prompt is answered with text; with tool_choice='required' the grammar
    # makes the answer a call to a declared tool. Thinking off: a reasoning block is never
    # constrained, and the tiny model, offered one, may open it and stop inside it.
    sc = scenario("plain_answer")
    with capture_run_messages() as messages:
        await sc.agent(constrained_model).run(sc.prompt)
    tools = [Tool(f).tool_def for f in sc.tools]
    params = ModelRequestParameters(function_tools=tools, allow_text_output=True)
    response = await model_request(
        constrained_model,
        messages[:-1],
        model_settings={"tool_choice": "required", "max_tokens": 120, "thinking": False},
        model_request_parameters=params,
    )
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    assert calls and all(c.tool_name in {t.name for t in tools} for c in calls)


async def test_native_output_is_constrained_to_json(constrained_model: MLXModel) -> None:
    agent = Agent(constrained_model, output_type=NativeOutput(CityInfo))
    # An untrained prompt: the tiny model may not finish the object in 60 tokens. Thinking off: the
    # demo model also learned to reason first, and its reasoning is free text (not the answer).
    with capture_run_messages() as messages, contextlib.suppress(UnexpectedModelBehavior):
        await agent.run(
            "Which city is the capital of Spain?", model_settings={"max_tokens": 60, "thinking": False}
        )
    first = responses(messages)[0]
    assert first.text is not None and first.text.lstrip().startswith('{"')
    assert (first.provider_details or {})["constrained_regions"] == 1


def test_native_output_without_constraints_is_refused(demo_model_path: Path) -> None:
    agent = Agent(MLXModel(demo_model_path, constrained=False), output_type=NativeOutput(CityInfo))
    with pytest.raises(UserError, match="constrained"):
        agent.run_sync("Which city is the capital of Spain?")
