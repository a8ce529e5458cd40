"""The demo model's training step computes exactly the plain forward's loss and gradients, faster.

Training runs shared prompt prefixes once, the last layer at the trained positions only, and
sibling branches on separate CPU streams. None of that may change what is learned: the loss and
every gradient must equal those of `model(sequence)` on each example on its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models.qwen2 import Model, ModelArgs

from pydantic_mlx.demo._training import (
    TrainingExample,
    _prefix_tree,  # pyright: ignore[reportPrivateUsage]
    _Streams,  # pyright: ignore[reportPrivateUsage]
    _tree_losses,  # pyright: ignore[reportPrivateUsage]
)

MARGIN = 0.25


def _examples() -> list[TrainingExample]:
    """Turns shaped like the demo's: one long shared prefix, branches, turns that extend earlier ones."""
    rng = random.Random(0)

    def tokens(count: int) -> tuple[int, ...]:
        return tuple(rng.randrange(1, 64) for _ in range(count))

    system = tokens(40)
    first_user, second_user = tokens(6), tokens(9)
    first_answer = tokens(7)
    return [
        TrainingExample("a", system + first_user, first_answer),
        TrainingExample("a", system + first_user + first_answer + tokens(5), tokens(4)),
        TrainingExample("b", system + second_user, tokens(11)),
        TrainingExample("c", system + second_user[:4] + tokens(3), tokens(2)),
        TrainingExample("d", tokens(12), tokens(6)),  # shares nothing
    ]


def _model(layers: int) -> Model:
    mx.random.seed(1)
    args = {
        "model_type": "qwen2",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "vocab_size": 64,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
    }
    return Model(ModelArgs.from_dict(args))


def _plain_losses(model: nn.Module, examples: list[TrainingExample]) -> tuple[mx.array, mx.array]:
    """Each example on its own through the model's whole forward."""
    loss, misses = mx.array(0.0), mx.array(0)
    for example in examples:
        sequence = example.prompt_ids + example.completion_ids
        logits = model(mx.array([sequence[:-1]]))[0, len(example.prompt_ids) - 1 :]
        targets = mx.array(example.completion_ids)
        loss = loss + nn.losses.cross_entropy(logits, targets, reduction="sum")
        chosen = mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
        others = mx.where(mx.arange(logits.shape[-1]) == targets[:, None], -mx.inf, logits)
        misses = misses + (chosen - others.max(axis=-1) < MARGIN).sum()
    return loss, misses


Losses = Callable[[nn.Module], tuple[mx.array, mx.array]]


def _on_tree(examples: list[TrainingExample], streams: int) -> Losses:
    tree = _prefix_tree(examples)
    created = _Streams.new(streams)

    def losses(model: nn.Module) -> tuple[mx.array, mx.array]:
        return _tree_losses(model, tree, None, MARGIN, _Streams(created))

    return losses


def _one_by_one(examples: list[TrainingExample]) -> Losses:
    def losses(model: nn.Module) -> tuple[mx.array, mx.array]:
        return _plain_losses(model, examples)

    return losses


def _loss_and_gradients(model: nn.Module, compute: Losses) -> tuple[float, int, dict[str, mx.array]]:
    (loss, misses), gradients = nn.value_and_grad(model, compute)(model)
    mx.eval(loss, misses, gradients)
    return loss.item(), int(misses.item()), dict(tree_flatten(gradients))


@pytest.mark.parametrize("layers", [1, 2])
def test_tree_step_equals_the_plain_forward_of_every_example(layers: int) -> None:
    examples = _examples()
    model = _model(layers)
    ours = _loss_and_gradients(model, _on_tree(examples, streams=2))
    plain = _loss_and_gradients(model, _one_by_one(examples))
    assert ours[0] == pytest.approx(plain[0], rel=1e-5)
    assert ours[1] == plain[1] > 0
    assert ours[2].keys() == plain[2].keys()
    for name, gradient in plain[2].items():
        assert mx.allclose(ours[2][name], gradient, rtol=1e-4, atol=1e-6).item(), name


def test_the_number_of_streams_does_not_change_the_result() -> None:
    examples = _examples()
    model = _model(1)
    one_loss, one_misses, one_gradients = _loss_and_gradients(model, _on_tree(examples, streams=1))
    loss, misses, gradients = _loss_and_gradients(model, _on_tree(examples, streams=3))
    assert (loss, misses) == (one_loss, one_misses)
    for name, gradient in one_gradients.items():
        assert mx.array_equal(gradients[name], gradient).item(), name
