"""A tiny real MLX model, built and trained offline in seconds, for tests and `pydantic-mlx demo`.

`build_demo_model()` returns a folder that `mlx_lm.load` (and so `MLXModel`) loads: a Qwen2
architecture with a byte-level BPE tokenizer and a ChatML template that renders tools like Qwen2.5,
trained until greedy decoding reproduces every turn of `SCENARIOS` exactly. It only knows those
exact conversations: run `scenario.agent(model)` on `scenario.prompt` to replay one.
"""

from __future__ import annotations

from ._build import (
    MODEL_CONFIG,
    RANDOM_MODEL_CONFIG,
    VOCAB_SIZE,
    build_demo_model,
    build_random_model,
    default_cache_dir,
)
from ._template import CHAT_TEMPLATE
from .scenarios import (
    DEMO_SYSTEM_PROMPT,
    DEMO_TOOLS,
    SCENARIOS,
    CapturedRequest,
    CityInfo,
    Scenario,
    ScriptedCall,
    ScriptedModel,
    ScriptedTurn,
    capture_requests,
    list_files,
    read_file,
    scenario,
)

__all__ = [
    "CHAT_TEMPLATE",
    "DEMO_SYSTEM_PROMPT",
    "DEMO_TOOLS",
    "MODEL_CONFIG",
    "RANDOM_MODEL_CONFIG",
    "SCENARIOS",
    "VOCAB_SIZE",
    "CapturedRequest",
    "CityInfo",
    "Scenario",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedTurn",
    "build_demo_model",
    "build_random_model",
    "capture_requests",
    "default_cache_dir",
    "list_files",
    "read_file",
    "scenario",
]
