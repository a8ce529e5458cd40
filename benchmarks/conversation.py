"""A 4-turn tool conversation three ways, side by side in one run:

1. `MLXModel` (in-process, prompt cache on);
2. `mlx_lm.server` (its own prompt cache) + pydantic-ai `OpenAIChatModel` over HTTP;
3. raw in-process `mlx_lm.stream_generate` with hand-managed KV-cache reuse (the floor).

Every path gets the same conversation (system prompt + 3 tools, ~450 prompt tokens, growing by
~70 a turn; the earlier assistant turns are scripted, so every path sees the same history) and
generates the same number of tokens per turn (end-of-turn suppressed by a logit bias). Paths
alternate turn by turn (so changes in machine load hit all of them alike); each round is a new
conversation sharing the system prompt and tools with the warm-up. Prints time per conversation
and the ratios (targets: MLXModel <= 1.02x raw, >= 1.1x faster than the server), then the tokens
prefilled per turn by MLXModel and by the server (from their usage) and without a cache.

    python benchmarks/conversation.py [--model PATH] [--tokens 16] [--rounds 2] [--no-server]

`--model` defaults to $PYDANTIC_MLX_REAL_MODEL, else the tiny demo model. The server path needs
the bench extra (`pip install -e ".[bench]"`). On Linux preload OpenBLAS for realistic numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _shared import check_server_client, default_model, free_port, start_server, stop_server
from mlx_lm import stream_generate
from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache
from mlx_lm.sample_utils import make_logits_processors
from pydantic_ai.direct import model_request
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import Tool

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt

SYSTEM_PROMPT = (
    "You are a careful coding assistant working in the user's repository. Use the tools to read files "
    "before you change them, write complete files rather than fragments, and run the tests after every "
    "change. Keep answers short and say what you changed and why. Never invent file contents: if you "
    "have not read a file, read it first. Prefer small, reviewable changes."
)


def read_file(path: str) -> str:
    """Read a UTF-8 text file of the repository.

    Args:
        path: Path of the file, relative to the repository root.
    """
    return ""


def write_file(path: str, content: str) -> str:
    """Write (create or replace) a UTF-8 text file of the repository.

    Args:
        path: Path of the file, relative to the repository root.
        content: The complete new content of the file.
    """
    return ""


def run_command(command: str) -> str:
    """Run a shell command in the repository root and return its exit code, stdout and stderr.

    Args:
        command: The command line, for example `pytest -q` or `ls src`.
    """
    return ""


TOOLS = [Tool(f).tool_def for f in (read_file, write_file, run_command)]

SCRIPT = [
    (
        "The function parse_config in src/app/config.py crashes when the file is empty. Can you fix it?",
        "I read src/app/config.py: parse_config calls json.loads on the raw text, which raises on an empty "
        "string. I will return an empty dict for blank files and keep the error for malformed JSON.",
    ),
    (
        "Good. Please also add a test for the empty file case in tests/test_config.py and run it.",
        "I added test_parse_config_empty_file, which writes an empty file to tmp_path and checks that "
        "parse_config returns {}. Running pytest -q tests/test_config.py: 4 passed.",
    ),
    (
        "Now make the error message for malformed JSON mention the file path and the line number.",
        "parse_config now catches json.JSONDecodeError and raises ConfigError with the path and "
        "error.lineno in the message. I updated the existing malformed-file test to match it.",
    ),
    ("Finally, summarise the changes in two sentences for the changelog.", ""),
]


def conversation(round_id: int, turns: int) -> list[list[ModelMessage]]:
    """The message list of each turn of conversation `round_id` (new conversations share the prefix)."""
    history: list[ModelMessage] = []
    per_turn: list[list[ModelMessage]] = []
    for index, (user, assistant) in enumerate(SCRIPT[:turns]):
        parts: list[Any] = [SystemPromptPart(SYSTEM_PROMPT)] if index == 0 else []
        text = f"(ticket {round_id}) {user}" if index == 0 else user
        history = [*history, ModelRequest(parts=[*parts, UserPromptPart(text)])]
        per_turn.append(history)
        history = [*history, ModelResponse(parts=[TextPart(assistant)])]
    return per_turn


class RawReuse:
    """The floor: stream_generate on the rendered prompt, reusing the KV cache of the last turn by hand."""

    def __init__(self, model: MLXModel) -> None:
        self.loaded = model.loaded
        self.cache: list[Any] | None = None
        self.tokens: list[int] = []

    def turn(self, messages: list[ModelMessage], settings: ModelSettings) -> None:
        tokenizer = self.loaded.tokenizer
        prompt = render_prompt(tokenizer, messages, TOOLS)  # type: ignore[arg-type]
        if self.cache is None:
            self.cache = make_prompt_cache(self.loaded.model)
        common = 0
        limit = min(len(self.tokens), len(prompt) - 1)
        while common < limit and self.tokens[common] == prompt[common]:
            common += 1
        trim_prompt_cache(self.cache, len(self.tokens) - common)
        bias = {int(k): float(v) for k, v in settings["logit_bias"].items()}
        generated: list[int] = []
        for response in stream_generate(
            self.loaded.model,
            tokenizer,
            prompt[common:],
            max_tokens=settings["max_tokens"],
            prompt_cache=self.cache,
            logits_processors=make_logits_processors(logit_bias=bias),
        ):
            generated.append(response.token)
        self.tokens = (prompt + generated)[: self.cache[0].offset]


async def _sync(fn: Callable[..., None], *args: Any) -> None:
    """Run the raw path right here, on the loop's thread: nothing else runs meanwhile."""
    fn(*args)


