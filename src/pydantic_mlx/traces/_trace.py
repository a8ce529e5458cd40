"""A trace: one agent run's message history, the tools it offered and its verdict, on disk as JSON."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from pydantic_ai.messages import ModelMessage
from pydantic_ai.tools import ToolDefinition

__all__ = ["TRACE_SUFFIX", "Trace", "TraceError", "load_trace", "load_traces", "save_trace"]

TRACE_SUFFIX = ".trace.json"
"""How a trace file's name ends; `load_traces` reads these and nothing else."""


class TraceError(ValueError):
    """A trace that cannot be written or read: not a trace file, a bad name, an unreadable folder."""


@dataclass
class Trace:
    """One agent run as training data needs it. pydantic-ai's message history is the source of truth:
    the conversation is rendered from `messages` alone, with `tools` and `instructions` as the model
    was given them."""

    name: str
    """Names the file (`<name>.trace.json`) and the run in reports: letters, digits, `-`, `_`, `.`."""
    messages: list[ModelMessage]
    tools: list[ToolDefinition] = field(default_factory=list[ToolDefinition])
    """The tools the last request offered (function tools, then output tools)."""
    instructions: str | None = None
    """The instructions in force for the last request (pydantic-ai's, prompted-output ones included)."""
    passed: bool | None = None
    """The run's verdict (an eval case passed or failed); `None` when nobody judged it."""
    metadata: dict[str, Any] = field(default_factory=dict[str, Any])
    """Free-form JSON facts about the run (the eval writes the case, its checks and the configuration)."""
    format: Literal["pydantic-mlx-trace/1"] = "pydantic-mlx-trace/1"


_TRACE = TypeAdapter(Trace)
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def save_trace(trace: Trace, directory: Path) -> Path:
    """Write `trace` to `directory/<name>.trace.json` (folders created, an older file replaced whole)."""
    if not _NAME.fullmatch(trace.name) or trace.name.startswith("."):
        raise TraceError(f"trace name {trace.name!r}: use letters, digits, '-', '_' and '.' (not first)")
    path = directory / f"{trace.name}{TRACE_SUFFIX}"
    data = _TRACE.dump_python(trace, mode="json")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.tmp")
        aside.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(aside, path)
    except OSError as exc:
        raise TraceError(f"cannot write trace {path}: {exc.strerror or exc}") from exc
    return path


def load_trace(path: Path) -> Trace:
    """The trace in one file; `TraceError` saying why if it is not one."""
    try:
        return _TRACE.validate_json(path.read_bytes())
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise TraceError(f"{path} is not a pydantic-mlx trace: {where}: {error['msg']}") from exc


def load_traces(sources: Sequence[Path] | Path) -> list[Trace]:
    """Every trace in the given files and folders (searched recursively for `*.trace.json`), in path order.

    `TraceError` for a path that does not exist, a file that is not a trace, or no trace at all.
    """
    paths: list[Path] = []
    for source in [sources] if isinstance(sources, Path) else sources:
        if source.is_dir():
            paths.extend(sorted(source.rglob(f"*{TRACE_SUFFIX}")))
        elif source.is_file():
            paths.append(source)
        else:
            raise TraceError(f"no such file or folder: {source}")
    if not paths:
        raise TraceError(f"no traces (*{TRACE_SUFFIX}) in {', '.join(map(str, _listed(sources)))}")
    return [load_trace(path) for path in paths]


def _listed(sources: Sequence[Path] | Path) -> list[Path]:
    return [sources] if isinstance(sources, Path) else list(sources)
