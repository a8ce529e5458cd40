"""The generation side of MLXModel: stop sequences, the prompt cache and the generation thread, on the tiny model."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _forked_runs import run_forked
from pydantic_mlx._generation import GenerationOptions, GenerationStats, StopSequenceFilter, start_generation
from pydantic_mlx._loading import LoadedModel, loaded_model
from pydantic_mlx._prompt_cache import PromptCache

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def loaded(demo_model_path: Path) -> LoadedModel:
    # A private instance (a pair), so these tests own its prompt cache.
    shared = loaded_model(demo_model_path)
    shared.load_sync()
    return loaded_model((shared.model, shared.tokenizer))


def prompt_of(loaded: LoadedModel, text: str) -> list[int]:
    return list(loaded.tokenizer.encode(text, add_special_tokens=False))


# --- stop sequences -----------------------------------------------------------------------------

_alphabet = st.text(alphabet="abc", max_size=30)


@given(
    text=_alphabet,
    stops=st.lists(st.text(alphabet="abc", min_size=1, max_size=4), max_size=3),
    data=st.data(),
)
def test_stop_filter_cuts_at_the_first_stop_for_every_chunking(
    text: str, stops: list[str], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    stop_filter = StopSequenceFilter(stops)
    emitted, stopped = "", False
    for chunk in chunks:
        out, stopped = stop_filter.feed(chunk)
        emitted += out
        if stopped:
            break
    if not stopped:
        emitted += stop_filter.flush()
    # The stop sequence completed first wins (earliest end, then earliest start).
    hits = [(i + len(s), i) for s in stops if (i := text.find(s)) >= 0]
    assert stopped == bool(hits)
    assert emitted == (text[: min(hits)[1]] if hits else text)


def test_stop_filter_holds_back_only_a_possible_start() -> None:
    stop_filter = StopSequenceFilter(["</answer>"])
    assert stop_filter.feed("Paris </an") == ("Paris ", False)
    assert stop_filter.feed("d more") == ("</and more", False)
    assert stop_filter.feed(" </answer> tail") == (" ", True)


# --- prompt cache -------------------------------------------------------------------------------


def _fill(loaded: LoadedModel, tokens: list[int]) -> list[object]:
    cache = PromptCache(loaded.model).lease([*tokens, 0]).cache  # a fresh cache
    loaded.model(mx.array(tokens)[None], cache=cache)
    mx.eval([c.state for c in cache])
    return cache


def test_prompt_cache_hands_over_a_prefix_and_copies_a_divergent_entry(loaded: LoadedModel) -> None:
    store = PromptCache(loaded.model)
    a = prompt_of(loaded, "You are a coding assistant. Read the file README.md please.")
    store.store(a, _fill(loaded, a))
    # A continuation of `a`: the entry is handed over whole.
    lease = store.lease([*a, 5, 6])
    assert lease.reused == len(a)
    assert len(store) == 0
    store.store(a, lease.cache)
    # A prompt that diverges half-way: a trimmed copy, the entry stays for its own conversation.
    b = a[:10] + prompt_of(loaded, " something else entirely")
    lease = store.lease(b)
    assert lease.reused == 10
    assert lease.cache[0].offset == 10
    assert len(store) == 1 and store._entries[0].cache[0].offset == len(a)  # pyright: ignore[reportPrivateUsage]


def test_prompt_cache_leaves_the_last_token_to_compute(loaded: LoadedModel) -> None:
    store = PromptCache(loaded.model)
    a = prompt_of(loaded, "Say hello to the user.")
    store.store(a, _fill(loaded, a))
    lease = store.lease(a)  # the same prompt again
    assert lease.reused == len(a) - 1


def test_prompt_cache_is_bounded(loaded: LoadedModel) -> None:
    store = PromptCache(loaded.model, max_entries=2)
    prompts = [prompt_of(loaded, f"conversation number {i} about files") for i in range(4)]
    for p in prompts:
        store.store(p, _fill(loaded, p))
    assert len(store) == 2
    assert [e.tokens for e in store._entries] == prompts[2:]  # pyright: ignore[reportPrivateUsage]
    one = store._entries[0].nbytes  # pyright: ignore[reportPrivateUsage]
    store.max_bytes = one
    store.store(prompts[0], _fill(loaded, prompts[0]))
    assert len(store) == 1 and store.nbytes <= one
    store.max_bytes = one - 1
    store.store(prompts[1], _fill(loaded, prompts[1]))  # too large to keep at all
    assert [e.tokens for e in store._entries] == [prompts[0]]  # pyright: ignore[reportPrivateUsage]


# --- the generation thread ----------------------------------------------------------------------


async def test_generation_reuses_the_cache_and_reports_it(loaded: LoadedModel) -> None:
    loaded.prompt_cache.clear()
    prompt = prompt_of(loaded, "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n")
    first = start_generation(loaded, prompt, GenerationOptions(max_tokens=8))
    text1 = "".join([t async for t in first])
    second = start_generation(loaded, prompt, GenerationOptions(max_tokens=8))
    text2 = "".join([t async for t in second])
    assert text1 == text2
    assert (first.stats.cached_tokens, first.stats.prefilled_tokens) == (0, len(prompt))
    assert (second.stats.cached_tokens, second.stats.prefilled_tokens) == (len(prompt) - 1, 1)
    assert first.stats.output_tokens == len(first.stats.output_token_ids) <= 8


async def test_a_generation_whose_processors_fail_keeps_the_cached_prefix(loaded: LoadedModel) -> None:
    # A follow-up turn whose processors cannot be made (a grammar that does not compile, say)
    # fails; the conversation's cached first turn must still serve the retry.
    def cannot_compile() -> Callable[[mx.array, mx.array], mx.array]:
        raise ValueError("grammar does not compile")

    loaded.prompt_cache.clear()
    prompt = prompt_of(loaded, "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n")
    first = start_generation(loaded, prompt, GenerationOptions(max_tokens=8))
    reply = "".join([t async for t in first])
    follow_up = prompt + prompt_of(loaded, f"{reply}<|im_end|>\n<|im_start|>user\nAnd now?<|im_end|>\n")
    broken = start_generation(
        loaded, follow_up, GenerationOptions(max_tokens=8, extra_processors=(cannot_compile,))
    )
    with pytest.raises(ValueError, match="does not compile"):
        _ = [t async for t in broken]
    retry = start_generation(loaded, follow_up, GenerationOptions(max_tokens=8))
    _ = [t async for t in retry]
    assert retry.stats.cached_tokens >= len(prompt)


async def test_generation_stops_within_a_token_when_closed(loaded: LoadedModel) -> None:
    prompt = prompt_of(loaded, "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n")
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    options = GenerationOptions(max_tokens=100_000, logit_bias={eos: -1000.0})
    stream = start_generation(loaded, prompt, options)
    async for _ in stream:
        break
    await stream.aclose()
    assert not loaded.busy.locked()
    assert stream.stats.finish_reason == "cancelled"
    assert stream.stats.output_tokens < 1000


async def _endless_stream_dropped(loaded: LoadedModel) -> tuple[GenerationStats, int]:
    """Starts a generation that never ends by itself, reads one chunk and drops the stream (no
    `aclose`): its stats, and the tokens it had sampled when it was dropped."""
    prompt = prompt_of(loaded, "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n")
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    stream = start_generation(loaded, prompt, GenerationOptions(max_tokens=3000, logit_bias={eos: -1000.0}))
    async for _ in stream:
        break
    stats = stream.stats
    at_drop = stats.output_tokens
    del stream
    return stats, at_drop


async def test_a_dropped_stream_stops_its_generation(loaded: LoadedModel) -> None:
    # A consumer that stops reading and drops the stream, without `aclose`, while its event loop
    # lives on: the stream is collected (the generation thread holds only its output side), and
    # its generation stops within a few tokens. It went on to `max_tokens`, holding the model.
    stats, at_drop = await _endless_stream_dropped(loaded)
    gc.collect()
    after = start_generation(loaded, prompt_of(loaded, "Hello"), GenerationOptions(max_tokens=1))
    _ = [t async for t in after]  # (generations run one at a time: the dropped one has ended)
    assert stats.finish_reason == "cancelled"
    assert stats.output_tokens - at_drop < 64


async def test_a_queued_generation_is_cancelled_without_waiting_for_the_queue(loaded: LoadedModel) -> None:
    # One at a time, a request waits behind the others; cancelling it (a timeout, a user leaving)
    # must not wait until its turn comes.
    prompt = prompt_of(loaded, "Hello")
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    long = GenerationOptions(max_tokens=3000, logit_bias={eos: -1000.0})
    ahead = [start_generation(loaded, prompt, long) for _ in range(2)]
    queued = start_generation(loaded, prompt, long)
    started = time.perf_counter()
    await queued.aclose()
    assert time.perf_counter() - started < 0.5
    assert (queued.stats.finish_reason, queued.stats.output_tokens) == ("cancelled", 0)
    for stream in ahead:
        await stream.aclose()
    assert not loaded.busy.locked()


async def test_generation_errors_reach_the_caller(loaded: LoadedModel) -> None:
    stream = start_generation(loaded, [], GenerationOptions(max_tokens=4))  # nothing to continue
    with pytest.raises(Exception):  # noqa: B017 - whatever mlx raises, it must surface here
        _ = [t async for t in stream]
    assert not loaded.busy.locked()


def test_a_collected_models_thread_serves_the_next_model(loaded: LoadedModel) -> None:
    # Generation threads never end (one ending at exit aborts in MLX): a collected model's thread
    # goes back to a pool, so creating and dropping models does not pile up threads.
    pair = (loaded.model, loaded.tokenizer)

    def generation_threads() -> int:
        return sum(t.name == "pydantic-mlx-generate" for t in threading.enumerate())

    before = generation_threads()
    for _ in range(5):
        model = LoadedModel(pair)
        thread = model._thread  # pyright: ignore[reportPrivateUsage]
        assert model.submit(lambda: threading.current_thread().name).result(10) == "pydantic-mlx-generate"
        del model
        gc.collect()
        thread.wait_idle(10)  # the release was queued before: it has run
    assert generation_threads() <= before + 1
    existing = set(threading.enumerate())
    # An idle thread is reused (this one, or another model's collected meanwhile), not a new one.
    assert LoadedModel(pair)._thread._thread in existing  # pyright: ignore[reportPrivateUsage]


EXIT_SCRIPT = """
import asyncio, sys, threading
from pydantic_mlx import MLXModel
from pydantic_mlx.demo import scenario

