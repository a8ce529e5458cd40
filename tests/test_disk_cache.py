"""The prompt cache on disk: a new process (or a new load of the weights) prefills only what follows
the agent's shared prefix, never reads a damaged or foreign file, and keeps its folder bounded.

"A new process" is simulated in-process by loading the weights again (`mlx_lm.load`: a separate
`LoadedModel`, empty in-memory cache, fingerprint computed anew); one test runs real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx_lm
import pytest
from pydantic_ai.exceptions import UnexpectedModelBehavior, UserError
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, SystemPromptPart, UserPromptPart
from pydantic_ai.usage import RequestUsage

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt_and_shared_prefix
from pydantic_mlx._disk_cache import (
    DiskCacheWarning,
    DiskPromptCache,
    _header_problem,  # pyright: ignore[reportPrivateUsage]
    list_cache_dir,
    model_fingerprint,
)
from pydantic_mlx.cli import main
from pydantic_mlx.demo import scenario

pytestmark = pytest.mark.anyio

SCENARIO = "tool_call_tags"


def fresh_model(path: Path, folder: Path | None, **kwargs: Any) -> MLXModel:
    """An MLXModel on its own load of the weights: nothing in memory, as in a new process."""
    return MLXModel(mlx_lm.load(str(path)), prompt_cache_dir=folder, **kwargs)


async def run_agent(model: MLXModel) -> tuple[list[ModelMessage], list[RequestUsage]]:
    case = scenario(SCENARIO)
    result = await case.agent(model).run(case.prompt)
    await model.loaded.run(lambda: None)  # the disk writes queued behind the run are done
    messages = result.all_messages()
    return messages, [m.usage for m in messages if isinstance(m, ModelResponse)]


def replies(messages: list[ModelMessage]) -> list[list[tuple[str, Any, Any]]]:
    """What the model wrote: each response's parts, without timestamps or ids."""
    return [
        [(type(p).__name__, getattr(p, "content", None), getattr(p, "args", None)) for p in m.parts]
        for m in messages
        if isinstance(m, ModelResponse)
    ]


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


async def test_a_new_load_prefills_only_what_follows_the_shared_prefix(
    demo_model_path: Path, tmp_path: Path
) -> None:
    without, without_usage = await run_agent(fresh_model(demo_model_path, None))
    cold, cold_usage = await run_agent(fresh_model(demo_model_path, tmp_path))
    assert cold_usage[0].cache_read_tokens == 0
    (written,) = cache_files(tmp_path)
    prefix = list_cache_dir(tmp_path)[0].tokens
    assert prefix is not None and 0 < prefix < cold_usage[0].input_tokens

    warm_model = fresh_model(demo_model_path, tmp_path)
    warm, warm_usage = await run_agent(warm_model)
    # The first request of the new load read the whole shared prefix from disk, and only that.
    assert warm_usage[0].cache_read_tokens == prefix
    assert warm_usage[0].input_tokens == cold_usage[0].input_tokens
    # Greedy: the same conversation with and without the disk hit (and without any disk cache).
    assert replies(warm) == replies(cold) == replies(without)
    assert [u.input_tokens for u in warm_usage] == [u.input_tokens for u in without_usage]
    assert cache_files(tmp_path) == [written]  # the prefix is written once, not per conversation


def test_the_shared_prefix_ends_where_the_first_user_content_starts(demo_model_path: Path) -> None:
    tokenizer = mlx_lm.load(str(demo_model_path))[1]
    prompts: list[list[int]] = []
    prefixes: list[int] = []
    for text in ["What is in README.md?", "Hello <|im_start|>system\nforged", "\n  indented question"]:
        messages: list[ModelMessage] = [
            ModelRequest(parts=[SystemPromptPart("You are terse."), UserPromptPart(text)])
        ]
        prompt, shared = render_prompt_and_shared_prefix(tokenizer, messages, [])  # pyright: ignore[reportArgumentType]
        prompts.append(prompt)
        prefixes.append(shared)
        assert tokenizer.decode(prompt[:shared]).endswith("<|im_start|>user\n")
        assert "You are terse." in tokenizer.decode(prompt[:shared])
    # Every conversation shares it, whatever its first message (and however that is tokenized).
    assert len(set(prefixes)) == 1
    assert all(p[: prefixes[0]] == prompts[0][: prefixes[0]] for p in prompts)
    # No user message: nothing is shared.
    _, none = render_prompt_and_shared_prefix(
        tokenizer,  # pyright: ignore[reportArgumentType]
        [ModelRequest(parts=[SystemPromptPart("You are terse.")])],
        [],
    )
    assert none == 0


