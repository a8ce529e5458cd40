"""The performance table of docs/performance.md in one run: MLXModel against raw mlx-lm, side by side.

1. One request (`--tokens`, 128 by default): raw `mlx_lm.stream_generate`, `MLXModel` `run` and
   `run_stream` (the default, batching on), and `run` with `batching=False`. Targets: the default
   >= 0.98x raw and >= 0.95x `batching=False`.
2. A 4-turn tool conversation (32 tokens a turn): raw `stream_generate` with a hand-kept KV cache
   against `MLXModel` (its prompt cache). Target: <= 1.05x raw.
3. 4 and 8 concurrent requests (64 tokens each): `MLXModel` batched against mlx-lm's
   `batch_generate` on the same prompts, and the model's forward passes alone (the ceiling).
   Target: >= 0.98x `batch_generate`.

Every path generates the same tokens (end-of-turn suppressed by a logit bias, greedy); paths
alternate within each round, round 0 warms up at full length, and the medians are printed. The
same model's per-token overhead weighs most where tokens are fast: run it on Apple silicon or on an
NVIDIA GPU (MLX's CUDA wheel in place of the CPU one: docs/performance.md, "Running MLX on an NVIDIA
GPU"); on a CPU, the tiny demo model's ~1 ms tokens are a proxy.

    python benchmarks/performance.py [--model PATH] [--tokens 128] [--rounds 5]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model. On Linux without a GPU,
preload OpenBLAS for realistic numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import conversation
import mlx.core as mx
from _shared import default_model
from concurrency import concurrent_requests, forward_only, messages_for, raw_batch
from mlx_lm import stream_generate
from mlx_lm.sample_utils import make_logits_processors
from pydantic_ai import Agent
from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelMessage, ModelRequest, SystemPromptPart, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt

SYSTEM_PROMPT = "You are a helpful coding assistant."
USER_PROMPT = "Explain in detail how a hash map works, with an example in Python."


async def measure(
    paths: dict[str, Callable[[Any], Awaitable[float]]], rounds: int, argument: Callable[[int], Any]
) -> dict[str, float]:
    """Median of each path's figure over `rounds` rounds (after a warm-up round), paths alternating."""
    figures: dict[str, list[float]] = {name: [] for name in paths}
    for round_id in range(rounds + 1):
        for name, path in paths.items():
            figure = await path(argument(round_id))
            if round_id:
                figures[name].append(figure)
    return {name: statistics.median(values) for name, values in figures.items()}


def table(title: str, unit: str, figures: dict[str, float], base: str) -> None:
    print(f"\n{title}\n{'path':<32}{unit:>12}{'x ' + base:>34}")
    for name, figure in figures.items():
        print(f"{name:<32}{figure:>12.3f}{figure / figures[base]:>34.3f}")


async def main(source: str, args: argparse.Namespace) -> None:
    model = MLXModel(Path(source) if Path(source).exists() else source)
    await model.load()
    loaded = model.loaded
    unbatched = MLXModel(loaded.source, batching=False)
    tokenizer = loaded.tokenizer
    eos = sorted(tokenizer.eos_token_ids)
    no_eos = {str(t): -1000 for t in eos}
    print(f"model: {source}; mlx {mx.__version__} on {mx.default_device()}; {args.rounds} rounds")

    # 1. One request.
    n = args.tokens
    settings: ModelSettings = {"max_tokens": n, "logit_bias": no_eos}
    agent, serial_agent = (
        Agent(model, system_prompt=SYSTEM_PROMPT),
        Agent(unbatched, system_prompt=SYSTEM_PROMPT),
    )
    prompt = render_prompt(
        tokenizer,  # type: ignore[arg-type]
        [ModelRequest(parts=[SystemPromptPart(SYSTEM_PROMPT), UserPromptPart(USER_PROMPT)])],
        [],
    )

    async def timed(generate: Callable[[], Awaitable[int]]) -> float:
        loaded.prompt_cache.clear()  # every path prefills the whole prompt
        started = time.perf_counter()
        count = await generate()
        elapsed = time.perf_counter() - started
        assert count == n, f"generated {count} tokens, not {n}"
        return n / elapsed

    async def raw() -> int:
        processors = make_logits_processors(logit_bias={t: -1000.0 for t in eos})
        return sum(
            1
            for _ in stream_generate(
                loaded.model, tokenizer, prompt, max_tokens=n, logits_processors=processors
            )
        )

    async def run(which: Agent[None, str]) -> int:
        return (await which.run(USER_PROMPT, model_settings=settings)).usage.output_tokens

    async def run_stream() -> int:
        async with agent.run_stream(USER_PROMPT, model_settings=settings) as result:
            async for _ in result.stream_text(delta=True):
                pass
        return result.usage.output_tokens

    one = await measure(
        {
            "raw stream_generate": lambda _: timed(raw),
            "MLXModel run": lambda _: timed(lambda: run(agent)),
            "MLXModel run_stream": lambda _: timed(run_stream),
            "run, batching=False": lambda _: timed(lambda: run(serial_agent)),
        },
        args.rounds,
        lambda _: None,
    )
    table(f"one request, {n} tokens", "tokens/s", one, "raw stream_generate")
    print(f"{'MLXModel run x batching=False':<32}{one['MLXModel run'] / one['run, batching=False']:>46.3f}")

    # 2. A 4-turn conversation.
    turn_settings: ModelSettings = {"max_tokens": 32, "temperature": 0.0, "logit_bias": no_eos}
    params = ModelRequestParameters(function_tools=conversation.TOOLS, allow_text_output=True)
    hand_kept = conversation.RawReuse(model)

    async def converse(turn: Callable[[list[ModelMessage]], Awaitable[object]], round_id: int) -> float:
        started = time.perf_counter()
        for messages in conversation.conversation(round_id, 4):
            await turn(messages)
        return time.perf_counter() - started

    async def raw_turn(messages: list[ModelMessage]) -> None:
        hand_kept.turn(messages, turn_settings)

    async def model_turn(messages: list[ModelMessage]) -> object:
        return await model_request(
            model, messages, model_settings=turn_settings, model_request_parameters=params
        )

    talk = await measure(
        {
            "raw + hand-kept KV cache": lambda r: converse(raw_turn, r),
            "MLXModel": lambda r: converse(model_turn, r),
        },
        args.rounds,
        lambda round_id: round_id,
    )
    table("4-turn conversation, 32 tokens a turn", "s", talk, "raw + hand-kept KV cache")

    # 3. Concurrent requests.
    batch_settings: ModelSettings = {"max_tokens": 64, "temperature": 0.0, "logit_bias": no_eos}
    for concurrency in (4, 8):

        def rate(run: Any) -> float:
            return run.tokens / run.seconds

        async def batched(conversations: list[list[ModelMessage]]) -> float:
            return rate(await concurrent_requests(model, conversations, batch_settings))

        async def in_mlx_lm(conversations: list[list[ModelMessage]]) -> float:
            return rate(await loaded.run(lambda: raw_batch(model, conversations, 64, False)))

        async def ceiling(conversations: list[list[ModelMessage]]) -> float:
            return rate(await loaded.run(lambda: forward_only(model, conversations, 64)))

        together = await measure(
            {"MLXModel batched": batched, "mlx-lm batch_generate": in_mlx_lm, "model forward only": ceiling},
            args.rounds,
            lambda round_id, c=concurrency: messages_for(round_id * 100 + c, c),
        )
        table(f"{concurrency} concurrent x 64 tokens", "tokens/s", together, "mlx-lm batch_generate")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.model or default_model(), arguments))
