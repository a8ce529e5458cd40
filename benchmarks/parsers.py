"""Parser throughput: `parse` chars/s, and streaming cost per delta and in total vs one `parse`.

Targets (issue 3): streaming total <= 2x `parse` on the same 20k-char output, <= 20 us/delta.
Every format is measured on a ~20k-char output written in its own markup (prose with braces,
brackets and backticks, a reasoning block where the format has one, calls rendered by the
format; untagged calls too where the format accepts them); `auto` on a mixed hermes/fenced one.
Parse and every delta size are timed in turns within one run, so the ratios compare like with
like on a busy machine; each time is CPU time (waiting for a shared core is not counted), the
best of `--repeat` turns.

Worst case (issue 21): hostile texts generated from each format's markers
(tests/parsers/hostile.py: every marker repeated and halved, call openers followed by values that
never close, quotes, backslashes, deep brackets, interleavings) are screened at a small size, a few
search rounds grow the costliest into costlier ones, and the worst are measured at 1 MB, parsed
and streamed in 1-, 4- and 8-char deltas, against the 1 s per MB target (`--worst-case 0` skips it;
`--worst-formats auto hermes ...` picks the formats, `auto` by default).

`--named-only` measures just the named shapes (issue 21's, the call regions repeated and regions
whose bodies alternate), and `--baseline SRC` (another checkout's `src` folder, e.g. one made with
`git worktree add` or `git archive`) imports that version's parsers beside this one and times both
in turns, printing `before -> after` for each shape and mode.

Run: python benchmarks/parsers.py [--repeat N] [--format NAME ...] [--sizes 1 4 16 64] [--worst-case CHARS]
     [--worst-formats FORMAT ...] [--screen-size CHARS] [--top K] [--search ROUNDS]
     [--named-only] [--baseline SRC]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from pydantic_mlx.parsers import StreamParser, ToolCall, available_formats, parse, render_calls
from pydantic_mlx.parsers._pythonic import render_pythonic_calls
from pydantic_mlx.parsers.formats import get_format

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: tests/ is shared
from tests.parsers.hostile import Shape, hostile_shapes, interleavings, vocabulary

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


def _stream(text: str, format: str, step: int, parsers: ModuleType | None = None) -> None:
    parser = (StreamParser if parsers is None else parsers.StreamParser)(format, tools=TOOLS)
    feed = parser.feed
    for i in range(0, len(text), step):
        feed(text[i : i + step])
    parser.close()


def _load_parsers(src: Path) -> ModuleType:
    """The `pydantic_mlx.parsers` package of another checkout's `src` folder, imported beside
    this one under another name (the package imports only itself, relatively)."""
    folder = src / "pydantic_mlx" / "parsers"
    spec = importlib.util.spec_from_file_location(
        "baseline_parsers", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline: no parsers package under {src}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


NAMED = {  # the shapes issue 21 measured, always shown
    "braces on lines": Shape("", "{\n"),
    "mistral markers": Shape("", "[TOOL_CALLS]"),
    "tag openers": Shape("", "<tool_call>"),
    "call heads": Shape("", '{"name": '),
    "open braces": Shape("", "{"),
    "quotes": Shape("", '"'),
    "backslashes": Shape("", "\\"),
    # A call opener repeated, each a region its own opener interrupts, and a bracketed word on
    # every line (the issue-21 follow-ups); plain text, the floor of a delta's cost.
    "broken hermes calls": Shape("", "<tool_call>{"),
    "broken nemotron calls": Shape("", "<TOOLCALL>{"),
    "broken qwen3-coder calls": Shape("", "<function={"),
    "bracketed words": Shape("", "[ARGS]\n"),
    "python tags": Shape("", "<|python_tag|>"),
    "plain text": Shape("", "x"),
    # Dropped markup repeated where the answer begins (the answer still begins after it).
    "end-of-turn tokens": Shape("", "<eos>"),
    "minimax markers": Shape("", "[e~["),
    "chatml ends": Shape("", "<|im_end|>\n"),
    # Regions whose bodies alternate: a cycle of two or three regions, not one repeated.
    "alternating bodies": Shape("", "<tool_call>{a<tool_call>{b"),
    "broken call, then a call": Shape("", "<tool_call>{<tool_call>x"),
    "three bodies": Shape("", "<tool_call>{a<tool_call>{b<tool_call>{c"),
    "three openers": Shape("", "<tool_call>{<TOOLCALL>{<function={"),
}
WORST_CASE_MODES = ("parse", "1", "4", "8")  # `parse`, then streams in deltas of 1, 4, 8 chars


def _cost(format: str, text: str, mode: str, parsers: ModuleType | None = None) -> Callable[[], object]:
    if mode == "parse":
        parse_with = parse if parsers is None else parsers.parse
        return lambda: parse_with(text, format, tools=TOOLS)
    return lambda: _stream(text, format, int(mode), parsers)


def _named_side_by_side(size: int, repeat: int, formats: list[str], baseline: ModuleType | None) -> None:
    """The named shapes at `size` chars, CPU s per MB, each mode of the baseline and this
    checkout timed in turns (best of `repeat`), printed as `before -> after`."""
    print(f"\nnamed shapes, {size / 1e6:.1f} MB each; CPU s per MB, best of {repeat}; target < 1 s per MB")
    if baseline is not None:
        print("(before -> after: the --baseline checkout, then this one, timed in turns)")
    head = "".join(f" {('stream ' + m) if m != 'parse' else 'parse':>15}" for m in WORST_CASE_MODES)
    print(f"{'format':<12} {'text':<46}{head}")
    for format in formats:
        for shape in NAMED.values():
            text = shape.text(size)
            fns: dict[str, Callable[[], object]] = {}
            for mode in WORST_CASE_MODES:
                if baseline is not None:
                    fns["before " + mode] = _cost(format, text, mode, baseline)
                fns[mode] = _cost(format, text, mode)
            best = {key: t / size * 1e6 for key, t in _best_of(fns, repeat).items()}
            cells = [
                f"{best['before ' + m]:.2f} -> {best[m]:.2f}" if baseline is not None else f"{best[m]:.3f}"
                for m in WORST_CASE_MODES
            ]
            print(f"{format:<12} {shape.label[:46]:<46}" + "".join(f" {c:>15}" for c in cells), flush=True)


def _screen(format: str, shapes: list[Shape], size: int) -> list[tuple[float, Shape]]:
    """Each shape's cost at `size` chars (CPU s per MB, the worst of `parse` and 4-char deltas),
    worst first."""
    costs: list[tuple[float, Shape]] = []
    for shape in shapes:
        text = shape.text(size)
        best = _best_of({m: _cost(format, text, m) for m in ("parse", "4")}, 1)
        costs.append((max(best.values()) / size * 1e6, shape))
    return sorted(costs, key=lambda c: -c[0])


def _search(format: str, seeds: list[Shape], rounds: int, size: int, rng: random.Random) -> list[Shape]:
    """An adversary: from the costliest shapes, units grown or cut (a marker or piece added, a
    unit doubled or halved), keeping the costliest of each round."""
    pieces = [*vocabulary(format)[0], "{", "[", '"', "\\", "\n", " ", "x"]
    found = list(seeds)
    for _ in range(rounds):
        children: list[Shape] = []
        for parent in found[:8]:
            unit = parent.unit
            children += [
                Shape(parent.prefix, unit + rng.choice(pieces)),
                Shape(parent.prefix, rng.choice(pieces) + unit),
                Shape(parent.prefix, unit[: max(1, len(unit) // 2)]),
                Shape(parent.prefix + unit, rng.choice(pieces)),
            ]
        found = [shape for _, shape in _screen(format, list(dict.fromkeys(found + children)), size)]
    return found


def adversarial(size: int, repeat: int, formats: list[str], screen_size: int, top: int, rounds: int) -> None:
    """Every hostile shape of each format (tests/parsers/hostile.py: its markers repeated, halved,
    after an opener, quoted, ...) screened at `screen_size` chars; the `top` costliest, the search's
    finds and the named shapes then measured at `size` chars: `parse` and streams of 1, 4, 8-char
    deltas, against the 1 s per MB target and ordinary output (CPU time, best of `repeat`)."""
    rng = random.Random(0)
    ordinary = _auto_output(size)
    base = _best_of({m: _cost("auto", ordinary, m) for m in WORST_CASE_MODES}, repeat)
    print(f"\nworst case, {size / 1e6:.1f} MB each; CPU s per MB, best of {repeat}; target < 1 s per MB")
    head = "".join(f" {('stream ' + m) if m != 'parse' else 'parse':>9}" for m in WORST_CASE_MODES)
    print(f"{'format':<12} {'text':<52}{head}")
    print(
        f"{'auto':<12} {'(ordinary agent output)':<52}"
        + "".join(f" {base[m] / size * 1e6:>9.3f}" for m in WORST_CASE_MODES)
    )
    worst: dict[str, tuple[float, str]] = {}
    for format in formats:
        shapes = hostile_shapes(format) + interleavings(format, 40)
        screened = [shape for _, shape in _screen(format, shapes, screen_size)]
        found = _search(format, screened[:top], rounds, screen_size, rng) if rounds else []
        chosen = list(dict.fromkeys([*NAMED.values(), *screened[:top], *found[:3]]))
        for shape in chosen:
            text = shape.text(size)
            best = _best_of({m: _cost(format, text, m) for m in WORST_CASE_MODES}, repeat)
            per_mb = {m: t / size * 1e6 for m, t in best.items()}
            for mode, cost in per_mb.items():
                if cost > worst.get(mode, (0.0, ""))[0]:
                    worst[mode] = (cost, f"{format} {shape.label}")
            row = "".join(f" {per_mb[m]:>9.3f}" for m in WORST_CASE_MODES)
            print(f"{format:<12} {shape.label[:52]:<52}{row}", flush=True)
    for mode, (cost, what) in worst.items():
        name = "parse" if mode == "parse" else f"stream {mode}"
        verdict = "meets" if cost < 1 else "misses"
        print(f"worst {name}: {cost:.3f} s per MB ({what}; {verdict} the 1 s target)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--worst-case", type=int, default=1_000_000, metavar="CHARS")
    ap.add_argument("--worst-formats", nargs="*", default=["auto"], metavar="FORMAT")
    ap.add_argument("--screen-size", type=int, default=20_000, metavar="CHARS")
    ap.add_argument("--top", type=int, default=8, help="costliest screened shapes measured at full size")
    ap.add_argument("--search", type=int, default=2, metavar="ROUNDS", help="adversary rounds (0: none)")
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--format", nargs="*", default=available_formats())
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16, 64])  # ~4 chars: one token
    ap.add_argument(
        "--named-only", action="store_true", help="only the named hostile shapes, at --worst-case"
    )
    ap.add_argument("--baseline", type=Path, metavar="SRC", help="another checkout's src/, timed in turns")
    args = ap.parse_args()
    if args.named_only:
        baseline = _load_parsers(args.baseline) if args.baseline else None
        _named_side_by_side(args.worst_case, args.repeat, args.worst_formats, baseline)
        return
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
        adversarial(
            args.worst_case, min(args.repeat, 2), args.worst_formats, args.screen_size, args.top, args.search
        )


if __name__ == "__main__":
    main()
