"""Stream an answer from a local MLX model as it is generated.

    python examples/streaming.py "Explain Python generators in three sentences."
    python examples/streaming.py "..." --model path/to/mlx/model
    python examples/streaming.py --demo         # offline, on the tiny demo model

Tool calls are parsed while streaming too: text is shown as it arrives, and a call never leaks
its markup into the text.

The default model (`Qwen2.5-Coder-1.5B`) is downloaded from Hugging Face on first use. `--demo`
needs no download: it streams a run of the tiny demo model, which calls a tool and then answers;
it only knows its scripted prompts (docs/demo-model.md), so it asks its own question, and its
answer is one line. A real model answers your prompt, at length.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from pydantic_ai import Agent, UserError

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "Qwen2.5-Coder-1.5B"  # the mlx-community 4-bit instruct build (MLXModel.list_aliases())


def current_time() -> str:
    """The current local date and time."""
    return datetime.now().isoformat(timespec="seconds")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt", nargs="?")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="short name, HF id or local MLX model folder")
    parser.add_argument(
        "--demo", action="store_true", help="run offline on the tiny demo model (its own prompt)"
    )
    args = parser.parse_args()

    if args.demo:
        from pydantic_mlx.demo import build_demo_model, scenario

        case = scenario("tool_call_tags")
        agent, prompt = case.agent(MLXModel(build_demo_model())), case.prompt
        print(f"[demo model] {prompt}")
    elif args.prompt is None:
        parser.error("give a prompt, or --demo")
    else:
        agent, prompt = Agent(MLXModel(args.model), tools=[current_time]), args.prompt
    async with agent.run_stream(prompt) as result:
        async for delta in result.stream_text(delta=True):
            print(delta, end="", flush=True)
    print(f"\n\n{result.usage}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except UserError as error:  # a model name, folder or download you can fix: the sentence, no traceback
        raise SystemExit(f"error: {error}") from None
