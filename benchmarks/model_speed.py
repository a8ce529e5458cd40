"""Generation speed of MLXModel (`run` and `run_stream`) against raw `mlx_lm.stream_generate`.

Same model, same prompt tokens, same number of generated tokens (the end-of-turn token is
suppressed with a logit bias on every path), runs alternating in one process; the prompt cache is
cleared before each MLXModel run so every path prefills the whole prompt. Prints tokens/s per path
and the ratios (target: >= 0.98).

    python benchmarks/model_speed.py [--model PATH_OR_ID] [--tokens 64] [--rounds 3]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model (on which per-token
overhead weighs far more than on a real model). On Linux, preload OpenBLAS for realistic numbers:
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from _shared import default_model
from mlx_lm import stream_generate
from mlx_lm.sample_utils import make_logits_processors
from pydantic_ai import Agent
from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart
from pydantic_ai.settings import ModelSettings

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt

SYSTEM_PROMPT = "You are a helpful coding assistant."
USER_PROMPT = "Explain in detail how a hash map works, with an example in Python."


async def main(source: str, args: argparse.Namespace) -> None:
    model = MLXModel(Path(source) if Path(source).exists() else source)
    await model.load()
    loaded = model.loaded
    tokenizer = loaded.tokenizer
    n = args.tokens
    eos = sorted(tokenizer.eos_token_ids)
    settings: ModelSettings = {"max_tokens": n, "logit_bias": {str(t): -1000 for t in eos}}
    agent = Agent(model, system_prompt=SYSTEM_PROMPT)
    # The same loaded weights, generating without the batch scheduler (`batching=False`).
    serial_agent = Agent(MLXModel(model.loaded.source, batching=False), system_prompt=SYSTEM_PROMPT)
    prompt = render_prompt(
        tokenizer,  # type: ignore[arg-type]
        [ModelRequest(parts=[SystemPromptPart(SYSTEM_PROMPT), UserPromptPart(USER_PROMPT)])],
        [],
    )

    def raw() -> int:
        processors = make_logits_processors(logit_bias={t: -1000.0 for t in eos})
        count = 0
        for _ in stream_generate(loaded.model, tokenizer, prompt, max_tokens=n, logits_processors=processors):
            count += 1
        return count

    async def run() -> int:
        result = await agent.run(USER_PROMPT, model_settings=settings)
        usage = result.all_messages()[-1].usage  # type: ignore[union-attr]
        assert usage.input_tokens == len(prompt), (usage.input_tokens, len(prompt))
        return usage.output_tokens

    async def run_unbatched() -> int:
        result = await serial_agent.run(USER_PROMPT, model_settings=settings)
        return result.usage.output_tokens

    async def run_stream() -> int:
        async with agent.run_stream(USER_PROMPT, model_settings=settings) as result:
            async for _ in result.stream_text(delta=True):
                pass
        return result.usage.output_tokens

    async def timed(fn: Callable[[], Coroutine[Any, Any, int]] | Callable[[], int]) -> float:
        loaded.prompt_cache.clear()
        started = time.perf_counter()
        out = fn()
        count = await out if asyncio.iscoroutine(out) else out
        elapsed = time.perf_counter() - started
        assert count == n, f"{fn.__name__} generated {count} tokens, not {n}"  # type: ignore[union-attr]
        return n / elapsed

    paths: dict[str, Any] = {
        "raw stream_generate": raw,
        "MLXModel run": run,
        "MLXModel run_stream": run_stream,
        "run, batching=False": run_unbatched,
    }
    print(f"model: {source}\nprompt: {len(prompt)} tokens, generating {n} tokens, {args.rounds} rounds")
    for fn in paths.values():  # warm-up (compilation, allocator)
        await timed(fn)
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            rates[name].append(await timed(fn))
    base = statistics.median(rates["raw stream_generate"])
    print(f"{'path':<22}{'tokens/s (median)':>20}{'ratio vs raw':>15}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<22}{median:>20.2f}{median / base:>15.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.model or default_model(), arguments))
