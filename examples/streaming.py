"""Stream an answer from a local MLX model as it is generated.

    python examples/streaming.py "Explain Python generators in three sentences."
    python examples/streaming.py "..." --model /path/to/mlx/model

Tool calls are parsed while streaming too: text is shown as it arrives, and a call never leaks
its markup into the text.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from pydantic_ai import Agent

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"


def current_time() -> str:
    """The current local date and time."""
    return datetime.now().isoformat(timespec="seconds")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="HF id or local MLX model folder")
    args = parser.parse_args()

    agent = Agent(MLXModel(args.model), tools=[current_time])
    async with agent.run_stream(args.prompt) as result:
        async for delta in result.stream_text(delta=True):
            print(delta, end="", flush=True)
    print(f"\n\n{result.usage}")


if __name__ == "__main__":
    asyncio.run(main())
