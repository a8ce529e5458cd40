"""Parser throughput: `parse` chars/s, and streaming cost per delta and in total vs one `parse`.

Targets (issue 3): streaming total <= 2x `parse` on the same 20k-char output, <= 20 us/delta.
Run: python benchmarks/parsers.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from pydantic_mlx.parsers import StreamParser, parse

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}},
]


def _output(size: int, seed: int = 0) -> str:
    """A ~`size`-char agent output: prose with code, reasoning, tagged and fenced calls."""
    rng = random.Random(seed)
    words = ["the", "file", "reads", "a", "value", "then", "we", "check", "{x}", "[y]", "in", "`code`"]
    parts = ["<think>\n" + " ".join(rng.choice(words) for _ in range(120)) + "\n</think>\n\n"]
    while sum(map(len, parts)) < size:
        parts.append(" ".join(rng.choice(words) for _ in range(60)) + ".\n")
        args = {"path": f"src/m{rng.randrange(99)}.py", "content": "def f(x):\n    return {'a': [x]}\n" * 4}
        call = json.dumps({"name": "write_file", "arguments": args})
        fenced = rng.random() < 0.5
        parts.append(f"```json\n{call}\n```\n" if fenced else f"<tool_call>\n{call}\n</tool_call>\n")
    return "".join(parts)[:size]


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _stream(text: str, step: int) -> None:
    parser = StreamParser(tools=TOOLS)
    for i in range(0, len(text), step):
        parser.feed(text[i : i + step])
    parser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    text = _output(20_000)
    t_parse = _best(lambda: parse(text, tools=TOOLS), args.repeat)
    print(f"output: {len(text)} chars, {len(parse(text, tools=TOOLS).calls)} calls")
    print(f"parse: {t_parse * 1e3:.2f} ms  ({len(text) / t_parse / 1e6:.2f} M chars/s)")
    print(f"{'delta size':>10} {'deltas':>7} {'total ms':>9} {'us/delta':>9} {'vs parse':>9}")
    for step in (1, 4, 16, 64):  # ~4 chars is one token of English text
        t = _best(lambda step=step: _stream(text, step), args.repeat)
        deltas = -(-len(text) // step)
        print(f"{step:>10} {deltas:>7} {t * 1e3:>9.2f} {t / deltas * 1e6:>9.2f} {t / t_parse:>8.2f}x")


if __name__ == "__main__":
    main()
