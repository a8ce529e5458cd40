"""Opt-in: MLXModel with the real Qwen2.5-Coder-0.5B-Instruct (set PYDANTIC_MLX_REAL_MODEL; never in CI).

Through `mlx_lm.server` + `OpenAIChatModel` this model made no structured tool calls at all: it
writes its calls as JSON in a ```json fence. With MLXModel the agent must call the tools and use
their results.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from pydantic_ai import Agent, RunContext, capture_run_messages
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart

from pydantic_mlx import MLXModel

pytestmark = [pytest.mark.anyio, pytest.mark.real_model]

SYSTEM_PROMPT = "You are a coding assistant working in a project folder. Use the tools to do the task."


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
        # The 0.5B model sometimes copies schema keys ("required": [...]) into its arguments; the
        # agent's validation sends it a retry, which it needs room for.
        retries=3,
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
    with capture_run_messages() as messages, contextlib.suppress(UnexpectedModelBehavior):
        await coding_agent(real_model).run("Read the file notes.txt and tell me what it says.", deps=tmp_path)
    # The model writes its call as fenced JSON; MLXModel makes it a structured call...
    read = [c for c in calls(messages) if c.tool_name == "read_file"]
    assert read, f"no read_file call in {messages}"
    assert str(read[0].args_as_dict().get("path", "")).endswith("notes.txt")
    # ...which the agent runs (after at most a few validation retries), feeding the result back.
    assert any("pineapple" in str(r.content) for r in returns(messages)), messages


async def test_runs_a_command(real_model: MLXModel, tmp_path: Path) -> None:
    (tmp_path / "alpha.py").write_text("print('a')\n")
    with capture_run_messages() as messages, contextlib.suppress(UnexpectedModelBehavior):
        await coding_agent(real_model).run(
            "Run the command `ls` and tell me which files exist.", deps=tmp_path
        )
    assert any(c.tool_name == "run_command" for c in calls(messages)), messages
    assert any("alpha.py" in str(r.content) for r in returns(messages)), messages


async def test_streamed_run_calls_the_tool(real_model: MLXModel, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("The secret word is pineapple.\n")
    with capture_run_messages() as messages, contextlib.suppress(UnexpectedModelBehavior):
        async with coding_agent(real_model).run_stream(
            "Read the file notes.txt and tell me what it says.", deps=tmp_path
        ) as result:
            async for _ in result.stream_text(delta=True):
                pass
    assert any(c.tool_name == "read_file" for c in calls(messages)), messages
    # A fenced call never stays in the text as an answer.
    texts = [
        p.content
        for m in messages
        if isinstance(m, ModelResponse)
        for p in m.parts
        if isinstance(p, TextPart)
    ]
    assert not any('"name": "read_file"' in t for t in texts), texts


async def test_control_tokens_include_the_ones_only_flagged_special(real_model: MLXModel) -> None:
    # Qwen2.5's `all_special_tokens` lists only <|im_end|> and <|endoftext|>; a model that writes
    # <|im_start|> or a fill-in-the-middle token must still not hand it to the user as text.
    await real_model.load()
    tokens = real_model.loaded.control_tokens
    assert {"<|im_start|>", "<|im_end|>", "<|fim_middle|>", "<|endoftext|>"} <= tokens
    assert "<tool_call>" not in tokens  # an added token, not a special one: the parser's marker