model = MLXModel(sys.argv[1])
sc = scenario("tool_call_tags")

def run_in_thread() -> None:
    asyncio.run(sc.agent(model).run(sc.prompt))

thread = threading.Thread(target=run_in_thread)
thread.start()
thread.join()
print(asyncio.run(sc.agent(model).run(sc.prompt)).output)
"""

# The model is collected when `main` returns, just before the interpreter finalizes.
EXIT_SCRIPT_LOCAL_MODEL = """
import asyncio, sys
from pydantic_mlx import MLXModel
from pydantic_mlx.demo import scenario

async def main() -> None:
    model = MLXModel(sys.argv[1])
    sc = scenario("tool_call_tags")
    results = await asyncio.gather(*(sc.agent(model).run(sc.prompt) for _ in range(3)))
    print(results[0].output)

asyncio.run(main())
"""


@pytest.mark.parametrize("script", [EXIT_SCRIPT, EXIT_SCRIPT_LOCAL_MODEL], ids=["global", "local"])
def test_the_process_exits_cleanly_after_generating(demo_model_path: Path, script: str) -> None:
    # The generation thread used MLX's compiled functions, whose per-thread cache takes the GIL
    # when the thread ends: a thread ending during interpreter exit aborted the process
    # ("terminate called without an active exception") in about a third of the runs (fewer with
    # OpenBLAS preloaded, which changes the timing, so the children run without it). A model
    # collected at exit used to end its thread just then (1 run in 5 of the "local" script).
    runs = 6
    done = run_forked(script, str(demo_model_path), runs=runs, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert done.exit_codes == str([0] * runs), done.stderr[-2000:]
    assert done.output == ["README.md says: Demo, a tiny project."] * runs
