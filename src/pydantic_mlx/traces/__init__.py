"""Agent runs as training data: record traces, export them for `mlx_lm.lora`, check the round trip.

    from pydantic_mlx.traces import TraceRecorder, export_traces, load_traces, save_trace

    recorder = TraceRecorder(MLXModel(path))
    result = await Agent(recorder, tools=[read_file]).run("What does README.md say?")
    save_trace(recorder.trace(result.all_messages(), name="readme", passed=True), Path("traces"))
    export_traces(load_traces(Path("traces")), Path("data/train.jsonl"), only_passed=True, split=0.9)

`pydantic-mlx eval --save-traces DIR` writes a trace per case and configuration;
`pydantic-mlx export DIR --out train.jsonl` turns traces into training data. See docs/finetune.md.
Importable without MLX (an export checked against a tokenizer loads one).
"""

from __future__ import annotations

from ._export import (
    DroppedStep,
    DropReason,
    ExportSummary,
    export_traces,
    round_trip_problems,
    training_records,
)
from ._recorder import TraceRecorder
from ._trace import TRACE_SUFFIX, Trace, TraceError, load_trace, load_traces, save_trace

__all__ = [
    "TRACE_SUFFIX",
    "DropReason",
    "DroppedStep",
    "ExportSummary",
    "Trace",
    "TraceError",
    "TraceRecorder",
    "export_traces",
    "load_trace",
    "load_traces",
    "round_trip_problems",
    "save_trace",
    "training_records",
]
