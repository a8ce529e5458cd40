"""Train the demo model until greedy decoding reproduces every scripted turn.

The loss is taken on completion tokens only, and that decides the work of a training step:

- Prompts are long (the tool schemas) and mostly shared, so the training sequences are arranged in a
  tree of shared prefixes: each step runs every shared stretch of tokens once, and the sequences
  that branch off it attend to its keys and values.
- The last layer's output is used only where a token is trained; every other position gives it
  keys and values and nothing else. So the last layer computes queries, attention, MLP and logits
  at the trained positions only. The demo model has one layer: a prompt token costs its key and
  value projections, under a tenth of a full pass.
- Sibling branches of the tree run on separate CPU streams, which MLX runs in threads of their own.
"""

from __future__ import annotations

import os
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


KeysValues = tuple[mx.array, mx.array]
"""One attention layer's keys and values, (batch, kv heads, positions, head size) each."""


class _SharedCache:
    """One attention layer's keys and values: those of the shared prefix above, then this forward's own.

    The prefix's keys and values stay in the autodiff graph, so the loss of every sequence under a
    prefix trains the prefix's forward too.
    """

    def __init__(self, above: KeysValues | None) -> None:
        self._above = above
        self.offset = 0 if above is None else above[0].shape[2]
        self.keys: mx.array | None = None
        self.values: mx.array | None = None

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> KeysValues:
        self.keys, self.values = _after(self._above, keys, values)
        return self.keys, self.values

    def fetched(self) -> KeysValues:
        """The keys and values of everything up to and including the last forward."""
        if self.keys is None or self.values is None:
            raise RuntimeError("no forward has run through this cache")
        return self.keys, self.values

    def make_mask(self, length: int, return_array: bool = False, window_size: int | None = None) -> Any:
        # MLX aligns a "causal" mask to the last key, which is what queries after a prefix need.
        return "causal"


def _after(above: KeysValues | None, keys: mx.array, values: mx.array) -> KeysValues:
    """`keys` and `values` of a batch, preceded by the (one-sequence) prefix's."""
    if above is None:
        return keys, values
    batch = keys.shape[0]
    above_keys, above_values = (mx.broadcast_to(a, (batch, *a.shape[1:])) for a in above)
    return mx.concatenate([above_keys, keys], axis=2), mx.concatenate([above_values, values], axis=2)


@dataclass(frozen=True)
class _Endings:
    """The sequences that end below a prefix, as one right-padded batch, and their trained positions."""

    inputs: mx.array  # (sequences, width): the tokens after the prefix, right-padded
    columns: mx.array  # (sequences, most trained): columns of `inputs` whose next token is trained, 0-padded
    visible: mx.array  # (sequences, 1, most trained, prefix + width): keys each trained position sees
    trained: mx.array  # indices into the flattened `columns` of the real (not padding) trained positions
    targets: mx.array  # the trained next tokens, in the order of `trained`

    @classmethod
    def of(cls, members: list[tuple[list[int], int]], start: int) -> _Endings:
        width = max(len(sequence) for sequence, _ in members) - start - 1
        most = max(len(sequence) - prompt_length for sequence, prompt_length in members)
        inputs: list[list[int]] = []
        columns: list[list[int]] = []
        trained: list[int] = []
        targets: list[int] = []
        for row, (sequence, prompt_length) in enumerate(members):
            tail = sequence[start:-1]
            inputs.append(tail + [0] * (width - len(tail)))
            row_columns = list(range(prompt_length - 1 - start, len(tail)))
            columns.append(row_columns + [0] * (most - len(row_columns)))
            trained.extend(row * most + index for index in range(len(row_columns)))
            targets.extend(sequence[start + column + 1] for column in row_columns)
        column_array = mx.array(columns)
        # Causal: the trained position at column c sees the prefix and its own row up to c.
        visible = mx.arange(start + width)[None, None, None, :] <= (start + column_array)[:, None, :, None]
        return cls(mx.array(inputs), column_array, visible, mx.array(trained), mx.array(targets))


@dataclass
class _PrefixNode:
    """A stretch of tokens shared by several sequences, the sequences that end here, and the branches."""

    start: int  # how many tokens precede this stretch
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
    return _PrefixNode(start=start, tokens=members[0][0][start:end], endings=endings, branches=branches)


def _heads(projected: mx.array, heads: int) -> mx.array:
    """(batch, positions, heads * size) to (batch, heads, positions, size)."""
    batch, positions, _ = projected.shape
    return projected.reshape(batch, positions, heads, -1).transpose(0, 2, 1, 3)


def _body(model: nn.Module) -> Any:
    """mlx_lm's (untyped) `Qwen2Model` inside `model`: embeddings, layers, final norm."""
    return model.model


