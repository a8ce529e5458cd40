"""A program that exits while other threads' agent runs are generating exits cleanly (issue 21).

MLX aborts the process ("terminate called without an active exception", exit 134) when the
interpreter finalizes while a generation thread is inside MLX: at exit, in-flight generations
are stopped within one token and the generation threads then refuse new work.
"""

from __future__ import annotations

import os
from pathlib import Path

from _forked_runs import run_forked

# Run in forked processes (tests/_forked_runs.py): each child starts the runs and falls off the
# end of the script while they are generating.
EXIT_MID_GENERATION = """
import asyncio, sys, threading
from mlx_lm import load
from pydantic_ai import Agent
from pydantic_mlx import MLXModel

def start_runs_then_exit(path):
    # Two batched runs on one loaded model, one run on another copy served one at a time.
    pair = load(path)
    models = [MLXModel(path), MLXModel(path), MLXModel(pair, batching=False)]
    # One word, over and over: every run streams text at once and is still generating at exit
    # (untrained weights alone may end early, or write only what the parser holds back).
    word = pair[1].encode("story", add_special_tokens=False)[0]
    never_end = {"logit_bias": {str(word): 100.0}}
    generating = threading.Barrier(len(models) + 1, timeout=300)

    def run(model):
        async def consume():
            async with Agent(model).run_stream("Tell a long story", model_settings=never_end) as result:
                text = result.stream_text(delta=True)
                await anext(text)
                generating.wait()
                async for _ in text:
                    pass
        asyncio.run(consume())

    for model in models:
        threading.Thread(target=run, args=(model,), daemon=True).start()
    generating.wait()  # every run has streamed and is still generating (a broken run: an error, not a hang)

start_runs_then_exit(sys.argv[1])
"""

RUNS = int(os.environ.get("PYDANTIC_MLX_EXIT_RUNS", "5"))
"""Fresh processes that exit mid-generation; before the fix 4 in 5 aborted. The issue's bar is
20 (`PYDANTIC_MLX_EXIT_RUNS=20`, about a minute of CPU); CI runs 5 to stay fast."""


def test_exiting_mid_generation_never_aborts(random_model_path: Path) -> None:
    # Untrained weights, their end-of-sequence tokens biased away: every run is still generating
    # at exit.
    runs = run_forked(EXIT_MID_GENERATION, str(random_model_path), runs=RUNS, timeout=600)
    assert runs.returncode == 0, runs.stderr[-2000:]
    assert "terminate called" not in runs.stderr
    assert runs.exit_codes == str([0] * RUNS), runs.stderr[-2000:]
