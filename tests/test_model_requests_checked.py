"""What `MLXModel` checks before any work (issue 21): the tools it shows, settings, limits, context.

On the random model (the demo model's tokenizer and template, untrained weights): nothing here
depends on what the model writes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent, Tool
from pydantic_ai.exceptions import UnexpectedModelBehavior, UserError
from pydantic_ai.messages import ModelRequest
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

import pydantic_mlx.model as model_module
from pydantic_mlx import MLXModel

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def model(random_model_path: Path) -> MLXModel:
    return MLXModel(random_model_path)


def schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


# --- tools pydantic-ai withholds ----------------------------------------------------------------


async def test_a_deferred_tool_is_neither_rendered_nor_constrained(random_model_path: Path) -> None:
    pytest.importorskip("llguidance")
    model = MLXModel(random_model_path, constrained=True)
    await model.load()
    params = ModelRequestParameters(
        function_tools=[
            ToolDefinition(name="read_file", parameters_json_schema=schema()),
            ToolDefinition(
                name="secret_tool",
                description="Hidden until revealed.",
                parameters_json_schema=schema(),
                defer_loading=True,
            ),
        ]
    )
    plan = model._plan([ModelRequest.user_text_prompt("hi")], {}, params)  # pyright: ignore[reportPrivateUsage]
    prompt = model.loaded.tokenizer.decode(plan.prompt)
    assert "read_file" in prompt
    assert "secret_tool" not in prompt and "Hidden until revealed" not in prompt
    assert [t.name for t in plan.tools] == ["read_file"]  # the tools the parser reads and the grammar allows
    assert "secret_tool" in plan.excluded_tools  # a call the model guesses is its text, never run


async def test_an_agents_deferred_tool_is_not_rendered(
    model: MLXModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[list[str]] = []
    render = model_module.render_prompt_and_shared_prefix

    def recording(tokenizer: Any, messages: Any, tools: Any, **kwargs: Any) -> tuple[list[int], int]:
        rendered.append([t.name for t in tools])
        return render(tokenizer, messages, tools, **kwargs)

    monkeypatch.setattr(model_module, "render_prompt_and_shared_prefix", recording)

    def read_file(path: str) -> str:
        """Read a file."""
        return path

    def delete_everything(path: str) -> str:
        """Delete every file."""
        return path

    agent = Agent(model, tools=[read_file, Tool(delete_everything, defer_loading=True)])
    with contextlib.suppress(UnexpectedModelBehavior):  # two tokens of random text
        await agent.run("hi", model_settings={"max_tokens": 2})
    assert rendered and all("delete_everything" not in names for names in rendered)
    # pydantic-ai offers its own discovery tool instead, through which the model may reveal it.
    assert {"read_file", "search_tools"} <= set(rendered[0])


# --- settings and limits: a UserError before any work ----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_cache_entries": -1}, "prompt_cache_entries must be an integer of at least 0"),
        ({"prompt_cache_bytes": -5}, "prompt_cache_bytes must be an integer of at least 0"),
        ({"prompt_cache_entries": 2.5}, "prompt_cache_entries must be an integer"),
        ({"max_batch_size": 0}, "max_batch_size must be an integer of at least 1"),
        ({"max_batch_size": True}, "max_batch_size must be an integer"),
        ({"max_batch_bytes": 0}, "max_batch_bytes must be an integer of at least 1"),
        ({"batching": "yes"}, "batching must be True or False"),
        ({"settings": {"temperature": 1e-45}}, "temperature 1e-45 is too small"),
    ],
)
def test_bad_limits_are_refused_when_the_model_is_made(
    random_model_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    # prompt_cache_entries=-1 was accepted, then every request of the batch failed with IndexError.
    with pytest.raises(UserError, match=message):
        MLXModel(random_model_path, **kwargs)


@pytest.mark.parametrize("source", [123, None, ["a", "b"], ("model",)])
def test_a_model_that_is_not_a_source_is_a_user_error(source: Any) -> None:
    with pytest.raises(UserError, match="model must be a Hugging Face id, a model folder or a"):
        MLXModel(source)  # 123 was a bare TypeError


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"logit_bias": [1, 2]}, "logit_bias must be a mapping"),
        ({"logit_bias": {"-3": 1.0}}, "logit_bias token id -3 is outside the vocabulary"),
        ({"logit_bias": {"5": 1e39}}, "logit_bias values must be finite numbers"),  # NaN in float32
        ({"tool_choice": "bogus"}, "tool_choice must be 'auto', 'none', 'required'"),
        ({"tool_choice": 5}, "tool_choice must be"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls must be True or False"),
        ({"stop_sequences": [""]}, "stop_sequences must be a list of strings, none of them empty"),
        ({"temperature": 1e-45}, "temperature 1e-45 is too small"),  # 1/T is infinite in float32
        ({"temperature": 1e39}, "temperature must be a finite number"),
        ({"presence_penalty": 1e39}, "presence_penalty must be a finite number"),
        ({"frequency_penalty": -1e39}, "frequency_penalty must be a finite number"),
        ({"top_p": float("nan")}, "top_p must be a finite number"),
        ({"max_tokens": 2**63}, "max_tokens must be at least 1 and at most 2147483647"),
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
    ],
)
async def test_bad_settings_are_refused_before_any_work(
    model: MLXModel, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], message: str
) -> None:
    async def no_work() -> None:
        raise AssertionError("the request got as far as loading the model")

    monkeypatch.setattr(model.loaded, "load", no_work)
    with pytest.raises(UserError, match=message):
        await model.request(
            [ModelRequest.user_text_prompt("hi")],
            settings,  # type: ignore[arg-type]
            ModelRequestParameters(
                function_tools=[ToolDefinition(name="a", parameters_json_schema=schema())]
            ),
        )


# --- the model's context ---------------------------------------------------------------------------

LONG_PROMPT = "word " * 5000  # over 4,096 tokens: the random model's context (max_position_embeddings)


async def test_a_prompt_past_the_context_is_refused_with_the_numbers(model: MLXModel) -> None:
    with pytest.raises(
        UserError, match=r"The prompt is \d{4,} tokens, and the model's context is 4096 tokens"
    ):
        await model.request(
            [ModelRequest.user_text_prompt(LONG_PROMPT)], {"max_tokens": 1}, ModelRequestParameters()
        )


async def test_max_tokens_past_the_context_is_refused_with_the_numbers(model: MLXModel) -> None:
    prompt = "word " * 500  # about 2,000 tokens
    with pytest.raises(
        UserError, match=r"plus max_tokens \(3000\) is \d+ tokens, more than the model's context of 4096"
    ):
        await model.request(
            [ModelRequest.user_text_prompt(prompt)], {"max_tokens": 3000}, ModelRequestParameters()
        )


async def test_the_default_max_tokens_shrinks_to_the_room_left(model: MLXModel) -> None:
    await model.load()
    prompt = "word " * 750  # about 3,000 tokens: leaves fewer than DEFAULT_MAX_TOKENS (2048) tokens of room
    plan = model._plan([ModelRequest.user_text_prompt(prompt)], {}, ModelRequestParameters())  # pyright: ignore[reportPrivateUsage]
    assert plan.options.max_tokens == 4096 - len(plan.prompt) < model_module.DEFAULT_MAX_TOKENS