def _keys_and_values(
    model: nn.Module, inputs: mx.array, above: list[KeysValues] | None, start: int
) -> tuple[mx.array, mx.array, list[KeysValues]]:
    """Run `inputs` (after `start` prefix tokens) up to the last layer's attention.

    Returns the residual stream entering the last layer, its normalized input, and every layer's
    keys and values from the first token on.
    """
    layers = _body(model).layers
    hidden = _body(model).embed_tokens(inputs)
    keys_values: list[KeysValues] = []
    for index, layer in enumerate(layers[:-1]):
        cache = _SharedCache(above[index] if above else None)
        hidden = layer(hidden, "causal", cache)
        keys_values.append(cache.fetched())
    last = layers[-1]
    attention = last.self_attn
    normalized = last.input_layernorm(hidden)
    keys = attention.rope(_heads(attention.k_proj(normalized), attention.n_kv_heads), offset=start)
    values = _heads(attention.v_proj(normalized), attention.n_kv_heads)
    keys_values.append(_after(above[-1] if above else None, keys, values))
    return hidden, normalized, keys_values


def _trained_logits(
    model: nn.Module, endings: _Endings, above: list[KeysValues] | None, start: int
) -> mx.array:
    """The logits at the trained positions of `endings`: the model's forward, with the last layer
    (mlx_lm's qwen2 `TransformerBlock`) run at those positions only."""
    hidden, normalized, keys_values = _keys_and_values(model, endings.inputs, above, start)
    last = _body(model).layers[-1]
    attention = last.self_attn
    batch, most = endings.columns.shape
    at_columns = endings.columns[:, :, None]
    residual = mx.take_along_axis(hidden, at_columns, axis=1)
    queries = attention.q_proj(mx.take_along_axis(normalized, at_columns, axis=1))
    # Each query has a position of its own: rotate them as a batch of one-token sequences.
    queries = queries.reshape(batch * most, 1, attention.n_heads, -1).transpose(0, 2, 1, 3)
    queries = attention.rope(queries, offset=(start + endings.columns).reshape(-1))
    queries = queries.reshape(batch, most, attention.n_heads, -1).transpose(0, 2, 1, 3)
    keys, values = keys_values[-1]
    attended = mx.fast.scaled_dot_product_attention(
        queries, keys, values, scale=attention.scale, mask=endings.visible
    )
    residual = residual + attention.o_proj(attended.transpose(0, 2, 1, 3).reshape(batch, most, -1))
    residual = residual + last.mlp(last.post_attention_layernorm(residual))
    output = _body(model).norm(residual).reshape(batch * most, -1)[endings.trained]
    return _logits(model, output).astype(mx.float32)


class _Streams:
    """Hands out CPU streams to the tree's pieces of work, the least loaded first.

    MLX runs each stream in a thread of its own, and an operation's backward pass runs on its
    stream, so sibling branches train on separate cores. Which stream runs an operation does not
    change the graph, so the result does not depend on the number of streams.
    """

    def __init__(self, streams: Sequence[mx.Stream]) -> None:
        self._streams = streams
        self._loads = [0] * len(streams)

    @staticmethod
    def new(count: int) -> list[mx.Stream]:
        """`count` CPU streams, the default one first (each new one is a thread for the process's life)."""
        return [mx.default_stream(mx.cpu), *(mx.new_stream(mx.cpu) for _ in range(count - 1))]

    def take(self, work: int) -> mx.Stream:
        least = self._loads.index(min(self._loads))
        self._loads[least] += work
        return self._streams[least]


_KEYS_VALUES_WORK = 1
_TRAINED_WORK = 16
"""A trained position's work (query, attention, MLP, logits) against a key and value's, roughly."""

_MOST_STREAMS = 4
"""Two streams a core (so that a core has work while a stream waits for another's result), up to
this many: the tree has only a handful of independent branches."""


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
    return os.cpu_count() or 1


def _tree_losses(
    model: nn.Module,
    node: _PrefixNode,
    above: list[KeysValues] | None,
    margin: float,
    streams: _Streams,
) -> tuple[mx.array, mx.array]:
    """Summed completion loss and count of not-yet-learned tokens for every sequence under `node`."""
    if node.tokens:
        with mx.stream(streams.take(len(node.tokens) * _KEYS_VALUES_WORK)):
            _, _, above = _keys_and_values(model, mx.array([node.tokens]), above, node.start)
    start = node.start + len(node.tokens)
    loss, misses = mx.array(0.0), mx.array(0)
    if node.endings is not None:
        endings = node.endings
        work = endings.inputs.size * _KEYS_VALUES_WORK + endings.targets.size * _TRAINED_WORK
        with mx.stream(streams.take(work)):
            logits = _trained_logits(model, endings, above, start)
            targets = endings.targets
            loss = nn.losses.cross_entropy(logits, targets, reduction="sum")
            chosen = mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
            others = mx.where(mx.arange(logits.shape[-1]) == targets[:, None], -mx.inf, logits)
            runner_up = others.max(axis=-1)
            misses = mx.stop_gradient((chosen - runner_up < margin).sum())
    for branch in node.branches:
        branch_loss, branch_misses = _tree_losses(model, branch, above, margin, streams)
        loss, misses = loss + branch_loss, misses + branch_misses
    return loss, misses


def _logits(model: nn.Module, hidden: mx.array) -> mx.array:
    if hasattr(model, "lm_head"):
        return cast(nn.Module, model.lm_head)(hidden)
    return _body(model).embed_tokens.as_linear(hidden)


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
    streams = _Streams.new(min(_MOST_STREAMS, 2 * _cores()))

    def loss_and_misses(model: nn.Module) -> tuple[mx.array, mx.array]:
        loss, misses = _tree_losses(model, tree, None, settings.margin, _Streams(streams))
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