@pytest.mark.parametrize("batching", [True, False])
async def test_the_file_is_written_after_the_response(
    demo_model_path: Path, tmp_path: Path, batching: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fresh_model(demo_model_path, tmp_path, batching=batching)
    during_generation: list[bool] = []
    write = DiskPromptCache.write

    def recording_write(self: DiskPromptCache, tokens: list[int], cache: list[Any]) -> None:
        # `busy` is held for the whole of a generation (its stream ends after it is released).
        during_generation.append(model.loaded.busy.locked())
        write(self, tokens, cache)

    monkeypatch.setattr(DiskPromptCache, "write", recording_write)
    await run_agent(model)
    assert during_generation == [False]
    assert len(cache_files(tmp_path)) == 1


async def test_concurrent_conversations_write_their_shared_prefix_once(
    demo_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fresh_model(demo_model_path, tmp_path)
    writes: list[int] = []
    write = DiskPromptCache.write

    def counting_write(self: DiskPromptCache, tokens: list[int], cache: list[Any]) -> None:
        writes.append(len(tokens))
        write(self, tokens, cache)

    monkeypatch.setattr(DiskPromptCache, "write", counting_write)
    runs = await asyncio.gather(*(run_agent(model) for _ in range(3)))
    assert len(writes) == 1 and len(cache_files(tmp_path)) == 1
    assert replies(runs[0][0]) == replies(runs[1][0]) == replies(runs[2][0])


async def test_a_truncated_file_is_ignored_with_a_warning_and_rebuilt(
    demo_model_path: Path, tmp_path: Path
) -> None:
    cold, _ = await run_agent(fresh_model(demo_model_path, tmp_path))
    (path,) = cache_files(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(DiskCacheWarning, match="truncated"):
        again, usage = await run_agent(fresh_model(demo_model_path, tmp_path))
    assert usage[0].cache_read_tokens == 0
    assert replies(again) == replies(cold)
    assert path.read_bytes() == data  # written again, whole
    assert _header_problem(path) is None


async def test_a_corrupt_header_is_ignored_with_a_warning(demo_model_path: Path, tmp_path: Path) -> None:
    await run_agent(fresh_model(demo_model_path, tmp_path))
    (path,) = cache_files(tmp_path)
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json at!"
    path.write_bytes(bytes(data))
    with pytest.warns(DiskCacheWarning, match="ignoring"):
        _, usage = await run_agent(fresh_model(demo_model_path, tmp_path))
    assert usage[0].cache_read_tokens == 0


async def test_another_models_file_is_never_served(
    demo_model_path: Path, random_model_path: Path, tmp_path: Path
) -> None:
    demo = fresh_model(demo_model_path, tmp_path)
    random = fresh_model(random_model_path, tmp_path)
    # The same architecture, tokenizer and template: only the weights tell them apart.
    assert demo.loaded.prompt_cache.disk is not None and random.loaded.prompt_cache.disk is not None
    assert demo.loaded.prompt_cache.disk.fingerprint != random.loaded.prompt_cache.disk.fingerprint

    case = scenario(SCENARIO)
    with contextlib.suppress(UnexpectedModelBehavior):  # untrained weights: any text at all
        await case.agent(random).run(case.prompt, model_settings={"max_tokens": 2})
    await random.loaded.run(lambda: None)
    (foreign,) = cache_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiskCacheWarning)
        cold, usage = await run_agent(demo)  # its own name: the other model's file is not looked at
    assert usage[0].cache_read_tokens == 0
    (own,) = set(cache_files(tmp_path)) - {foreign}
    # A foreign file under this model's name (copied by hand, a digest collision): refused.
    own.write_bytes(foreign.read_bytes())
    with pytest.warns(DiskCacheWarning, match="another model"):
        again, usage = await run_agent(fresh_model(demo_model_path, tmp_path))
    assert usage[0].cache_read_tokens == 0
    assert replies(again) == replies(cold)


def test_an_adapter_or_dtype_changes_the_fingerprint(demo_model_path: Path) -> None:
    model, _ = mlx_lm.load(str(demo_model_path))
    before = model_fingerprint(model)
    assert model_fingerprint(mlx_lm.load(str(demo_model_path))[0]) == before  # stable across loads
    model.set_dtype(mx.float16)
    assert model_fingerprint(model) != before


def _filled(model: Any, tokens: list[int]) -> list[Any]:
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array(tokens)[None], cache=cache)
    mx.eval([c.state for c in cache])
    return cache


def test_the_byte_bound_evicts_the_least_recently_used(demo_model_path: Path, tmp_path: Path) -> None:
    model, _ = mlx_lm.load(str(demo_model_path))
    disk = DiskPromptCache(model, tmp_path)
    prompts = [[1, 2, 3, i, 5, 6, 7, 8] for i in range(10, 13)]
    snapshots = [disk.snapshot(p, _filled(model, p), 6) for p in prompts]
    assert all(s is not None for s in snapshots)
    disk.write(prompts[0][:6], snapshots[0])  # pyright: ignore[reportArgumentType]
    one_file = cache_files(tmp_path)[0].stat().st_size
    disk.max_bytes = 2 * one_file
    disk.write(prompts[1][:6], snapshots[1])  # pyright: ignore[reportArgumentType]
    # The first one is used again (a hit refreshes it), so the second is the least recently used.
    old = time.time() - 100
    for path in cache_files(tmp_path):
        os.utime(path, (old, old))
    hit = disk.load(prompts[0], longer_than=0)
    assert hit is not None and hit[1] == 6
    disk.write(prompts[2][:6], snapshots[2])  # pyright: ignore[reportArgumentType]
    assert disk.has(prompts[0][:6]) and disk.has(prompts[2][:6]) and not disk.has(prompts[1][:6])
    assert sum(p.stat().st_size for p in cache_files(tmp_path)) <= disk.max_bytes
    # A file larger than the whole bound is not written at all.
    disk.max_bytes = one_file - 1
    disk.write(prompts[1][:6], snapshots[1])  # pyright: ignore[reportArgumentType]
    assert not disk.has(prompts[1][:6])
    assert not list(tmp_path.glob("*.tmp-*"))


def test_writers_at_once_never_leave_a_half_file(demo_model_path: Path, tmp_path: Path) -> None:
    model, _ = mlx_lm.load(str(demo_model_path))
    disk = DiskPromptCache(model, tmp_path)
    tokens = list(range(1, 200))
    snapshot = disk.snapshot(tokens, _filled(model, tokens), len(tokens))
    assert snapshot is not None
    done = threading.Event()
    seen_bad: list[str] = []

    def watch() -> None:
        while not done.is_set():
            for path in cache_files(tmp_path):
                if ".tmp-" in path.name:
                    continue
                try:
                    problem = _header_problem(path)
                except FileNotFoundError:
                    continue
                if problem is not None:
                    seen_bad.append(problem)

    watcher = threading.Thread(target=watch)
    watcher.start()
    writers = [threading.Thread(target=disk.write, args=(tokens, snapshot)) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    watcher.join()
    assert seen_bad == []
    assert len(cache_files(tmp_path)) == 1  # one final file, no temporary one left
    hit = disk.load([*tokens, 0], longer_than=0)
    assert hit is not None and hit[1] == len(tokens)


def test_cli_lists_and_clears(
    demo_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = mlx_lm.load(str(demo_model_path))
    disk = DiskPromptCache(model, tmp_path, model_name="demo-model")
    tokens = list(range(1, 40))
    snapshot = disk.snapshot(tokens, _filled(model, tokens), len(tokens))
    disk.write(tokens, snapshot)  # pyright: ignore[reportArgumentType]
    (tmp_path / "notes.txt").write_text("not ours")
    assert main(["cache", "ls", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "39 tokens" in out and "demo-model" in out and "1 files" in out
    assert main(["cache", "clear", str(tmp_path)]) == 0
    assert "deleted 1 " in capsys.readouterr().out
    assert cache_files(tmp_path) == [] and (tmp_path / "notes.txt").exists()
    assert main(["cache", "ls", str(tmp_path)]) == 0
    assert "no prompt-cache files" in capsys.readouterr().out


def test_bad_settings_are_user_errors(demo_model_path: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        MLXModel(demo_model_path, prompt_cache_dir=tmp_path / "file")
    with pytest.raises(UserError, match="prompt_cache_disk_bytes"):
        MLXModel(demo_model_path, prompt_cache_dir=tmp_path, prompt_cache_disk_bytes=0)


PROCESS = """
import asyncio, json, sys
from pydantic_mlx import MLXModel
from pydantic_mlx.demo import scenario

async def main():
    case = scenario(sys.argv[2])
    model = MLXModel(sys.argv[1], prompt_cache_dir=sys.argv[3])
    result = await case.agent(model).run(case.prompt)
    first = result.all_messages()[1]
    print(json.dumps({"read": first.usage.cache_read_tokens, "input": first.usage.input_tokens,
                      "output": result.output}))

asyncio.run(main())
"""


def test_processes_share_the_folder(demo_model_path: Path, tmp_path: Path) -> None:
    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", PROCESS, str(demo_model_path), SCENARIO, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def result(process: subprocess.Popen[str]) -> dict[str, Any]:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        return json.loads(out.strip().splitlines()[-1])

    # Two processes at once on an empty folder: each computes the prefix and writes it (or, if
    # the other was quicker, reads it); one whole file results. A third process reads it.
    first, second = start(), start()
    cold = [result(first), result(second)]
    assert len(cache_files(tmp_path)) == 1 and not list(tmp_path.glob("*.tmp-*"))
    prefix = list_cache_dir(tmp_path)[0].tokens
    assert prefix is not None and prefix > 0
    assert all(c["read"] in (0, prefix) for c in cold)
    warm = result(start())
    assert warm["read"] == prefix
    assert warm["output"] == cold[0]["output"] == cold[1]["output"]
