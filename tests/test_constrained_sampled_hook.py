"""The grammar processor told each sampled token (`sampled`) follows it on a worker thread.

A decoder that calls `sampled` with each token it samples lets the processor read the token,
advance the grammar and compute the next mask on a worker while the decoding thread prepares the
next step. What the processor returns must be exactly what it returns when it reads the tokens it
is shown itself, step by step, and its results (`regions`, `problems`) must count every token told.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llguidance")

import mlx.core as mx

from pydantic_mlx._generation import sampled_hooks, with_sampled_hooks
from pydantic_mlx.constrained import tool_call_processor
from pydantic_mlx.constrained._decoding import GrammarLogitsProcessor
from test_constrained_device_masks import NOTE

TEXT_THEN_CALL = (
    'Sure, I will write it down.\n<tool_call>\n{"name": "write_note", "arguments": '
    '{"title": "plumber", "body": "call about the sink"}}\n</tool_call>'
)


@pytest.fixture(autouse=True)
def on_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Told tokens go to the worker here too (by default only where the model runs on a GPU)."""
    monkeypatch.setattr(GrammarLogitsProcessor, "worker", True)


def _outputs(
    processor: GrammarLogitsProcessor, tokens: list[int], width: int, *, told: bool
) -> list[list[float]]:
    """The processor's output at each step of a generation that samples `tokens`; `told`: the
    decoder calls `sampled` with each token (as an array) before showing it."""
    logits = mx.array(np.random.default_rng(0).standard_normal((1, width)).astype(np.float32))
    prompt = [1, 2, 3]
    outputs: list[list[float]] = []
    for i in range(len(tokens) + 1):
        outputs.append(processor(mx.array(prompt + tokens[:i]), logits)[0].tolist())  # pyright: ignore[reportArgumentType]
        if told and i < len(tokens):
            processor.sampled(mx.array([tokens[i]]))
    return outputs


@pytest.mark.parametrize("required", [True, False], ids=["forced", "lazy"])
def test_told_tokens_give_the_same_masks_as_tokens_read_from_the_context(
    random_tokenizer: Any, required: bool
) -> None:
    text = TEXT_THEN_CALL.split("\n", 1)[1] if required else TEXT_THEN_CALL
    tokens = [*random_tokenizer.encode(text, add_special_tokens=False), random_tokenizer.eos_token_id]
    width = len(random_tokenizer.get_vocab()) + 8

    def make() -> GrammarLogitsProcessor:
        return tool_call_processor(random_tokenizer, "hermes", [NOTE], required=required, parallel=False)

    read, told = make(), make()
    expected = _outputs(read, tokens, width, told=False)
    actual = _outputs(told, tokens, width, told=True)
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert np.array_equal(np.array(a), np.array(e)), step
    masked = sum(1 for e in expected if np.isinf(np.array(e)).any())
    assert masked >= len(tokens) // 2  # the call's tokens were masked, in both
    assert (told.regions, told.problems) == (read.regions, read.problems) == (1, [])


def test_the_told_token_is_followed_off_the_decoding_thread_and_counted_without_a_next_step(
    random_tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = tool_call_processor(random_tokenizer, "hermes", [NOTE], required=False, parallel=False)
    threads: set[int] = set()
    follow = GrammarLogitsProcessor._follow  # pyright: ignore[reportPrivateUsage]

    def recording(self: GrammarLogitsProcessor, tokens: list[int]) -> None:
        threads.add(threading.get_ident())
        follow(self, tokens)

    monkeypatch.setattr(GrammarLogitsProcessor, "_follow", recording)
    opening = random_tokenizer.encode("Sure.\n<tool_call>", add_special_tokens=False)
    logits = mx.zeros((1, len(random_tokenizer.get_vocab())))
    for i, token in enumerate(opening):
        processor(mx.array([1, *opening[:i]]), logits)
        processor.sampled(mx.array([token]))
    # No step follows the last token (generation ended there): reading the results waits for it.
    assert processor.regions == 1 and processor.constraining and processor.problems == []
    assert threads and threading.get_ident() not in threads


def test_on_the_cpu_backend_a_told_token_is_read_by_the_next_call(
    random_tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GrammarLogitsProcessor, "worker", None)
    assert mx.default_device() == mx.cpu  # (this suite runs on MLX's CPU backend)
    processor = tool_call_processor(random_tokenizer, "hermes", [NOTE], required=False, parallel=False)
    opening = random_tokenizer.encode("Sure.\n<tool_call>", add_special_tokens=False)
    logits = mx.zeros((1, len(random_tokenizer.get_vocab())))
    processor(mx.array([1]), logits)
    for i, token in enumerate(opening):
        processor.sampled(mx.array([token]))
        assert processor._pending is None  # pyright: ignore[reportPrivateUsage]
        processor(mx.array([1, *opening[: i + 1]]), logits)
    assert processor.regions == 1 and processor.constraining


def test_a_decoder_that_shows_fewer_tokens_than_it_told_is_refused(random_tokenizer: Any) -> None:
    processor = tool_call_processor(random_tokenizer, "hermes", [NOTE], required=True, parallel=False)
    logits = mx.zeros((1, len(random_tokenizer.get_vocab())))
    processor(mx.array([1, 2]), logits)
    processor.sampled(mx.array([random_tokenizer.encode("<tool_call>", add_special_tokens=False)[0]]))
    with pytest.raises(RuntimeError, match="every sampled token must be shown"):
        processor(mx.array([1, 2]), logits)


def test_generation_with_told_tokens_samples_what_it_samples_without(
    random_tokenizer: Any, random_model_path: Path
) -> None:
    """Real generation (random weights, temperature 1, mlx-lm's generate_step): the same seed gives
    the same tokens whether the processor is told each token or reads it, and the call is valid."""
    from mlx_lm import load
    from mlx_lm.generate import generate_step

    model, _ = load(str(random_model_path))
    prompt = mx.array(random_tokenizer.encode("Write a note.", add_special_tokens=False))

    def generate(told: bool, seed: int) -> tuple[list[int], GrammarLogitsProcessor]:
        processor = tool_call_processor(random_tokenizer, "hermes", [NOTE], required=True, parallel=False)
        key = mx.random.key(seed)

        def sample(logprobs: mx.array) -> mx.array:
            nonlocal key
            key, subkey = mx.random.split(key)
            return mx.random.categorical(logprobs, key=subkey)

        sampler = with_sampled_hooks(sample, sampled_hooks([processor]) if told else [])
        steps = generate_step(prompt, model, max_tokens=48, sampler=sampler, logits_processors=[processor])
        tokens = [int(token) for token, _ in steps]
        return tokens, processor

    regions: list[int] = []
    for seed in range(3):
        (read_tokens, read), (told_tokens, told) = generate(False, seed), generate(True, seed)
        assert told_tokens == read_tokens, seed
        assert (told.regions, told.problems) == (read.regions, read.problems), seed
        assert told.problems == [], seed
        regions.append(told.regions)
    # (A first token that opens the model's reasoning block moves the forced call after it.)
    assert 1 in regions, regions
