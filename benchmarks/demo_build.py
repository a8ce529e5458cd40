"""Time a fresh build of the demo model: what a first `pydantic-mlx demo` or test run pays.

Each round is a new Python process building into an empty cache folder (imports included), once
with MLX's own BLAS and once with OpenBLAS preloaded (when found), interleaved so both see the
same machine load. Prints every run, then the median of each and their ratio, with the load
average (1 minute) around the runs: on a shared machine the wall time grows with it. The CPU
seconds (all threads) vary less with load; on an idle machine the wall time is about the CPU time
divided by the cores training uses (two streams).

    python benchmarks/demo_build.py [--rounds 3] [--openblas PATH | --no-openblas]

Target (docs/demo-model.md): under 20 s on an idle 2-core Linux machine without OpenBLAS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEBIAN_OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0")

BUILD = "import sys; from pathlib import Path; from pydantic_mlx.demo import build_demo_model; "
BUILD += "build_demo_model(Path(sys.argv[1]), progress=print)"


def one_build(preload: Path | None) -> tuple[float, float, float, str]:
    """Wall and CPU seconds of a fresh process's build, the load average before it, its steps line."""
    env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    load = os.getloadavg()[0]
    cpu_before = _children_cpu()
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", BUILD, cache], env=env, capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - started
    learned = next((line for line in done.stdout.splitlines() if "learned after" in line), "?")
    return seconds, _children_cpu() - cpu_before, load, learned


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--openblas", type=Path, default=DEBIAN_OPENBLAS, help="OpenBLAS library to preload")
    parser.add_argument("--no-openblas", action="store_true", help="time MLX's own BLAS only")
    args = parser.parse_args()
    variants: dict[str, Path | None] = {"MLX's BLAS": None}
    if not args.no_openblas:
        if args.openblas.exists():
            variants["OpenBLAS preloaded"] = args.openblas
        else:
            print(f"{args.openblas} not found: timing MLX's own BLAS only (--openblas PATH to compare)")
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    loads: list[float] = []
    print(f"{sys.platform}, {os.cpu_count()} CPUs; {args.rounds} rounds of a fresh build")
    for round_number in range(1, args.rounds + 1):
        for name, preload in variants.items():
            seconds, cpu_seconds, load, learned = one_build(preload)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
            loads.append(load)
            print(
                f"  round {round_number}  {name:20s} {seconds:6.1f} s wall, {cpu_seconds:5.1f} s CPU"
                f"  (load {load:4.1f}; {learned})"
            )
    loads.append(os.getloadavg()[0])
    print(f"\nload average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(
            f"{name:20s} median {median:6.1f} s wall (min {min(times[name]):.1f},"
            f" max {max(times[name]):.1f}), {statistics.median(cpu[name]):5.1f} s CPU"
        )
    if len(medians) == 2:
        reference, openblas = medians.values()
        print(f"MLX's BLAS / OpenBLAS: {reference / openblas:.2f}x")


if __name__ == "__main__":
    main()
