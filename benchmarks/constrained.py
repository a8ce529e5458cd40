"""Per-token cost of grammar-constrained decoding, measured side by side in one process.

Same model and prompt (a chat with a `write_file` tool), greedy decoding, runs alternating:

- free:        no grammar;
- lazy:        the lazy tool-call processor, on output that never opens a call (the same tokens
               as `free`): what watching for triggers costs;
- forced:      `tool_choice="required"`: every token masked by the call grammar (the model
               writes a file into the `content` string).

Every path also suppresses the end-of-turn tokens and the tokens that hold a `"` (one add, before
the grammar, which still forces the quotes its syntax needs: the bias is finite, the mask -inf),
so every run is N tokens: a random model would otherwise close the `content` string within a few
dozen tokens and the forced figures would cover only the call's opening.

Prints ms/token per path and the ratios to `free` (target: forced <= 1.05 on a 100k+
vocabulary): of the medians, `paired`, the median of each round's ratio to that round's free
run (steadier where the machine's speed drifts), and `step`, the median of every token's own
time over all rounds (steadiest: a pause between two tokens moves one token, not a run), plus
the one-off costs: building llguidance's tokenizer and compiling the grammar. On a busy machine
end-to-end ratios are noisy, so the processors' own cost is also measured by replaying the
forced run's tokens through a fresh processor on logits of the model's width (mask computed,
applied and evaluated per token), and printed as a share of a free token's time.

The processors are told each sampled token (`sampled`), as `MLXModel`'s decoders tell them, so
the grammar's work runs on a worker thread; `forced, read on this thread` is the same processor
not told (it reads the tokens it is shown and computes the mask itself, as before the hook).
`--lone` adds free and forced decoding through `LoneSequence`, the decoder `MLXModel` uses for a
request alone in its batch (the default). `forced, masks from the host` is this release with no
masks kept on the device (`device_masks = 0`). `--baseline PATH` times an older `_decoding.py`
beside this one, in the same rounds (e.g. main's, saved from a checkout with
`git show main:src/pydantic_mlx/constrained/_decoding.py`). `--probes` adds free decoding plus
parts of a processor alone: the read of each sampled token, and that plus a fixed bias kept on
the device. Told tokens go to a worker thread only where the model runs on a GPU (on MLX's CPU
backend the processor reads them itself: `GrammarLogitsProcessor.worker`).

    python benchmarks/constrained.py [--model PATH] [--format hermes] [--tokens 64] [--rounds 3]
        [--baseline PATH] [--probes] [--lone]

`--format` picks the call grammar (any parser format): with `required` the model is forced to
write the call in that format's syntax whatever its chat template says, so the figures are the
grammar's cost for that format on this vocabulary.

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL if it names a model folder, else the tiny
random model (whose 1k vocabulary and ~0.1 ms forward pass say little about real models). On
Linux, preload OpenBLAS for realistic numbers:
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.models.cache import make_prompt_cache

from pydantic_mlx._generation import sampled_hooks, with_sampled_hooks
from pydantic_mlx._lone_sequence import LoneSequence
from pydantic_mlx.constrained import _decoding as decoding
from pydantic_mlx.constrained import tool_call_processor
from pydantic_mlx.constrained._decoding import GrammarLogitsProcessor, grammar_tokenizer
from pydantic_mlx.parsers import available_formats

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a text file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
                "additionalProperties": False,
            },
        },
    }
]
PROMPT = "Explain in detail how a hash map works, with an example in Python."
CALL_PROMPT = "Write a Python implementation of a hash map with open addressing to hashmap.py."


def default_model() -> str:
    candidate = os.environ.get("PYDANTIC_MLX_REAL_MODEL")
    if candidate and (Path(candidate) / "config.json").is_file():
        return candidate
    from pydantic_mlx.demo import build_random_model

    return str(build_random_model())


Processor = Callable[[mx.array, mx.array], mx.array]


def greedy(logprobs: mx.array) -> mx.array:
    return mx.argmax(logprobs, axis=-1)


def run(
    model: Any, prompt: list[int], tokens: int, processors: list[Processor], *, told: bool = True
) -> tuple[float, list[float]]:
    """Seconds spent decoding (after the first token, so prefill is excluded) and each token's
    seconds. `told`: processors with a `sampled` hook are told each token, as `MLXModel`'s
    decoders tell them (else they read it from the tokens they are shown)."""
    sampler = with_sampled_hooks(greedy, sampled_hooks(processors) if told else [])
    steps = generate_step(
        mx.array(prompt), model, max_tokens=tokens, sampler=sampler, logits_processors=processors
    )
    intervals: list[float] = []
    started = last = 0.0
    for count, (token, _) in enumerate(steps):
        now = time.perf_counter()
        if count == 0:
            started = now
        else:
            intervals.append(now - last)
        last = now
        if token in EOS:
            break
    return last - started, intervals


def run_lone(
    model: Any, prompt: list[int], tokens: int, processors: list[Processor]
) -> tuple[float, list[float]]:
    """As `run`, through `LoneSequence`: how `MLXModel` decodes a request alone in its batch
    (the default), its processors told each token."""
    sampler = with_sampled_hooks(greedy, sampled_hooks(processors))
    sequence = LoneSequence(model, make_prompt_cache(model), list(prompt), sampler, processors, 2048)
    intervals: list[float] = []
    started = last = 0.0
    count = 0
    while count < tokens:
        token = sequence.step(last=count == tokens - 1)
        if token is None:
            continue  # a prefill chunk
        now = time.perf_counter()
        if count == 0:
            started = now
        else:
            intervals.append(now - last)
        last, count = now, count + 1
        if token in EOS:
            break
    return last - started, intervals


EOS: set[int] = set()


def replay_tokens(
    model: Any, prompt: list[int], tokens: int, make: Callable[[], list[Processor]]
) -> list[int]:
    out: list[int] = []
    made = make()
    sampler = with_sampled_hooks(greedy, sampled_hooks(made))
    for token, _ in generate_step(
        mx.array(prompt), model, max_tokens=tokens, sampler=sampler, logits_processors=made
    ):
        out.append(int(token))
        if token in EOS:
            break
    return out


def replay(processor: Processor, prompt: list[int], sequence: list[int], width: int) -> float:
    """Seconds per token the processor itself takes (mask included), fed `sequence` after `prompt`:
    the median of the calls, so a one-off cost (a kernel compiled on first use) does not count."""
    logits = mx.zeros((1, width))
    inputs = [mx.array(prompt + sequence[:i]) for i in range(len(sequence))]
    mx.eval(logits, inputs)
    processor(inputs[0], logits)
    times: list[float] = []
    for tokens in inputs[1:]:
        started = time.perf_counter()
        mx.eval(processor(tokens, logits))
        times.append(time.perf_counter() - started)
    return statistics.median(times) if times else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--format", default="hermes", choices=available_formats())
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="an older _decoding.py to time beside this one")
    parser.add_argument("--probes", action="store_true", help="also time parts of a processor alone")
    parser.add_argument(
        "--lone", action="store_true", help="also free and forced through LoneSequence (MLXModel's default)"
    )
    args = parser.parse_args()
    call_format: str = args.format
    source = args.model or default_model()
    model, tokenizer = load(source)
    EOS.update(tokenizer.eos_token_ids)
    vocab = len(tokenizer.get_vocab())
    print(f"model: {source} (vocabulary {vocab} tokens), call format: {call_format}")
    packages = ", ".join(f"{name} {version(name)}" for name in ("mlx", "mlx-lm", "llguidance"))
    print(f"{packages}; device {mx.default_device()}")

    started = time.perf_counter()
    grammar_tokenizer(tokenizer)
    print(f"llguidance tokenizer, built once per model: {time.perf_counter() - started:.2f} s")

    free_prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], tools=TOOLS, add_generation_prompt=True
    )
    call_prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": CALL_PROMPT}], tools=TOOLS, add_generation_prompt=True
    )
    width = model.args.vocab_size
    quoted = {i for token, i in tokenizer.get_vocab().items() if '"' in token}
    steer_bias = mx.array([-1e9 if i in EOS or i in quoted else 0.0 for i in range(width)])

    def steer(_tokens: mx.array, logits: mx.array) -> mx.array:
        """No end of turn, and no `"` unless the grammar demands one: every run is N tokens."""
        return logits + steer_bias.astype(logits.dtype)

    def processor(*, required: bool, module: Any = None, **switches: Any) -> GrammarLogitsProcessor:
        """A processor of this release (or of `module`, an older `_decoding.py`), switched as asked."""
        current = decoding.GrammarLogitsProcessor
        if module is not None:  # the class `tool_call_processor` makes
            decoding.GrammarLogitsProcessor = module.GrammarLogitsProcessor
        try:
            if required:
                made = tool_call_processor(tokenizer, call_format, TOOLS, required=True, parallel=False)
            else:
                made = tool_call_processor(tokenizer, call_format, TOOLS)
        finally:
            decoding.GrammarLogitsProcessor = current
        for name, value in switches.items():
            setattr(made, name, value)
        return made

    def lazy(**switches: Any) -> Callable[[], list[Processor]]:
        return lambda: [steer, processor(required=False, **switches)]

    def forced(**switches: Any) -> Callable[[], list[Processor]]:
        return lambda: [steer, processor(required=True, **switches)]

    started = time.perf_counter()
    forced()()[-1](mx.array(call_prompt), mx.zeros((1, width)))  # compiles the grammar
    print(f"grammar compile (first use of this tool set): {time.perf_counter() - started:.3f} s")

    paths: dict[str, tuple[list[int], Callable[[], list[Processor]]]] = {
        "free": (free_prompt, lambda: [steer]),
        "lazy": (free_prompt, lazy()),
        "forced": (call_prompt, forced()),
        "forced, read on this thread": (call_prompt, forced()),
        "forced, masks from the host": (call_prompt, forced(device_masks=0)),
    }
    older: Any = None
    if args.baseline:
        older = load_baseline(args.baseline)
        paths["lazy, baseline"] = (free_prompt, lazy(module=older))
        paths["forced, baseline"] = (call_prompt, forced(module=older))
        forced(module=older)()[-1](mx.array(call_prompt), mx.zeros((1, width)))  # its tokenizer, grammar
    if args.probes:
        paths.update(probes(free_prompt, width, steer))
    if args.lone:
        paths["free, lone sequence"] = (free_prompt, lambda: [steer])
        paths["forced, lone sequence"] = (call_prompt, forced())
    rates: dict[str, list[float]] = {name: [] for name in paths}
    steps: dict[str, list[float]] = {name: [] for name in paths}
    run(model, free_prompt, 8, [])  # warm up
    for round_ in range(args.rounds):
        # Each round in another order (rotated), so no path always follows the same one.
        names = list(paths)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            prompt, processors = paths[name]
            made = processors()
            if "lone sequence" in name:
                seconds, intervals = run_lone(model, prompt, args.tokens, made)
            else:
                seconds, intervals = run(
                    model, prompt, args.tokens, made, told="read on this thread" not in name
                )
            rates[name].append(1000 * seconds / max(len(intervals), 1))
            steps[name].extend(1000 * i for i in intervals)
            if name.startswith("forced"):
                assert not getattr(made[-1], "problems", None), made[-1]
    free = statistics.median(rates["free"])
    free_step = statistics.median(steps["free"])
    print(
        f"{args.rounds} rounds, paths in rotated order; 'paired' is the median of each round's ratio; "
        "'step' is the median of every token's own time over all rounds (pauses between tokens, "
        "a collection or a busy neighbour, fall out of it)"
    )
    for name, values in rates.items():
        ms = statistics.median(values)
        paired = statistics.median(v / f for v, f in zip(values, rates["free"], strict=True))
        step = statistics.median(steps[name])
        print(
            f"{name:28s} {ms:8.3f} ms/token   ratio to free: {ms / free:.3f}   paired: {paired:.3f}   "
            f"step: {step:.3f} ms, ratio {step / free_step:.3f}"
        )

    constrained_tokens = replay_tokens(model, call_prompt, args.tokens, forced())
    free_tokens = replay_tokens(model, free_prompt, args.tokens, lambda: [steer])
    replays: list[tuple[str, list[int], list[int], Callable[[], Processor]]] = [
        ("lazy", free_prompt, free_tokens, lambda: processor(required=False)),
        ("forced", call_prompt, constrained_tokens, lambda: processor(required=True)),
        (
            "forced, masks from the host",
            call_prompt,
            constrained_tokens,
            lambda: processor(required=True, device_masks=0),
        ),
    ]
    if older is not None:
        replays += [
            ("lazy, baseline", free_prompt, free_tokens, lambda: processor(required=False, module=older)),
            (
                "forced, baseline",
                call_prompt,
                constrained_tokens,
                lambda: processor(required=True, module=older),
            ),
        ]
    for name, prompt, sequence, make in replays:
        per_token = replay(make(), prompt, sequence, width)
        print(
            f"{name} processor alone: {1000 * per_token:.3f} ms/token over {len(sequence)} tokens "
            f"= {100 * per_token * 1000 / free:.2f}% of a free token"
        )


def probes(
    prompt: list[int], width: int, steer: Processor
) -> dict[str, tuple[list[int], Callable[[], list[Processor]]]]:
    """Free decoding plus one part of a forced processor each, to say where its cost lies: reading
    each sampled token (queued before the forward pass, as the processor does), and that plus adding
    a fixed bias kept on the device (a step whose mask is kept, without llguidance's work)."""
    fixed = mx.array([-1e9 if i in EOS else 0.0 for i in range(width)])

    def read() -> Processor:
        seen: list[int] = []

        def processor(tokens: mx.array, logits: mx.array) -> mx.array:
            if seen:
                fresh = tokens[seen[0] :]
                mx.async_eval(fresh)
                mx.async_eval(logits)
                fresh.tolist()
            seen[:] = [tokens.shape[-1]]
            return steer(tokens, logits)

        return processor

    def read_and_bias() -> Processor:
        reader = read()
        return lambda tokens, logits: reader(tokens, logits) + fixed.astype(logits.dtype)

    return {
        "probe: read": (prompt, lambda: [read()]),
        "probe: read + kept bias": (prompt, lambda: [read_and_bias()]),
    }


def load_baseline(path: str) -> Any:
    """An older copy of `_decoding.py`, loaded beside this one (its relative imports resolve)."""
    spec = importlib.util.spec_from_file_location("pydantic_mlx.constrained._decoding_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
