"""llguidance's tokenizer: built from scratch vs from the token table kept on disk, in fresh processes.

Each measurement is a new Python process that imports the libraries and loads the model's
tokenizer (not timed), then builds the llguidance tokenizer constrained decoding uses (timed, wall and CPU):

- plain:  `llguidance.hf.from_tokenizer` (what every process paid before the table was kept);
- first:  `grammar_tokenizer` with an empty cache folder (builds, writes the table, builds from it);
- second: `grammar_tokenizer` with the table on disk (what every later process pays).

The three alternate, `--rounds` times, so load drifts on a shared machine hit them alike; the
medians and ratios to `plain` are printed.

    python benchmarks/tokenizer_cache.py --model PATH [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import json, sys, time
from pathlib import Path
from mlx_lm.tokenizer_utils import load
import llguidance.hf
from pydantic_mlx.constrained._decoding import grammar_tokenizer
tokenizer = load(Path(sys.argv[1]))
eos = sorted(tokenizer.eos_token_ids)
wall, cpu = time.perf_counter(), time.process_time()
if sys.argv[2] == "plain":
    vocab = llguidance.hf.from_tokenizer(tokenizer._tokenizer, eos_token=eos).vocab_size
else:
    vocab = grammar_tokenizer(tokenizer).llg.vocab_size
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "vocab": vocab}))
"""


def measure(model: str, mode: str, cache: Path) -> dict[str, float]:
    env = {**os.environ, "PYDANTIC_MLX_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, model, mode], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="a model folder (only its tokenizer is loaded)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"plain": [], "first": [], "second": []}
    vocab = 0
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            cache = Path(folder) / f"round{round_}"
            for mode in results:  # first writes the table that second reads
                result = measure(args.model, "plain" if mode == "plain" else "cached", cache)
                vocab = int(result["vocab"])
                results[mode].append(result)
                print(f"round {round_} {mode:6s} wall {result['wall']:.2f} s  cpu {result['cpu']:.2f} s")
    print(f"\n{args.model}: {vocab} tokens, median of {args.rounds}")
    plain = statistics.median(r["wall"] for r in results["plain"])
    for mode, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"{mode:6s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  {wall / plain:5.2f}x plain")


if __name__ == "__main__":
    main()
