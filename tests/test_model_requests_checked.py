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
from pydantic_ai.exceptions import UnexpectedModelBehavior
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
    render_prompt = model_module.render_prompt

    def recording(tokenizer: Any, messages: Any, tools: Any, **kwargs: Any) -> list[int]:
        rendered.append([t.name for t in tools])
        return render_prompt(tokenizer, messages, tools, **kwargs)

    monkeypatch.setattr(model_module, "render_prompt", recording)

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
