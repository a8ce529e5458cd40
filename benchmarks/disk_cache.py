"""Time to first token of a fresh process's first request: no disk cache, cold folder, warm folder.

Each measurement is a new Python process (what a coding agent started again pays): it loads the
weights (not timed), then times its first request (`max_tokens=1`: prefill + one token) on an
agent prompt of a ~2k-token system prompt + 4 tools and a short user message.

- `none`: `MLXModel` without `prompt_cache_dir` (the baseline);
- `cold`: an empty `prompt_cache_dir` (the process computes the prefix and writes it after its
  response);
- `warm`: the folder the cold process left (the prefix is read, only the user message is prefilled).

The same three are then measured once more after an unrelated warm-up request in each process
(`+ warm-up` rows): a fresh process also pays for its first use of each kernel (on MLX's CUDA
backend, a JIT compile of about a second that no cache saves), and those rows show what the disk
cache saves apart from it. `prefill` is the prefill's own time (`provider_details`).

Prints the median TTFT of each, the tokens prefilled, and the ratios (target: warm prefills only
the tokens after the shared prefix, and its TTFT is a fraction of the cold one).

    python benchmarks/disk_cache.py [--model PATH] [--rounds 3] [--system-tokens 2000]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model (with a ~600-token
system prompt: its context is 4,096 tokens). On Linux preload
OpenBLAS for realistic numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _shared import default_model

GUIDELINES = [
    "Read a file before you change it, and change only what the task needs.",
    "Write complete files rather than fragments; keep the style of the code around your change.",
    "Run the tests after every change and report what failed, with the command you ran.",
    "Prefer small, reviewable changes; explain in one sentence why each change is needed.",
    "Never invent file contents, paths or test results: look them up with the tools first.",
    "When a command fails, read its output before trying again, and do not repeat the same call.",
    "Keep secrets out of the code and out of your answers; never print environment variables.",
    "Ask before deleting files, rewriting history or touching anything outside the repository.",
]


def system_prompt(tokens: int) -> str:
    """Coding-agent instructions, numbered and repeated to about `tokens` tokens."""
    lines = ["You are a careful coding assistant working in the user's repository."]
    i = 0
    while len(" ".join(lines)) < tokens * 4:  # ~4 characters a token in English
        lines.append(f"{i + 1}. {GUIDELINES[i % len(GUIDELINES)]}")
        i += 1
    return "\n".join(lines)


def read_file(path: str) -> str:
    """Read a UTF-8 text file of the repository.

    Args:
        path: The file's path, relative to the repository root.
    """
    return ""


def write_file(path: str, content: str) -> str:
    """Write a whole UTF-8 text file (created if missing, replaced otherwise).

    Args:
        path: The file's path, relative to the repository root.
        content: The complete new content of the file.
    """
    return ""


def run_tests(selection: str = "") -> str:
    """Run the test suite (or a selection of it) and return its output.

    Args:
        selection: A pytest node id or -k expression; empty runs everything.
    """
    return ""


def search(pattern: str, glob: str = "**/*") -> str:
    """Search the repository's files for a regular expression.

    Args:
        pattern: The regular expression.
        glob: Which files to search.
    """
    return ""


async def child(model_path: str, folder: str | None, system_tokens: int, warmup: bool) -> dict[str, Any]:
    from pydantic_ai.direct import model_request
    from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.tools import Tool

    from pydantic_mlx import MLXModel

    model = MLXModel(model_path, prompt_cache_dir=folder)
    await model.load()
    tools = [Tool(f).tool_def for f in (read_file, write_file, run_tests, search)]
    if warmup:  # another MLXModel on the same weights, with no disk cache: it writes nothing
        warm = [ModelRequest(parts=[UserPromptPart("Say hello in French, please. " * 40)])]
        await model_request(MLXModel(model_path), warm, model_settings={"max_tokens": 2})  # pyright: ignore[reportArgumentType]
    messages = [
        ModelRequest(
            parts=[
                SystemPromptPart(system_prompt(system_tokens)),
                UserPromptPart("The tests in tests/test_cli.py fail since this morning. Find out why."),
            ]
        )
    ]
    started = time.perf_counter()
    response = await model_request(
        model,
        messages,  # pyright: ignore[reportArgumentType]
        model_settings={"max_tokens": 1},
        model_request_parameters=ModelRequestParameters(function_tools=tools),
    )
    ttft = time.perf_counter() - started
    details = response.provider_details or {}
    return {
        "ttft": ttft,
        "prompt": response.usage.input_tokens,
        "read": response.usage.cache_read_tokens,
        "prefilled": details.get("prefilled_tokens"),
        "prefill": details.get("prefill_seconds"),
    }


def measure(model: str, folder: str | None, system_tokens: int, *, warmup: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--model", model, "--system-tokens", str(system_tokens)]
    if folder is not None:
        command += ["--dir", folder]
    if warmup:
        command.append("--warmup")
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--system-tokens", type=int, default=None, help="default 2000; 600 on the demo")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = args.model or default_model()
    if args.system_tokens is None:
        # The demo model's 4,096-token context, and its tokenizer's short tokens, hold ~600.
        demo = not args.model and not os.environ.get("PYDANTIC_MLX_REAL_MODEL")
        args.system_tokens = 600 if demo else 2000
    if args.child:
        print(json.dumps(asyncio.run(child(model, args.dir, args.system_tokens, args.warmup))))
        return

    kinds = ("none", "cold", "warm")
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.rounds):  # interleaved, so machine load hits every kind alike
        for warmup in (False, True):
            folder = tempfile.mkdtemp(prefix="pydantic-mlx-disk-cache-bench-")
            try:
                for kind in kinds:
                    where = None if kind == "none" else folder
                    name = kind + (" + warm-up" if warmup else "")
                    runs.setdefault(name, []).append(measure(model, where, args.system_tokens, warmup=warmup))
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    print(f"model: {model}")
    print(f"first request of a fresh process, median of {args.rounds} (prefill + 1 token):")
    print(f"{'':<16} {'TTFT':>9} {'prefill':>9} {'prompt':>7} {'read':>6} {'prefilled':>9}")
    ttft: dict[str, float] = {}
    for name, results in runs.items():
        ttft[name] = statistics.median(r["ttft"] for r in results)
        prefill = statistics.median(r["prefill"] or 0.0 for r in results)
        last = results[-1]
        print(
            f"{name:<16} {ttft[name] * 1000:>7.0f}ms {prefill * 1000:>7.0f}ms {last['prompt']:>7} "
            f"{last['read']:>6} {last['prefilled']:>9}"
        )
    for suffix in ("", " + warm-up"):
        none, cold, warm = (ttft[kind + suffix] for kind in kinds)
        print(f"cold / warm TTFT{suffix}: {cold / warm:.2f}x")
        print(f"none / warm TTFT{suffix}: {none / warm:.2f}x")
        print(f"cold / none TTFT{suffix}: {cold / none:.2f}x (writing happens after the response)")


if __name__ == "__main__":
    main()
