"""Concurrent requests on one loaded model, four ways side by side in one run:

1. `MLXModel(batching=True)`: concurrent requests share every forward pass (continuous batching);
2. `MLXModel(batching=False)`: the same requests, generated one at a time;
3. `mlx_lm.server` (its own batching) + pydantic-ai `OpenAIChatModel`, concurrent HTTP requests;
4. mlx-lm's `batch_generate` on the same prompts, in-process (no agent layer at all);
5. the model's forward passes alone, batched, greedy argmax, nothing else (no sampling settings,
   no stop checks, no text), decode steps only (prefill not timed): the ceiling for any engine
   that runs this model on this machine.

Each run sends N requests at once (N = 4 and 8 by default), each a different question under the
same system prompt, each generating exactly `--tokens` tokens (end-of-turn suppressed by a logit
bias, greedy). Variants alternate within every round; round 0 is a full-length warm-up. Prints aggregate
tokens/s, the ratios (targets at 4 concurrent: batched >= 1.5x the server and >= 2.3x serial) and
per-request latency (target: batched no worse than the server), then what share of the ceiling
each path reaches: the server batches with the same mlx-lm engine, so "1.5x the server" is only
possible where the server reaches less than 1/1.5 of the ceiling.

`--natural-stops` sends no logit bias: each request ends at its end-of-turn token or after
`--tokens`, so requests differ in length (greedy: the same lengths in every variant). A logit bias
is a per-row logits processor in mlx-lm's batch generation (and the server's), which MLXModel
avoids; this mode measures the paths without that difference.

    python benchmarks/concurrency.py [--model PATH] [--tokens 64] [--concurrency 4 8] [--rounds 2]
                                     [--no-server] [--natural-stops]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model. The server path needs
the bench extra (`pip install -e ".[bench]"`); it listens on 127.0.0.1 only and is stopped at the end.
On Linux preload OpenBLAS for realistic numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
from _shared import check_server_client, default_model, free_port, start_server, stop_server
from mlx_lm.generate import batch_generate
from mlx_lm.models.cache import BatchKVCache, make_prompt_cache
from mlx_lm.sample_utils import make_logits_processors
from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelMessage, ModelRequest, SystemPromptPart, UserPromptPart
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt

SYSTEM_PROMPT = "You are a concise coding assistant. Answer in plain text with short code examples."

QUESTIONS = [
    "How do I reverse a string in Python?",
    "What is a context manager and when should I write one?",
    "How do I read a JSON file into a dict?",
    "What is the difference between a list and a tuple?",
    "How do I loop over the files of a folder in bash?",
    "Explain recursion with a small example.",
    "What does git rebase do compared to git merge?",
    "How do I sort a dict by its values?",
    "What is a Python generator?",
    "How do I time a function call?",
    "What is the GIL?",
    "How do I write a unit test with pytest?",
    "What is a dataclass?",
    "How do I parse command line arguments?",
    "What is asyncio.gather for?",
    "How do I pretty-print JSON?",
]

VARIANTS = (
    "MLXModel batched",
    "MLXModel serial",
    "mlx_lm.server + OpenAIChatModel",
    "mlx-lm batch_generate",
    "model forward only (ceiling)",
)


def messages_for(round_id: int, n: int) -> list[list[ModelMessage]]:
    """N different conversations, new in every round (only the system prompt is shared)."""
    return [
        [
            ModelRequest(
                parts=[
                    SystemPromptPart(SYSTEM_PROMPT),
                    UserPromptPart(f"(ticket {round_id}-{i}) {QUESTIONS[i % len(QUESTIONS)]}"),
                ]
            )
        ]
        for i in range(n)
    ]


@dataclass
class Run:
    seconds: float
    latencies: list[float]
    tokens: int
    cpu_seconds: float | None = None
    """CPU time of this process and the server's during the run (Linux; None elsewhere)."""


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU time used so far by these processes, from /proc (Linux only).

    On a shared machine wall time depends on what else runs; tokens per CPU second do not, so
    both are printed. The server's process is counted for every variant (it idles for the others).
    """
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def concurrent_requests(
    model: Model, conversations: list[list[ModelMessage]], settings: ModelSettings
) -> Run:
    params = ModelRequestParameters(allow_text_output=True)
    started = time.perf_counter()

    async def one(messages: list[ModelMessage]) -> tuple[float, int]:
        response = await model_request(
            model, messages, model_settings=settings, model_request_parameters=params
        )
        return time.perf_counter() - started, response.usage.output_tokens

    results = await asyncio.gather(*(one(m) for m in conversations))
    return Run(time.perf_counter() - started, [r[0] for r in results], sum(r[1] for r in results))


def raw_batch(model: MLXModel, conversations: list[list[ModelMessage]], tokens: int, natural: bool) -> Run:
    loaded = model.loaded
    prompts = [render_prompt(loaded.tokenizer, m, []) for m in conversations]  # type: ignore[arg-type]
    bias = {t: -1000.0 for t in loaded.tokenizer.eos_token_ids}
    started = time.perf_counter()
    response = batch_generate(
        loaded.model,
        loaded.tokenizer,
        prompts,
        max_tokens=tokens,
        logits_processors=None if natural else make_logits_processors(logit_bias=bias),
        return_token_ids=True,
    )
    seconds = time.perf_counter() - started
    return Run(seconds, [seconds] * len(prompts), sum(len(t) for t in response.token_ids or []))


def forward_only(model: MLXModel, conversations: list[list[ModelMessage]], tokens: int) -> Run:
    """The same prompts through the model's forward passes alone: prefilled together (left-padded,
    as mlx-lm's batch generation does), then `tokens` decode steps taking the argmax with
    end-of-turn masked. Each step's tokens are read back (any engine must, to stream them) after
    the next step is queued (as mlx-lm does). Only the decode steps are timed: not even an engine
    that had every prompt cached does less work per token on this model."""
    loaded = model.loaded
    prompts = [render_prompt(loaded.tokenizer, m, []) for m in conversations]  # type: ignore[arg-type]
    masked = mx.array(sorted(loaded.tokenizer.eos_token_ids))
    longest = max(len(p) for p in prompts)
    padding = [longest - len(p) for p in prompts]
    batch = [BatchKVCache(padding) for _ in make_prompt_cache(loaded.model)]
    padded = mx.array([[0] * pad + prompt for pad, prompt in zip(padding, prompts, strict=True)])

    def pick(logits: mx.array) -> mx.array:
        return mx.argmax(logits[:, -1, :].at[:, masked].add(-1e9), axis=-1)

    current = pick(loaded.model(padded, cache=batch))
    mx.eval(current)
    started = time.perf_counter()
    generated = 0
    for _ in range(tokens):
        following = pick(loaded.model(current[:, None], cache=batch))
        mx.async_eval(following)
        generated += len(current.tolist())
        current = following
    seconds = time.perf_counter() - started
    return Run(seconds, [seconds] * len(prompts), generated)


async def main(source: str, args: argparse.Namespace) -> None:
    path = Path(source) if Path(source).exists() else source
    batched = MLXModel(path, batching=True)
    serial = MLXModel(path, batching=False)
    await batched.load()
    eos = sorted(batched.loaded.tokenizer.eos_token_ids)
    server = None
    server_model: Model | None = None
    if not args.no_server:
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        port = free_port()
        server = start_server(source, port)
        provider = OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        server_model = OpenAIChatModel(source, provider=provider)

    def settings_for(tokens: int) -> ModelSettings:
        if args.natural_stops:
            return {"max_tokens": tokens, "temperature": 0.0}
        return {"max_tokens": tokens, "temperature": 0.0, "logit_bias": {str(t): -1000 for t in eos}}

    def paths(tokens: int) -> dict[str, Callable[[list[list[ModelMessage]]], Awaitable[Run]]]:
        settings = settings_for(tokens)
        chosen: dict[str, Callable[[list[list[ModelMessage]]], Awaitable[Run]]] = {
            "MLXModel batched": lambda c: concurrent_requests(batched, c, settings),
            "MLXModel serial": lambda c: concurrent_requests(serial, c, settings),
            "mlx-lm batch_generate": lambda c: batched.loaded.run(
                lambda: raw_batch(batched, c, tokens, args.natural_stops)
            ),
        }
        if not args.natural_stops:  # the ceiling generates exactly `tokens` per request
            chosen["model forward only (ceiling)"] = lambda c: batched.loaded.run(
                lambda: forward_only(batched, c, tokens)
            )
        if server_model is not None:
            chosen["mlx_lm.server + OpenAIChatModel"] = lambda c: concurrent_requests(
                server_model, c, settings
            )
        return chosen

    try:
        length = f"{'at end-of-turn or ' if args.natural_stops else ''}{args.tokens} tokens per request"
        print(f"model: {source}; {length}, {args.rounds} rounds, variants alternate")
        for n in args.concurrency:
            runs: dict[str, list[Run]] = {}
            # Round 0 warms every path up at full length: on MLX's CUDA backend the first steps at new
            # batch sizes and cache lengths compile kernels, and a 4-token warm-up left that to round
            # 1 (MLXModel batched measured 0.6x batch_generate at 4 requests on an H100, 1.04x warm).
            for round_id in range(args.rounds + 1):
                for name, run in paths(args.tokens).items():
                    pids = [os.getpid(), *([server.pid] if server is not None else [])]
                    cpu_before = cpu_seconds(pids)
                    result = await run(messages_for(round_id * 100 + n, n))
                    cpu_after = cpu_seconds(pids)
                    if cpu_before is not None and cpu_after is not None:
                        result.cpu_seconds = cpu_after - cpu_before
                    if round_id:
                        if not args.natural_stops and result.tokens != n * args.tokens:
                            raise RuntimeError(
                                f"{name} generated {result.tokens} tokens, not {n * args.tokens}"
                            )
                        runs.setdefault(name, []).append(result)
            report(n, args.tokens, runs)
    finally:
        if server is not None:
            stop_server(server)


def report(n: int, tokens: int, runs: dict[str, list[Run]]) -> None:
    generated = ", ".join(f"{name} {sum(r.tokens for r in rs)}" for name, rs in runs.items())
    print(f"\n{n} concurrent requests x {tokens} tokens at most (tokens generated: {generated})")
    print(
        f"{'variant':<34}{'tok/s':>8}{'x serial':>10}{'x server':>10}"
        f"{'tok/CPU-s':>11}{'x serial':>10}{'x server':>10}{'latency s (median/max)':>25}"
    )
    wall = {name: statistics.median(r.tokens / r.seconds for r in rs) for name, rs in runs.items()}
    cpu = {
        name: statistics.median(r.tokens / r.cpu_seconds for r in rs if r.cpu_seconds)
        for name, rs in runs.items()
        if all(r.cpu_seconds for r in rs)
    }
    for name in VARIANTS:
        if name not in runs:
            continue
        latencies = [t for r in runs[name] for t in r.latencies]
        print(
            f"{name:<34}{wall[name]:>8.1f}{ratios(wall, name)}"
            + (f"{cpu[name]:>11.2f}{ratios(cpu, name)}" if name in cpu else f"{'-':>11}{'':>20}")
            + f"{statistics.median(latencies):>15.2f} / {max(latencies):.2f}"
        )
    ceiling = wall.get(VARIANTS[4])
    if ceiling:
        shares = ", ".join(f"{name} {wall[name] / ceiling:.2f}" for name in VARIANTS[:4] if name in wall)
        print(f"share of the ceiling's tokens/s: {shares}")
        if VARIANTS[2] in wall:
            needed = 1.5 * wall[VARIANTS[2]] / ceiling
            print(f"1.5x the server here would need {needed:.2f} of the ceiling")


def ratios(rates: dict[str, float], name: str) -> str:
    """The rate of `name` over the serial and the server variants' (a dash when one is missing)."""
    cells = [rates[name] / rates[base] if base in rates else None for base in VARIANTS[1:3]]
    return "".join(f"{c:>10.2f}" if c is not None else f"{'-':>10}" for c in cells)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--natural-stops", action="store_true")
    arguments = parser.parse_args()
    check_server_client(arguments.no_server)
    asyncio.run(main(arguments.model or default_model(), arguments))
