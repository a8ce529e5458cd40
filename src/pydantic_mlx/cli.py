"""The `pydantic-mlx` command line. One small function per subcommand."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEMO_SCENARIOS = ("tool_call_tags", "tool_call_json_fence")
"""The demo's agent runs: a call in Qwen's `<tool_call>` form, then one written as a bare ```json fence."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pydantic-mlx` command."""
    parser = argparse.ArgumentParser(prog="pydantic-mlx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="build the tiny demo model (first run only) and run a PydanticAI agent with tools on it",
        description="Build (or load from the cache) the tiny MLX demo model, then run PydanticAI agents "
        "whose model calls a tool, gets its result and answers.",
    )
    demo.add_argument("--cache-dir", type=Path, default=None, help="where the model is cached")
    demo.set_defaults(run=run_demo)

    args = parser.parse_args(argv)
    return args.run(args)


def run_demo(args: argparse.Namespace) -> int:
    """`pydantic-mlx demo`: real agent runs, with real tools, on the tiny model."""
    from pydantic_ai.messages import ModelResponse, ToolCallPart, ToolReturnPart

    from . import MLXModel
    from .demo import build_demo_model, scenario

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    print("Preparing the demo model (built and trained on first use, then cached)...", file=sys.stderr)
    started = time.perf_counter()
    path = build_demo_model(args.cache_dir, progress=progress)
    print(f"Model ready in {time.perf_counter() - started:.1f} s: {path}\n")

    model = MLXModel(path)
    for name in DEMO_SCENARIOS:
        case = scenario(name)
        print(f"▶ {case.prompt}    [scenario {name}]")
        result = case.agent(model).run_sync(case.prompt)
        for message in result.all_messages():
            for part in message.parts:
                if isinstance(message, ModelResponse) and isinstance(part, ToolCallPart):
                    print(f"  tool call   {part.tool_name}({part.args_as_json_str()})")
                elif isinstance(part, ToolReturnPart):
                    print(f"  result      {_one_line(part.model_response_str())}")
        print(f"  answer      {_one_line(str(result.output))}\n")
    return 0


def _one_line(text: Any) -> str:
    return str(text).replace("\n", "\\n")


if __name__ == "__main__":
    raise SystemExit(main())
