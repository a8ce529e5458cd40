"""The grammar processor keeps recent masks on the device: a step whose mask it has seen is one add.

Each test feeds the same sampled tokens to a processor that keeps masks and to one that builds
every step's mask from llguidance's bitmask (`device_masks = 0`, the behaviour before the cache),
and compares what they return, step by step, on logits wider than the vocabulary (padding rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("llguidance")

import mlx.core as mx

from pydantic_mlx.constrained import tool_call_processor
from pydantic_mlx.constrained._decoding import GrammarLogitsProcessor

NOTE = {
    "type": "function",
    "function": {
        "name": "write_note",
        "parameters": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
            "required": ["title", "body"],
        },
    },
}
COUNT = {
    "type": "function",
    "function": {
        "name": "count",
        "parameters": {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "unit": {"enum": ["apples", "pears"]}},
            "required": ["n", "unit"],
        },
    },
}
NOTE_CALL = (
    '<tool_call>\n{"name": "write_note", "arguments": {"title": "shopping list", '
    '"body": "milk, eggs, bread and butter; then call the plumber about the sink"}}\n</tool_call>'
)
COUNT_CALL = '<tool_call>\n{"name": "count", "arguments": {"n": 12, "unit": "pears"}}\n</tool_call>'


def _forced(
    tokenizer: Any, tools: list[dict[str, Any]], device_masks: int | None = None
) -> GrammarLogitsProcessor:
    processor = tool_call_processor(tokenizer, "hermes", tools, required=True, parallel=False)
    if device_masks is not None:
        processor.device_masks = device_masks
    return processor


class _Feed:
    """Feeds one call's tokens to a processor, one step at a time, as generation would."""

    def __init__(self, tokenizer: Any, processor: GrammarLogitsProcessor, call: str, width: int) -> None:
        self.processor = processor
        self.tokens = [*tokenizer.encode(call, add_special_tokens=False), tokenizer.eos_token_id]
        self.prompt = [1, 2, 3]
        self.width = width
        # Varied logits, so an output that kept another step's values would show.
        self.logits = mx.array(np.random.default_rng(0).standard_normal((1, width)).astype(np.float32))

    def step(self, i: int) -> list[float]:
        """The processor's output before token `i` (after the tokens before it were sampled)."""
        output = self.processor(mx.array(self.prompt + self.tokens[:i]), self.logits)
        return output[0].tolist()  # pyright: ignore[reportReturnType]

    def all(self) -> list[list[float]]:
        return [self.step(i) for i in range(len(self.tokens))]


def _width(tokenizer: Any) -> int:
    return len(tokenizer.get_vocab()) + 40  # padding rows past the vocabulary: never allowed


def test_a_kept_mask_equals_one_built_fresh_and_repeated_masks_are_kept_once(random_tokenizer: Any) -> None:
    width = _width(random_tokenizer)
    kept = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE]), NOTE_CALL, width)
    fresh = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE], device_masks=0), NOTE_CALL, width)
    kept_outputs, fresh_outputs = kept.all(), fresh.all()
    assert kept_outputs == fresh_outputs
    # Every step was masked, the sampled token allowed and the padding rows not.
    for output, token in zip(kept_outputs, kept.tokens, strict=True):
        assert output[token] != -np.inf
        assert all(value == -np.inf for value in output[width - 40 :])
    assert kept.processor.regions == 1 and kept.processor.problems == []
    # Inside the strings the mask repeats: far fewer masks kept than steps masked.
    assert 0 < len(kept.processor._biases) < len(kept.tokens) // 2  # pyright: ignore[reportPrivateUsage]
    assert fresh.processor._biases == {}  # pyright: ignore[reportPrivateUsage]


def test_the_kept_masks_are_bounded_and_the_least_recently_used_go_first(random_tokenizer: Any) -> None:
    width = _width(random_tokenizer)
    kept = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE], device_masks=3), NOTE_CALL, width)
    fresh = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE], device_masks=0), NOTE_CALL, width)
    biases = kept.processor._biases  # pyright: ignore[reportPrivateUsage]
    distinct: list[bytes] = []
    for i in range(len(kept.tokens)):
        assert kept.step(i) == fresh.step(i)
        assert len(biases) <= 3
        newest = next(reversed(biases))[2]  # the mask this step used is the most recent
        if newest in distinct:
            distinct.remove(newest)
        distinct.append(newest)
        assert [key[2] for key in biases] == distinct[-3:]
    assert len(distinct) > 3  # the call had more distinct masks than are kept: some were dropped


def test_processors_of_different_tool_sets_keep_their_own_masks(random_tokenizer: Any) -> None:
    # Interleaved on one thread, as a batch steps its sequences: each gets its own grammar's masks.
    width = _width(random_tokenizer)
    note = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE]), NOTE_CALL, width)
    count = _Feed(random_tokenizer, _forced(random_tokenizer, [COUNT]), COUNT_CALL, width)
    note_fresh = _Feed(random_tokenizer, _forced(random_tokenizer, [NOTE], device_masks=0), NOTE_CALL, width)
    count_fresh = _Feed(
        random_tokenizer, _forced(random_tokenizer, [COUNT], device_masks=0), COUNT_CALL, width
    )
    for i in range(max(len(note.tokens), len(count.tokens))):
        if i < len(note.tokens):
            assert note.step(i) == note_fresh.step(i)
        if i < len(count.tokens):
            assert count.step(i) == count_fresh.step(i)
    note_masks = note.processor._biases  # pyright: ignore[reportPrivateUsage]
    count_masks = count.processor._biases  # pyright: ignore[reportPrivateUsage]
    assert note_masks is not count_masks
    # After `"name": "` the two grammars allow different tool names: masks that differ.
    assert set(note_masks) != set(count_masks)
    assert note.processor.problems == [] and count.processor.problems == []


def test_a_kept_mask_follows_the_logits_dtype(random_tokenizer: Any) -> None:
    width = _width(random_tokenizer)
    processor = _forced(random_tokenizer, [COUNT])
    tokens = random_tokenizer.encode(COUNT_CALL, add_special_tokens=False)
    prompt = [1, 2, 3]
    processor(mx.array(prompt), mx.zeros((1, width), dtype=mx.float32))
    halves = processor(mx.array(prompt + tokens[:1]), mx.zeros((1, width), dtype=mx.float16))
    assert halves.dtype == mx.float16
    assert {key[0] for key in processor._biases} == {mx.float32, mx.float16}  # pyright: ignore[reportPrivateUsage]
