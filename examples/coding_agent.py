"""A small coding agent: a local MLX model that reads, writes and runs things in one folder.

    python examples/coding_agent.py "Add a test for utils.slugify and run it" --workdir ./myproject
    python examples/coding_agent.py "..." --model mlx-community/Qwen2.5-Coder-7B-Instruct-4bit

The tools only touch files under --workdir; `run_command` runs there with a timeout. Every tool
call and result is printed as the agent works.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, ToolReturnPart

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"

SYSTEM_PROMPT = (
    "You are a coding agent working in a project folder. Use the tools: read files before changing "
    "them, write complete files, run commands to check your work. Answer briefly when done."
)


def inside(root: Path, path: str) -> Path:
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{path} is outside the project folder")
    return target


def read_file(ctx: RunContext[Path], path: str) -> str:
    """Read a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
    """
    target = inside(ctx.deps, path)
    return target.read_text() if target.is_file() else f"error: no such file: {path}"


def write_file(ctx: RunContext[Path], path: str, content: str) -> str:
    """Create or replace a text file of the project.

    Args:
        path: Path of the file, relative to the project folder.
        content: The complete new content of the file.
    """
    target = inside(ctx.deps, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return f"wrote {len(content)} characters to {path}"


def run_command(ctx: RunContext[Path], command: str) -> str:
    """Run a shell command in the project folder; returns the exit code and output.

    Args:
        command: The command line, for example `python -m pytest -q` or `ls`.
    """
    done = subprocess.run(command, shell=True, cwd=ctx.deps, capture_output=True, text=True, timeout=120)
    return f"exit code {done.returncode}\n{done.stdout}{done.stderr}"[-4000:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task")
    parser.add_argument("--workdir", type=Path, default=Path.cwd())
    parser.add_argument("--model", default=DEFAULT_MODEL, help="HF id or local MLX model folder")
    args = parser.parse_args()

    agent = Agent(
        MLXModel(args.model),
        deps_type=Path,
        system_prompt=SYSTEM_PROMPT,
        tools=[read_file, write_file, run_command],
        model_settings={"max_tokens": 1024},
    )
    result = agent.run_sync(args.task, deps=args.workdir.resolve())
    for message in result.all_messages():
        for part in message.parts:
            if isinstance(message, ModelResponse) and isinstance(part, ToolCallPart):
                print(f"→ {part.tool_name}({part.args_as_json_str()})")
            elif isinstance(message, ModelRequest) and isinstance(part, ToolReturnPart):
                print(f"← {str(part.content)[:300]}")
    print(result.output)
    print(f"\n{result.usage}")


if __name__ == "__main__":
    main()
