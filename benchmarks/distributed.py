"""Throughput of a model split across two processes (mlx.launch, ring backend, 127.0.0.1) against one.

Every path generates the same number of tokens from the same prompt (greedy, end-of-turn
suppressed with a logit bias), the whole prompt prefilled each round:

    one process    MLXModel (one request at a time, as a distributed model)   raw mlx_lm stream_generate
    two processes  MLXModel(distributed=True), tensor and pipeline sharding   raw mlx_lm on the same shards

The raw two-process path is how mlx-lm's own examples run a sharded model: every rank runs
`stream_generate` on the same prompt and samples the same tokens, nothing sent between them but
the model's own collectives. Ours sends rank 0's token and a word of protocol before every step
(docs/distributed.md). Prints prefill and decode tokens/s per path (the best of the rounds: on a
shared machine the slower rounds measure the neighbours) and the ratios.

    python benchmarks/distributed.py [--model PATH] [--tokens 128] [--rounds 3]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model. Two processes on one
machine share its cores and memory bandwidth: this measures what the protocol costs and what
splitting does to speed, not the gain of a model that only fits on two machines. On Linux, preload
OpenBLAS: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _shared import default_model, free_port

SYSTEM_PROMPT = "You are a helpful coding assistant."
USER_PROMPT = "Explain in detail how a hash map works, with an example in Python."


def prompt_and_settings(tokenizer: Any, tokens: int) -> tuple[list[int], dict[str, Any]]:
    """The prompt MLXModel renders for the request, and settings that generate exactly `tokens`."""
    from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart

    from pydantic_mlx._chat import render_prompt

    prompt = render_prompt(
        tokenizer, [ModelRequest(parts=[SystemPromptPart(SYSTEM_PROMPT), UserPromptPart(USER_PROMPT)])], []
    )
    eos = sorted(tokenizer.eos_token_ids)
    return prompt, {"max_tokens": tokens, "logit_bias": {str(t): -1000.0 for t in eos}}


async def measure_ours(model: Any, tokens: int, rounds: int) -> dict[str, float]:
    """Prefill and decode tokens/s of MLXModel (best rounds), from the request's own timings."""
    from pydantic_ai.direct import model_request
    from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart

    await model.load()
    _, settings = prompt_and_settings(model.loaded.tokenizer, tokens)
    message = ModelRequest(parts=[SystemPromptPart(SYSTEM_PROMPT), UserPromptPart(USER_PROMPT)])
    prefill, decode = [], []
    for round_ in range(rounds + 1):
        # Every rank starts from an empty cache: rank 0 forgets, and the ranks agree on what all hold.
        model.loaded.prompt_cache.clear()
        response = await model_request(model, [message], model_settings=settings)
        details = response.provider_details or {}
        assert response.usage.output_tokens == tokens, response.usage
        if round_:  # the first round warms up
            prefill.append(details["prefilled_tokens"] / details["prefill_seconds"])
            # As mlx-lm counts: every token over the time since the first one came.
            decode.append(tokens / details["decode_seconds"])
    return {"prefill": max(prefill), "decode": max(decode)}


def measure_raw(model: Any, tokenizer: Any, tokens: int, rounds: int) -> dict[str, float]:
    """Prefill and decode tokens/s of mlx-lm's `stream_generate` (best rounds), from its own timings."""
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_logits_processors

    prompt, settings = prompt_and_settings(tokenizer, tokens)
    processors = make_logits_processors(logit_bias={int(t): v for t, v in settings["logit_bias"].items()})
    prefill, decode = [], []
    for round_ in range(rounds + 1):
        steps = stream_generate(model, tokenizer, prompt, max_tokens=tokens, logits_processors=processors)
        last = list(steps)[-1]
        assert last.generation_tokens == tokens
        if round_:
            prefill.append(last.prompt_tps)
            decode.append(last.generation_tps)
    return {"prefill": max(prefill), "decode": max(decode)}


def one_process(source: str, tokens: int, rounds: int) -> dict[str, dict[str, float]]:
    from pydantic_mlx import MLXModel

    model = MLXModel(source, batching=False)
    ours = asyncio.run(measure_ours(model, tokens, rounds))
    raw = measure_raw(model.loaded.model, model.loaded.tokenizer, tokens, rounds)
    return {"ours": ours, "raw": raw}


def worker(args: argparse.Namespace) -> None:
    """One rank of a two-process run (started by mlx.launch); rank 0 writes the results."""
    import mlx.core as mx

    from pydantic_mlx import MLXModel
    from pydantic_mlx._distributed import ShardLoader

    group = mx.distributed.init()
    if args.worker == "ours":
        model = MLXModel(args.model, distributed=group, sharding=args.sharding)
        if model.rank != 0:
            model.follow()
            return
        result = asyncio.run(measure_ours(model, args.tokens, args.rounds))
        model.close()
    else:
        # The same shards, loaded as MLXModel loads them; then mlx-lm's loop on every rank.
        shard, tokenizer = ShardLoader(group, args.sharding)(args.model)
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group))
        result = measure_raw(shard, tokenizer, args.tokens, args.rounds)
        # No rank exits while another still computes a step with it (mlx-lm's loop runs ahead).
        mx.synchronize()
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group))
        if group.rank() != 0:
            return
    Path(args.out).write_text(json.dumps(result))


def two_processes(source: str, kind: str, sharding: str, tokens: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        # Ports right after a free one; mlx.launch takes one per rank.
        command = [
            str(Path(sys.executable).parent / "mlx.launch"),
            *("-n", "2", "--backend", "ring", "--starting-port", str(free_port())),
            *("--python", sys.executable, __file__),
            *("--worker", kind, "--sharding", sharding, "--model", source),
            *("--tokens", str(tokens), "--rounds", str(rounds), "--out", str(out)),
        ]
        subprocess.run(command, check=True, cwd=Path(__file__).parent, timeout=1800)
        return json.loads(out.read_text())


def main(args: argparse.Namespace) -> None:
    source = args.model or default_model()
    print(f"model: {source}\ngenerating {args.tokens} tokens, best of {args.rounds} rounds")
    started = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    single = one_process(source, args.tokens, args.rounds)
    results["1 process: MLXModel"] = single["ours"]
    results["1 process: raw mlx_lm"] = single["raw"]
    for sharding in ("tensor", "pipeline"):
        results[f"2 processes, {sharding}: MLXModel"] = two_processes(
            source, "ours", sharding, args.tokens, args.rounds
        )
        results[f"2 processes, {sharding}: raw mlx_lm"] = two_processes(
            source, "raw", sharding, args.tokens, args.rounds
        )
    base = results["1 process: MLXModel"]
    print(f"\n{'path':<34}{'prefill tok/s':>14}{'decode tok/s':>14}{'decode vs 1 process':>21}")
    for name, rates in results.items():
        ratio = rates["decode"] / base["decode"]
        print(f"{name:<34}{rates['prefill']:>14.1f}{rates['decode']:>14.1f}{ratio:>21.3f}")
    print("\nMLXModel / raw mlx_lm on the same processes (decode):")
    for where in ("1 process", "2 processes, tensor", "2 processes, pipeline"):
        ours, raw = results[f"{where}: MLXModel"], results[f"{where}: raw mlx_lm"]
        print(f"  {where:<24}{ours['decode'] / raw['decode']:.3f}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=("ours", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--sharding", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments)
    else:
        main(arguments)
