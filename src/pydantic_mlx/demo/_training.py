"""Train the demo model until greedy decoding reproduces every scripted turn.

The loss is taken on completion tokens only. Prompts are long (the tool schemas) and mostly shared,
so each group of sequences with the same system turn runs its common prefix once per step and
only the endings in a batch, attending to the prefix's keys and values; gradients flow through both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx_lm.models.base import create_causal_mask


@dataclass(frozen=True)
class TrainingExample:
    """One scripted turn: the rendered prompt's token ids and the ids the model must write after it."""

    scenario: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]


@dataclass(frozen=True)
class TrainingSettings:
    """The hyper-parameters (part of the model's recipe hash)."""

    learning_rate: float = 1e-3
    max_steps: int = 300
    # Stop once each completion token beats the runner-up by this many logits, so that the small
    # numeric differences between batched training and one-sequence decoding cannot flip a choice.
    margin: float = 1.0
    seed: int = 0


class _RecordingCache:
    """Keeps the keys and values a prefix forward computes, without detaching them from the graph."""

    offset = 0

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        self.keys, self.values = keys, values
        return keys, values

    def make_mask(self, length: int, return_array: bool = False, window_size: int | None = None) -> Any:
        return "causal"


class _PrefixCache:
    """A batch of endings attending to one shared prefix's keys and values."""

    def __init__(self, keys: mx.array, values: mx.array, batch: int) -> None:
        self.offset = keys.shape[2]
        self._keys = mx.broadcast_to(keys, (batch, *keys.shape[1:]))
        self._values = mx.broadcast_to(values, (batch, *values.shape[1:]))

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        return mx.concatenate([self._keys, keys], axis=2), mx.concatenate([self._values, values], axis=2)

    def make_mask(self, length: int, return_array: bool = False, window_size: int | None = None) -> Any:
        return create_causal_mask(length, self.offset)


@dataclass(frozen=True)
class _Group:
    prefix: mx.array  # (1, P)
    endings: mx.array  # (B, L): the rest of each sequence, right-padded
    targets: mx.array  # (B, L): the next token at each ending position
    weights: mx.array  # (B, L): 1 where the target is a completion token


def _groups(examples: Sequence[TrainingExample], split_token: int) -> list[_Group]:
    by_system_turn: dict[tuple[int, ...], list[TrainingExample]] = {}
    for example in examples:
        end = example.prompt_ids.index(split_token) + 1 if split_token in example.prompt_ids else 0
        by_system_turn.setdefault(example.prompt_ids[:end], []).append(example)
    groups: list[_Group] = []
    for members in by_system_turn.values():
        sequences = [m.prompt_ids + m.completion_ids for m in members]
        # The prefix stops before every completion's first predicting position.
        limit = min(len(m.prompt_ids) for m in members) - 1
        prefix_length = 0
        while prefix_length < limit and len({s[prefix_length] for s in sequences}) == 1:
            prefix_length += 1
        width = max(len(s) for s in sequences) - prefix_length - 1
        endings, targets, weights = [], [], []
        for member, sequence in zip(members, sequences, strict=True):
            inputs = list(sequence[prefix_length:-1])
            nexts = list(sequence[prefix_length + 1 :])
            first_completion = len(member.prompt_ids) - prefix_length - 1
            mask = [0.0] * first_completion + [1.0] * (len(inputs) - first_completion)
            padding = width - len(inputs)
            endings.append(inputs + [0] * padding)
            targets.append(nexts + [0] * padding)
            weights.append(mask + [0.0] * padding)
        groups.append(
            _Group(
                prefix=mx.array([sequences[0][:prefix_length]]),
                endings=mx.array(endings),
                targets=mx.array(targets),
                weights=mx.array(weights),
            )
        )
    return groups


def _group_logits(model: nn.Module, group: _Group) -> mx.array:
    recorders = [_RecordingCache() for _ in model.layers]
    model(group.prefix, cache=recorders)
    batch = group.endings.shape[0]
    caches = [_PrefixCache(r.keys, r.values, batch) for r in recorders]  # type: ignore[arg-type]
    return model(group.endings, cache=caches)


def train(
    model: nn.Module,
    examples: Sequence[TrainingExample],
    settings: TrainingSettings,
    *,
    split_token: int,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Train `model` in place until every completion token is the greedy choice by `settings.margin`.

    Returns the number of optimizer steps taken; raises `RuntimeError` if `settings.max_steps` is reached.
    """
    groups = _groups(examples, split_token)
    completion_tokens = sum(len(e.completion_ids) for e in examples)

    def loss_and_misses(model: nn.Module) -> tuple[mx.array, mx.array]:
        total = mx.array(0.0)
        misses = mx.array(0)
        for group in groups:
            logits = _group_logits(model, group).astype(mx.float32)
            losses = nn.losses.cross_entropy(logits, group.targets, reduction="none")
            total = total + (losses * group.weights).sum()
            target_logits = mx.take_along_axis(logits, group.targets[..., None], axis=-1)[..., 0]
            rivals = mx.where(mx.arange(logits.shape[-1]) == group.targets[..., None], -mx.inf, logits).max(
                axis=-1
            )
            short = (target_logits - rivals < settings.margin) & (group.weights > 0)
            misses = misses + mx.stop_gradient(short.sum())
        return total / completion_tokens, misses

    optimizer = optim.AdamW(learning_rate=settings.learning_rate)
    step = nn.value_and_grad(model, loss_and_misses)
    for number in range(settings.max_steps + 1):
        (loss, misses), grads = step(model)
        mx.eval(loss, misses)
        if int(misses.item()) == 0:
            return number
        if progress is not None and number % 10 == 0:
            progress(f"step {number}: loss {loss.item():.3f}, {int(misses.item())} tokens not yet learned")
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
    raise RuntimeError(
        f"the demo model did not learn its script in {settings.max_steps} steps; "
        "the scenarios may be too many for its size"
    )
