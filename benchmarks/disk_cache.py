"""Time to first token of a fresh process's first request: no disk cache, cold folder, warm folder.

Each measurement is a new Python process (what a coding agent started again pays): it loads the
weights (not timed), then times its first request (`max_tokens=1`: prefill + one token) on an
agent prompt of a ~2k-token system prompt + 4 tools and a short user message.

- `none`: `MLXModel` without `prompt_cache_dir` (the baseline);
- `cold`: an empty `prompt_cache_dir` (the process computes the prefix and writes it after its
  response);
- `warm`: the folder the cold process left (the prefix is read, only the user message is prefilled).

Prints the median TTFT of each, the tokens prefilled, and the ratios (target: warm prefills only
the tokens after the shared prefix, and its TTFT is a fraction of the cold one).

    python benchmarks/disk_cache.py [--model PATH] [--rounds 3] [--system-tokens 2000]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model. On Linux preload
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


async def child(model_path: str, folder: str | None, system_tokens: int) -> dict[str, Any]:
    from pydantic_ai.direct import model_request
    from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.tools import Tool

    from pydantic_mlx import MLXModel

    model = MLXModel(model_path, prompt_cache_dir=folder)
    await model.load()
    tools = [Tool(f).tool_def for f in (read_file, write_file, run_tests, search)]
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
    }


def measure(model: str, folder: str | None, system_tokens: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--model", model, "--system-tokens", str(system_tokens)]
    if folder is not None:
        command += ["--dir", folder]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--system-tokens", type=int, default=2000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = args.model or default_model()
    if args.child:
        print(json.dumps(asyncio.run(child(model, args.dir, args.system_tokens))))
        return

    runs: dict[str, list[dict[str, Any]]] = {"none": [], "cold": [], "warm": []}
    for _ in range(args.rounds):  # interleaved, so machine load hits every kind alike
        folder = tempfile.mkdtemp(prefix="pydantic-mlx-disk-cache-bench-")
        try:
            runs["none"].append(measure(model, None, args.system_tokens))
            runs["cold"].append(measure(model, folder, args.system_tokens))
            runs["warm"].append(measure(model, folder, args.system_tokens))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"model: {model}")
    print(f"first request of a fresh process, median of {args.rounds} (prefill + 1 token):")
    print(f"{'':<6} {'TTFT':>9} {'prompt':>7} {'read':>6} {'prefilled':>9}")
    medians: dict[str, float] = {}
    for kind, results in runs.items():
        medians[kind] = statistics.median(r["ttft"] for r in results)
        last = results[-1]
        ttft = f"{medians[kind] * 1000:>7.0f}ms"
        print(f"{kind:<6} {ttft} {last['prompt']:>7} {last['read']:>6} {last['prefilled']:>9}")
    print(f"cold / warm TTFT: {medians['cold'] / medians['warm']:.2f}x")
    print(f"none / warm TTFT: {medians['none'] / medians['warm']:.2f}x")
    print(f"cold / none TTFT: {medians['cold'] / medians['none']:.2f}x (writing happens after the response)")


if __name__ == "__main__":
    main()