async def main(source: str, args: argparse.Namespace) -> None:
    mlx_model = MLXModel(Path(source) if Path(source).exists() else source)
    await mlx_model.load()
    eos = sorted(mlx_model.loaded.tokenizer.eos_token_ids)
    settings: ModelSettings = {
        "max_tokens": args.tokens,
        "temperature": 0.0,
        "logit_bias": {str(t): -1000 for t in eos},
    }
    params = ModelRequestParameters(function_tools=TOOLS, allow_text_output=True)
    raw = RawReuse(mlx_model)

    async def via(model: Model, messages: list[ModelMessage]) -> ModelResponse:
        return await model_request(model, messages, model_settings=settings, model_request_parameters=params)

    paths: dict[str, Callable[[list[ModelMessage]], Awaitable[Any]]] = {
        "raw stream_generate + reuse": lambda m: _sync(raw.turn, m, settings),
        "MLXModel": lambda m: via(mlx_model, m),
    }
    server = None
    if not args.no_server:
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        port = free_port()
        server = start_server(source, port)
        provider = OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        server_model = OpenAIChatModel(source, provider=provider)
        paths["mlx_lm.server + OpenAIChatModel"] = lambda m: via(server_model, m)

    try:
        for turn in paths.values():  # warm-up: load, compile, fill allocator pools
            await turn(conversation(0, 1)[0])
        # Paths alternate turn by turn, so a change in machine load hits all of them alike.
        times: dict[str, list[float]] = {name: [] for name in paths}
        prefill_rows: list[tuple[int, int, int | None, int | None]] = []
        for round_id in range(1, args.rounds + 1):
            elapsed = dict.fromkeys(paths, 0.0)
            for turn_index, messages in enumerate(conversation(round_id, args.turns), start=1):
                row: dict[str, ModelResponse] = {}
                for name, turn in paths.items():
                    started = time.perf_counter()
                    response = await turn(messages)
                    elapsed[name] += time.perf_counter() - started
                    if isinstance(response, ModelResponse):
                        row[name] = response
                if round_id == 1:
                    ours = row["MLXModel"]
                    theirs = row.get("mlx_lm.server + OpenAIChatModel")
                    prefill_rows.append(
                        (
                            turn_index,
                            ours.usage.input_tokens,
                            (ours.provider_details or {}).get("prefilled_tokens"),
                            theirs.usage.input_tokens - theirs.usage.cache_read_tokens if theirs else None,
                        )
                    )
            for name in paths:
                times[name].append(elapsed[name])
    finally:
        if server is not None:
            stop_server(server)

    print(
        f"model: {source}; {args.turns} turns, {args.tokens} generated tokens per turn, {args.rounds} rounds"
    )
    base = statistics.median(times["raw stream_generate + reuse"])
    print(f"{'path':<34}{'s / conversation':>18}{'x raw':>9}")
    for name, values in times.items():
        print(f"{name:<34}{statistics.median(values):>18.2f}{statistics.median(values) / base:>9.3f}")
    if server is not None:
        ratio = statistics.median(times["mlx_lm.server + OpenAIChatModel"]) / statistics.median(
            times["MLXModel"]
        )
        print(f"MLXModel is {ratio:.2f}x faster than the server path")

    print("\nprefilled tokens per turn (a new conversation after one with the same system prompt and tools;")
    print("without a prompt cache every prompt token is prefilled):")
    print(f"{'turn':<6}{'prompt':>8}{'MLXModel':>10}{'server':>8}{'no cache':>10}")
    for turn_index, prompt, ours_prefilled, server_prefilled in prefill_rows:
        server_text = "-" if server_prefilled is None else str(server_prefilled)
        print(f"{turn_index:<6}{prompt:>8}{ours_prefilled!s:>10}{server_text:>8}{prompt:>10}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-server", action="store_true")
    arguments = parser.parse_args()
    check_server_client(arguments.no_server)
    asyncio.run(main(arguments.model or default_model(), arguments))
