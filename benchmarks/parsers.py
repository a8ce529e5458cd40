"""Parser throughput: `parse` chars/s, and streaming cost per delta and in total vs one `parse`.

Targets (issue 3): streaming total <= 2x `parse` on the same 20k-char output, <= 20 us/delta.
Every format is measured on a ~20k-char output written in its own markup (prose with braces,
brackets and backticks, a reasoning block where the format has one, calls rendered by the
format; untagged calls too where the format accepts them); `auto` on a mixed hermes/fenced one.
Parse and every delta size are timed in turns within one run, so the ratios compare like with
like on a busy machine; each time is CPU time (waiting for a shared core is not counted), the
best of `--repeat` turns.

Worst case (issue 21): 1 MB of each adversarial text (`"{" * n`, call heads, marker halves, ...)
through `auto`, parsed and streamed, against the 1 s per MB target (`--worst-case 0` skips it).

Run: python benchmarks/parsers.py [--repeat N] [--format NAME ...] [--sizes 1 4 16 64] [--worst-case CHARS]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from pydantic_mlx.parsers import StreamParser, ToolCall, available_formats, parse, render_calls
from pydantic_mlx.parsers._pythonic import render_pythonic_calls
from pydantic_mlx.parsers.formats import get_format

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}},
]
WORDS = ["the", "file", "reads", "a", "value", "then", "we", "check", "{x}", "[y]", "in", "`code`"]


def _arguments(rng: random.Random) -> dict[str, str]:
    return {"path": f"src/m{rng.randrange(99)}.py", "content": "def f(x):\n    return {'a': [x]}\n" * 4}


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _auto_output(size: int, seed: int = 0) -> str:
    """A ~`size`-char agent output: prose with code, reasoning, tagged and fenced calls."""
    rng = random.Random(seed)
    parts = ["<think>\n" + _prose(rng, 120) + "\n</think>\n\n"]
    while sum(map(len, parts)) < size:
        parts.append(_prose(rng, 60) + ".\n")
        call = json.dumps({"name": "write_file", "arguments": _arguments(rng)})
        fenced = rng.random() < 0.5
        parts.append(f"```json\n{call}\n```\n" if fenced else f"<tool_call>\n{call}\n</tool_call>\n")
    return "".join(parts)[:size]


def _format_output(name: str, size: int, seed: int = 0) -> str:
    """A ~`size`-char output in format `name`: its reasoning block, prose and its own calls,
    with every other call untagged when the format accepts untagged calls."""
    fmt = get_format(name)
    rng = random.Random(seed)
    parts: list[str] = []
    if fmt.REASONING:
        opener, closer = fmt.REASONING[0]
        parts.append(opener + _prose(rng, 120) + closer + "\n\n")
    while sum(map(len, parts)) < size:
        parts.append(_prose(rng, 60) + ".\n")
        call = ToolCall("write_file", _arguments(rng))
        untagged = fmt.UNTAGGED and rng.random() < 0.5
        if untagged and "pythonic" in fmt.UNTAGGED:
            parts.append(render_pythonic_calls([(call.name, call.arguments)]) + "\n")
        elif untagged:
            parts.append(json.dumps({"name": call.name, "arguments": call.arguments}) + "\n")
        else:
            parts.append(render_calls([call], name) + "\n")
    return "".join(parts)[:size]


def _stream(text: str, format: str, step: int) -> None:
    parser = StreamParser(format, tools=TOOLS)
    for i in range(0, len(text), step):
        parser.feed(text[i : i + step])
    parser.close()


def _best_of(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time of each function, running them in turns (noise hits all of them alike)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.process_time()
            fn()
            best[key] = min(best[key], time.process_time() - start)
    return best


def _measure(name: str, text: str, steps: list[int], repeat: int) -> dict[str, float]:
    fns: dict[str, Callable[[], object]] = {"parse": lambda: parse(text, name, tools=TOOLS)}
    for step in steps:
        fns[str(step)] = lambda step=step: _stream(text, name, step)
    return _best_of(fns, repeat)


ADVERSARIAL_UNITS = {
    "open braces": "{",
    "open brackets": "[",
    "braces on lines": "{\n",
    "call heads": '{"name": ',
    "fenced call heads": '```json\n{"name": "read_file", "arguments": {"a": [',
    "tag openers": "<tool_call>",
    "marker halves": "<tool_",
    "reasoning openers": "<think>",
    "quotes": '"',
    "spaces": " ",
    "newlines": "\n",
    "mistral markers": "[TOOL_CALLS]",
    "pythonic heads": "[read_file(",
}
"""Texts of one repeated unit, each aimed at a state of the parser: what a hostile or broken model
can write. Target (issue 21): 1 MB of any of them parsed by `auto` in under 1 s."""


def adversarial(size: int, repeat: int) -> None:
    """`parse(text, "auto")` of `size` chars of each adversarial text, and the same text streamed
    in 16-char deltas, next to an ordinary agent output of the same size and the 1 s/MB target."""
    ordinary = _auto_output(size)
    ordinary_best = _best_of(
        {
            "parse": lambda: parse(ordinary, "auto", tools=TOOLS),
            "stream": lambda: _stream(ordinary, "auto", 16),
        },
        repeat,
    )
    base = ordinary_best["parse"]
    print(f"\nworst case, auto, {size / 1e6:.1f} MB each; CPU time, best of {repeat}; target < 1 s per MB")
    print(f"{'text':<20} {'parse s/MB':>10} {'x ordinary':>10} {'stream16 s/MB':>13} {'x target':>8}")
    stream_base = ordinary_best["stream"] / size * 1e6
    print(f"{'ordinary output':<20} {base / size * 1e6:>10.3f} {1.0:>10.2f} {stream_base:>13.3f}")
    worst = 0.0
    for label, unit in ADVERSARIAL_UNITS.items():
        text = (unit * (size // len(unit) + 1))[:size]
        best = _best_of(
            {
                "parse": lambda text=text: parse(text, "auto", tools=TOOLS),
                "stream": lambda text=text: _stream(text, "auto", 16),
            },
            repeat,
        )
        per_mb = {k: v / size * 1e6 for k, v in best.items()}
        worst = max(worst, *per_mb.values())
        print(
            f"{label:<20} {per_mb['parse']:>10.3f} {best['parse'] / base:>10.2f}"
            f" {per_mb['stream']:>13.3f} {max(per_mb.values()):>7.2f}x",
            flush=True,
        )
    print(f"worst: {worst:.3f} s per MB ({'meets' if worst < 1 else 'misses'} the 1 s target)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--worst-case", type=int, default=1_000_000, metavar="CHARS")
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--format", nargs="*", default=available_formats())
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16, 64])  # ~4 chars: one token
    args = ap.parse_args()
    steps: list[int] = args.sizes
    header = f"{'format':<12} {'calls':>5} {'parse ms':>8} {'M ch/s':>6}"
    header += "".join(f" {f'{s}ch us/d':>10} {'x parse':>7}" for s in steps)
    print(f"output: ~{args.size} chars per format; CPU time, best of {args.repeat}; us/d = us per delta")
    print(header)
    worst = dict.fromkeys(steps, 0.0)
    for name in args.format:
        text = _auto_output(args.size) if name == "auto" else _format_output(name, args.size)
        calls = len(parse(text, name, tools=TOOLS).calls)
        best = _measure(name, text, steps, args.repeat)
        t_parse = best["parse"]
        row = f"{name:<12} {calls:>5} {t_parse * 1e3:>8.2f} {len(text) / t_parse / 1e6:>6.2f}"
        for step in steps:
            t = best[str(step)]
            deltas = -(-len(text) // step)
            worst[step] = max(worst[step], t / t_parse)
            row += f" {t / deltas * 1e6:>10.2f} {t / t_parse:>6.2f}x"
        print(row, flush=True)
    print("worst ratio to parse: " + ", ".join(f"{s}ch {worst[s]:.2f}x" for s in steps))
    if args.worst_case:
        adversarial(args.worst_case, min(args.repeat, 3))


if __name__ == "__main__":
    main()
