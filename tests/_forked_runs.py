"""Runs a script in fresh processes that exit as a script does, without paying for the imports each time.

The parent imports pydantic-ai, pydantic-mlx and mlx-lm once, then forks each run: the child
runs the script and exits through the normal interpreter shutdown (falling off its end), which is
what the exit tests are about. Nothing MLX computes happens before a fork (that would deadlock),
and the parent has no other thread when it forks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

FORKED_RUNS = """
import os, sys, threading
import mlx_lm, pydantic_ai, pydantic_mlx, pydantic_mlx.demo

script, runs, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
assert threading.active_count() == 1, threading.enumerate()
codes = []
for _ in range(runs):
    pid = os.fork()
    if pid == 0:
        sys.argv = ["-c", *args]
        exec(compile(script, "<script>", "exec"), globals())  # its globals live until exit, as a script's
        break
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
else:
    print(codes)
"""


@dataclass
class ForkedRuns:
    exit_codes: str
    """The children's exit codes, as the list prints: `[0, 0, 0]` when every run exited cleanly."""
    output: list[str]
    """What the children printed, line by line, in the order the lines came."""
    stderr: str
    returncode: int


def run_forked(script: str, *args: str, runs: int, timeout: float) -> ForkedRuns:
    """Run `script` in `runs` fresh processes with `args` as its `sys.argv[1:]`.

    The children run without OpenBLAS preloaded, as users mostly run: it changes the timing of
    the exit aborts these tests look for.
    """
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    done = subprocess.run(
        [sys.executable, "-c", FORKED_RUNS, script, str(runs), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    *output, codes = done.stdout.strip().splitlines() or [""]
    return ForkedRuns(exit_codes=codes, output=output, stderr=done.stderr, returncode=done.returncode)
