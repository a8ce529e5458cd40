"""Continuous batching on the tiny real model: batched generations equal their one-at-a-time runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import pytest

from pydantic_mlx._batching import BatchScheduler, LogitsProcessor
from pydantic_mlx._generation import GenerationOptions, GenerationStream, start_generation
from pydantic_mlx._loading import LoadedModel, loaded_model

pytestmark = pytest.mark.anyio

QUESTIONS = [
    "Say hello.",
    "What does README.md say?",
    "Show me pyproject.toml.",
    "Which files are in the project?",
    "Read README.md and setup.cfg.",
    "Open setup.cfg.",
    "Which city is the capital of France?",
    "Which city is the capital of Italy?",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def loaded(demo_model_path: Path) -> LoadedModel:
    # A private instance, outside the shared registry: these tests own its prompt cache.
    shared = loaded_model(demo_model_path)
    shared.load_sync()
    return LoadedModel((shared.model, shared.tokenizer))


def chat_prompt(loaded: LoadedModel, question: str) -> list[int]:
    text = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    return list(loaded.tokenizer.encode(text, add_special_tokens=False))


@pytest.fixture(scope="module")
def prompts(loaded: LoadedModel) -> list[list[int]]:
    """16 prompts: chat turns, plain text, and two longer than one prefill chunk (256 tokens)."""
    chats = [chat_prompt(loaded, q) for q in QUESTIONS]
    plain = [
        list(loaded.tokenizer.encode(t, add_special_tokens=False))
        for t in ["def main():", "hello world", "a b c d e f g h", "The capital of France is"]
    ]
    files = " ".join(f"src/module_{i}.py" for i in range(60))
    long = [chat_prompt(loaded, f"Which of these files matter? {files}"), chat_prompt(loaded, files * 2)]
    assert all(len(p) > 256 for p in long)
    return [*chats, *plain, *long, chats[0], plain[0]]


@dataclass
class Output:
    text: str
    tokens: list[int]
    finish_reason: str


async def collect(stream: GenerationStream) -> Output:
    text = "".join([t async for t in stream])
    return Output(text, stream.stats.output_token_ids, stream.stats.finish_reason)


async def one_at_a_time(loaded: LoadedModel, prompt: list[int], options: GenerationOptions) -> Output:
    await loaded.run(loaded.prompt_cache.clear)
    return await collect(start_generation(loaded, prompt, options))


GREEDY = GenerationOptions(max_tokens=24)


@pytest.fixture(scope="module")
def references(loaded: LoadedModel, prompts: list[list[int]]) -> list[Output]:
    async def run_all() -> list[Output]:
        return [await one_at_a_time(loaded, p, GREEDY) for p in prompts]

    return asyncio.run(run_all())


@pytest.mark.parametrize("n", [1, 4, 16])
async def test_batched_greedy_equals_one_at_a_time(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output], n: int
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    outputs = await asyncio.gather(*(collect(scheduler.start(p, GREEDY)) for p in prompts[:n]))
    assert outputs == references[:n]
    if n > 1:
        assert scheduler.largest_batch > 1  # they really were generated together
    assert not loaded.busy.locked()


async def test_requests_join_a_running_batch(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    options = GenerationOptions(max_tokens=64)
    long_reference = await one_at_a_time(loaded, prompts[12], options)
    await loaded.run(loaded.prompt_cache.clear)
    first = scheduler.start(prompts[12], options)
    early = await first.__anext__()  # the first request is decoding...
    later = [scheduler.start(p, GREEDY) for p in prompts[:6]]  # ...when these arrive
    rest = await collect(first)
    assert Output(early + rest.text, rest.tokens, rest.finish_reason) == long_reference
    assert [await collect(s) for s in later] == references[:6]


async def test_mixed_settings_are_honoured_per_request(loaded: LoadedModel, prompts: list[list[int]]) -> None:
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    greedy_text = (await one_at_a_time(loaded, prompts[8], GenerationOptions(max_tokens=16))).text
    cases = [
        (prompts[0], GenerationOptions(max_tokens=3)),
        (prompts[8], GenerationOptions(max_tokens=16, stop_sequences=(greedy_text[4:7],))),
        (prompts[9], GenerationOptions(max_tokens=20, logit_bias={eos: -1000.0})),
        (prompts[10], GenerationOptions(max_tokens=20, presence_penalty=2.0)),
        (prompts[11], GenerationOptions(max_tokens=20, frequency_penalty=2.0)),
        (prompts[1], GenerationOptions(max_tokens=20, temperature=1.0, seed=7)),
        (prompts[2], GenerationOptions(max_tokens=20, temperature=0.8, top_k=5, seed=3)),
        (prompts[3], GenerationOptions(max_tokens=20)),
    ]
    expected = [await one_at_a_time(loaded, p, o) for p, o in cases]
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    outputs = await asyncio.gather(*(collect(scheduler.start(p, o)) for p, o in cases))
    assert outputs == expected
    assert outputs[0].finish_reason == "length" and len(outputs[0].tokens) == 3
    assert outputs[1].finish_reason == "stop_sequence" and outputs[1].text == greedy_text[:4]
    assert outputs[2].finish_reason == "length" and eos not in outputs[2].tokens
    assert scheduler.largest_batch > 1


async def test_extra_processors_are_made_per_request_and_see_the_completion(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    seen: dict[int, list[int]] = {}
    made_on: set[str] = set()

    def forbidding(row: int, token: int) -> Callable[[], LogitsProcessor]:
        def make() -> LogitsProcessor:
            made_on.add(threading.current_thread().name)
            seen[row] = []

            def processor(tokens: mx.array, logits: mx.array) -> mx.array:
                seen[row].append(tokens.shape[-1])
                return logits.at[:, token].add(-1000.0)

            return processor

        return make

    scheduler = BatchScheduler(loaded)
    options = [
        GenerationOptions(max_tokens=12, extra_processors=(forbidding(i, references[i].tokens[0]),))
        for i in range(3)
    ]
    outputs = await asyncio.gather(*(collect(scheduler.start(prompts[i], options[i])) for i in range(3)))
    for i, output in enumerate(outputs):
        assert output.tokens[0] != references[i].tokens[0]
        # The completion so far, never the prompt (one call more than tokens: the batch computes a
        # step ahead of the tokens it hands out).
        assert seen[i] == list(range(len(output.tokens) + 1))
    assert made_on == {"pydantic-mlx-generate_0"}
    assert outputs == [await one_at_a_time(loaded, prompts[i], options[i]) for i in range(3)]


async def test_cancelling_one_leaves_the_others_correct(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    endless = scheduler.start(prompts[12], GenerationOptions(max_tokens=100_000, logit_bias={eos: -1000.0}))
    others = [asyncio.ensure_future(collect(scheduler.start(p, GREEDY))) for p in prompts[:4]]
    async for _ in endless:
        break
    await endless.aclose()
    assert endless.stats.finish_reason == "cancelled"
    assert endless.stats.output_tokens < 1000
    assert await asyncio.gather(*others) == references[:4]
    assert not loaded.busy.locked()


async def test_a_request_cancelled_before_it_joins_never_runs(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    scheduler = BatchScheduler(loaded, max_batch_size=1)
    first = scheduler.start(prompts[0], GREEDY)
    second = scheduler.start(prompts[1], GREEDY)
    await second.aclose()
    assert (second.stats.finish_reason, second.stats.output_tokens) == ("cancelled", 0)
    assert await collect(first) == references[0]


async def test_a_bad_request_fails_alone(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    scheduler = BatchScheduler(loaded)
    good = [scheduler.start(p, GREEDY) for p in prompts[:2]]
    bad = scheduler.start([], GREEDY)  # nothing to continue
    with pytest.raises(ValueError):
        await collect(bad)
    assert [await collect(s) for s in good] == references[:2]


async def test_batch_size_is_capped(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded, max_batch_size=2)
    outputs = await asyncio.gather(*(collect(scheduler.start(p, GREEDY)) for p in prompts[:6]))
    assert outputs == references[:6]
    assert scheduler.largest_batch == 2


async def test_batch_memory_is_capped(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded, max_batch_bytes=1)  # any KV at all is over the limit
    outputs = await asyncio.gather(*(collect(scheduler.start(p, GREEDY)) for p in prompts[:3]))
    assert outputs == references[:3]
    assert scheduler.largest_batch == 1  # each waited for the one before to leave


async def test_prompt_cache_is_reused_across_batched_turns(
    loaded: LoadedModel, prompts: list[list[int]]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    first_turns = await asyncio.gather(*(collect(scheduler.start(p, GREEDY)) for p in prompts[:3]))
    follow_ups = [
        [*p, *out.tokens, *chat_prompt(loaded, "Thanks. And now?")]
        for p, out in zip(prompts[:3], first_turns, strict=True)
    ]
    streams = [scheduler.start(p, GREEDY) for p in follow_ups]
    outputs = [await collect(s) for s in streams]
    for prompt, stream in zip(prompts[:3], streams, strict=True):
        # Everything the first turn computed (its prompt at least) was not computed again.
        assert stream.stats.cached_tokens >= len(prompt)
    expected = [await one_at_a_time(loaded, p, GREEDY) for p in follow_ups]
    assert outputs == expected


async def test_requests_from_several_threads_share_the_batch(
    loaded: LoadedModel, prompts: list[list[int]], references: list[Output]
) -> None:
    await loaded.run(loaded.prompt_cache.clear)
    scheduler = BatchScheduler(loaded)
    results: dict[int, Output] = {}

    def in_thread(i: int) -> None:
        async def run() -> Output:
            return await collect(scheduler.start(prompts[i], GREEDY))

        results[i] = asyncio.run(run())

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    await asyncio.to_thread(lambda: [t.join() for t in threads])
    assert [results[i] for i in range(4)] == references[:4]
