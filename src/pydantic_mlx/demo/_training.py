"""Train the demo model until greedy decoding reproduces every scripted turn.

The loss is taken on completion tokens only. Prompts are long (the tool schemas) and mostly shared,
so the training sequences are arranged in a tree of shared prefixes: each step runs every shared
stretch of tokens once, and the sequences that branch off it attend to its keys and values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim


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
    margin: float = 0.25
    seed: int = 0


class _SharedCache:
    """One attention layer's keys and values: those of the shared prefix above, then this forward's own.

    The prefix's keys and values stay in the autodiff graph, so the loss of every sequence under a
    prefix trains the prefix's forward too.
    """

    def __init__(self, above: tuple[mx.array, mx.array] | None, batch: int) -> None:
        self._above = above
        self._batch = batch
        self.offset = 0 if above is None else above[0].shape[2]
        self.keys: mx.array | None = None
        self.values: mx.array | None = None

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self._above is not None:
            above_keys, above_values = (mx.broadcast_to(a, (self._batch, *a.shape[1:])) for a in self._above)
            keys = mx.concatenate([above_keys, keys], axis=2)
            values = mx.concatenate([above_values, values], axis=2)
        self.keys, self.values = keys, values
        return keys, values

    def fetched(self) -> tuple[mx.array, mx.array]:
        """The keys and values of everything up to and including the last forward."""
        if self.keys is None or self.values is None:
            raise RuntimeError("no forward has run through this cache")
        return self.keys, self.values

    def make_mask(self, length: int, return_array: bool = False, window_size: int | None = None) -> Any:
        # MLX aligns a "causal" mask to the last key, which is what queries after a prefix need.
        return "causal"


@dataclass(frozen=True)
class _Endings:
    """The sequences that end below a prefix, as one right-padded batch."""

    inputs: mx.array  # (sequences, longest)
    positions: mx.array  # flat indices into `inputs` of the positions whose next token is trained
    targets: mx.array  # the trained next tokens, in the order of `positions`

    @classmethod
    def of(cls, members: list[tuple[list[int], int]], start: int) -> _Endings:
        width = max(len(sequence) for sequence, _ in members) - start - 1
        inputs: list[list[int]] = []
        positions: list[int] = []
        targets: list[int] = []
        for row, (sequence, prompt_length) in enumerate(members):
            tail = sequence[start:-1]
            inputs.append(tail + [0] * (width - len(tail)))
            for column in range(prompt_length - 1 - start, len(tail)):
                positions.append(row * width + column)
                targets.append(sequence[start + column + 1])
        return cls(mx.array(inputs), mx.array(positions), mx.array(targets))


@dataclass
class _PrefixNode:
    """A stretch of tokens shared by several sequences, the sequences that end here, and the branches."""

    tokens: list[int]
    endings: _Endings | None
    branches: list[_PrefixNode]


def _prefix_tree(examples: Sequence[TrainingExample]) -> _PrefixNode:
    sequences = [(list(e.prompt_ids + e.completion_ids), len(e.prompt_ids)) for e in examples]
    return _node(sequences, 0)


def _node(members: list[tuple[list[int], int]], start: int) -> _PrefixNode:
    # A prefix stops before the first position whose logits are trained (the last prompt token).
    limit = min(prompt_length for _, prompt_length in members) - 1
    end = start
    while end < limit and len({sequence[end] for sequence, _ in members}) == 1:
        end += 1
    ending_here: list[tuple[list[int], int]] = []
    by_next: dict[int, list[tuple[list[int], int]]] = {}
    for sequence, prompt_length in members:
        if len(members) == 1 or prompt_length - 1 <= end:
            ending_here.append((sequence, prompt_length))
        else:
            by_next.setdefault(sequence[end], []).append((sequence, prompt_length))
    branches: list[_PrefixNode] = []
    for group in by_next.values():
        if len(group) == 1:
            ending_here.extend(group)
        else:
            branches.append(_node(group, end))
    endings = _Endings.of(ending_here, end) if ending_here else None
    return _PrefixNode(tokens=members[0][0][start:end], endings=endings, branches=branches)


def _tree_losses(
    model: nn.Module, node: _PrefixNode, above: list[tuple[mx.array, mx.array]] | None, margin: float
) -> tuple[mx.array, mx.array]:
    """Summed completion loss and count of not-yet-learned tokens for every sequence under `node`."""
    body = cast(nn.Module, model.model)
    layers = len(cast(Sequence[nn.Module], model.layers))
    if node.tokens:
        caches = [_SharedCache(above[i] if above else None, 1) for i in range(layers)]
        body(mx.array([node.tokens]), cache=caches)  # keys and values only: no logits needed here
        above = [c.fetched() for c in caches]
    loss, misses = mx.array(0.0), mx.array(0)
    if node.endings is not None:
        batch = node.endings.inputs.shape[0]
        caches = [_SharedCache(above[i] if above else None, batch) for i in range(layers)]
        hidden = body(node.endings.inputs, cache=caches)
        # Logits only where a completion token is trained: the vocabulary projection is a fifth of the work.
        trained = hidden.reshape(-1, hidden.shape[-1])[node.endings.positions]
        logits = _logits(model, trained).astype(mx.float32)
        targets = node.endings.targets
        loss = nn.losses.cross_entropy(logits, targets, reduction="sum")
        chosen = mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
        runner_up = mx.where(mx.arange(logits.shape[-1]) == targets[:, None], -mx.inf, logits).max(axis=-1)
        misses = mx.stop_gradient((chosen - runner_up < margin).sum())
    for branch in node.branches:
        branch_loss, branch_misses = _tree_losses(model, branch, above, margin)
        loss, misses = loss + branch_loss, misses + branch_misses
    return loss, misses


def _logits(model: nn.Module, hidden: mx.array) -> mx.array:
    if hasattr(model, "lm_head"):
        return cast(nn.Module, model.lm_head)(hidden)
    return cast(nn.Embedding, cast(nn.Module, model.model).embed_tokens).as_linear(hidden)


def train(
    model: nn.Module,
    examples: Sequence[TrainingExample],
    settings: TrainingSettings,
    *,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Train `model` in place until every completion token is the greedy choice by `settings.margin`.

    Returns the number of optimizer steps taken; raises `RuntimeError` if `settings.max_steps` is reached.
    """
    tree = _prefix_tree(examples)
    completion_tokens = sum(len(e.completion_ids) for e in examples)

    def loss_and_misses(model: nn.Module) -> tuple[mx.array, mx.array]:
        loss, misses = _tree_losses(model, tree, None, settings.margin)
        return loss / completion_tokens, misses

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
