"""Opt-in: MLXModel with the real Qwen2.5-Coder-0.5B-Instruct (set PYDANTIC_MLX_REAL_MODEL; never in CI).

Through `mlx_lm.server` + `OpenAIChatModel` this model made no structured tool calls at all: it
writes its calls as JSON in a ```json fence. With MLXModel the agent must call the tools and use
their results.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, ToolReturnPart

from pydantic_mlx import MLXModel

pytestmark = [pytest.mark.anyio, pytest.mark.real_model]

SYSTEM_PROMPT = "You are a coding assistant working in a project folder. Use the tools to do the task."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def real_model(real_model_path: Path) -> MLXModel:
    return MLXModel(real_model_path)


def read_file(ctx: RunContext[Path], path: str) -> str:
    """Read a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
    """
    target = ctx.deps / path
    return target.read_text() if target.is_file() else f"error: no such file: {path}"


def write_file(ctx: RunContext[Path], path: str, content: str) -> str:
    """Create or replace a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
        content: The complete new content of the file.
    """
    (ctx.deps / path).write_text(content)
    return f"wrote {len(content)} characters to {path}"


def run_command(ctx: RunContext[Path], command: str) -> str:
    """Run a shell command in the project folder and return its exit code and output.

    Args:
        command: The command line to run.
    """
    done = subprocess.run(command, shell=True, cwd=ctx.deps, capture_output=True, text=True, timeout=60)
    return f"exit code {done.returncode}\n{done.stdout}{done.stderr}"


def coding_agent(model: MLXModel) -> Agent[Path, str]:
    return Agent(
        model,
        deps_type=Path,
        system_prompt=SYSTEM_PROMPT,
        tools=[read_file, write_file, run_command],
        model_settings={"max_tokens": 256},
    )


def calls(messages: list[object]) -> list[ToolCallPart]:
    return [
        p for m in messages if isinstance(m, ModelResponse) for p in m.parts if isinstance(p, ToolCallPart)
    ]


def returns(messages: list[object]) -> list[ToolReturnPart]:
    return [
        p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)
    ]


async def test_reads_a_file_and_uses_its_content(real_model: MLXModel, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("The secret word is pineapple.\n")
    result = await coding_agent(real_model).run("What does the file notes.txt say?", deps=tmp_path)
    messages = result.all_messages()
    read = [c for c in calls(messages) if c.tool_name == "read_file"]
    assert read, f"no read_file call in {messages}"
    assert read[0].args_as_dict()["path"].endswith("notes.txt")
    assert any("pineapple" in str(r.content) for r in returns(messages))
    assert "pineapple" in result.output.lower()


async def test_runs_a_command(real_model: MLXModel, tmp_path: Path) -> None:
    (tmp_path / "alpha.py").write_text("print('a')\n")
    result = await coding_agent(real_model).run(
        "Run the command `ls` and tell me which files exist.", deps=tmp_path
    )
    messages = result.all_messages()
    assert any(c.tool_name == "run_command" for c in calls(messages)), messages
    assert any("alpha.py" in str(r.content) for r in returns(messages))


async def test_streamed_run_calls_the_tool(real_model: MLXModel, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("The secret word is pineapple.\n")
    async with coding_agent(real_model).run_stream(
        "What does the file notes.txt say?", deps=tmp_path
    ) as result:
        text = "".join([delta async for delta in result.stream_text(delta=True)])
    assert any(c.tool_name == "read_file" for c in calls(result.all_messages()))
    assert "```" not in text  # the fenced call never leaks into the answer
