"""A small coding agent: a local MLX model that reads, writes and runs things in one folder.

    python examples/coding_agent.py "Add a test for utils.slugify and run it" --workdir ./myproject
    python examples/coding_agent.py "..." --model Qwen2.5-Coder-7B
    python examples/coding_agent.py --demo      # offline, on the tiny demo model

The tools only touch files under --workdir; `run_command` runs there with a timeout. Every tool
call and result is printed as the agent works.

The default model (`Qwen2.5-Coder-1.5B`, about 1 GB) is downloaded from Hugging Face on first use.
`--demo` needs no download: it runs the same loop, tool calls and printout on the tiny demo model,
which only knows its scripted prompts (docs/demo-model.md), so it runs its own task (reading two
files of a toy project) instead of yours. A real model is what reads, writes and runs your files.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from pydantic_ai import Agent, RunContext, UserError
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, ToolReturnPart

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "Qwen2.5-Coder-1.5B"  # the mlx-community 4-bit instruct build (MLXModel.list_aliases())

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
    parser.add_argument("task", nargs="?")
    parser.add_argument("--workdir", type=Path, default=Path.cwd())
    parser.add_argument("--model", default=DEFAULT_MODEL, help="short name, HF id or local MLX model folder")
    parser.add_argument(
        "--demo", action="store_true", help="run offline on the tiny demo model (its own task)"
    )
    args = parser.parse_args()

    if args.demo:
        from pydantic_mlx.demo import build_demo_model, scenario

        case = scenario("parallel_calls")
        print(f"[demo model] {case.prompt}")
        result = case.agent(MLXModel(build_demo_model())).run_sync(case.prompt)
    elif args.task is None:
        parser.error("give a task, or --demo")
    else:
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
    try:
        main()
    except UserError as error:  # a model name, folder or download you can fix: the sentence, no traceback
        raise SystemExit(f"error: {error}") from None
