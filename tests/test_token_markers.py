"""Marker tokens reach the parser as such: `MarkerSplitter` on its own, then real generation on
the tiny model (one at a time and batched) whose sampled tokens are scripted by a logits
processor, read by the parser exactly as `MLXModel` reads them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydantic_mlx._batching import BatchScheduler
from pydantic_mlx._generation import GenerationOptions, GenerationStream, start_generation
from pydantic_mlx._loading import LoadedModel, loaded_model
from pydantic_mlx._token_markers import MarkerSplitter, MarkerText
from pydantic_mlx.parsers import ParseResult, StreamParser, ToolCall

pytestmark = pytest.mark.anyio

# --- the splitter -------------------------------------------------------------------------------


def test_a_marker_is_found_in_the_text_that_comes_out_after_it_was_sampled() -> None:
    splitter = MarkerSplitter()
    splitter.expect("<tool_call>")
    assert splitter.split("") == []
    assert splitter.split("Sure.\n<tool") == ["Sure.\n"]  # a tail that may become the marker waits
    assert splitter.split('_call>{"a"') == [MarkerText("<tool_call>"), '{"a"']
    assert [type(p) for p in splitter.split("x")] == [str]
    assert splitter.idle


def test_a_marker_cut_off_before_it_came_out_is_flushed_as_text() -> None:
    splitter = MarkerSplitter()
    splitter.expect("[TOOL_CALLS]")
    assert splitter.split("ok [TOOL") == ["ok "]
    assert splitter.flush() == "[TOOL"
    assert splitter.idle


@given(st.lists(st.integers(0, 60), max_size=8))
def test_the_pieces_always_join_to_the_text(cuts: list[int]) -> None:
    text = "a <tool_call>{} </tool_call> b <tool_call>"
    splitter = MarkerSplitter()
    for marker in ("<tool_call>", "</tool_call>", "<tool_call>"):
        splitter.expect(marker)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    pieces = [p for a, b in itertools.pairwise(bounds) for p in splitter.split(text[a:b])]
    assert "".join(pieces) + splitter.flush() == text
    assert [p for p in pieces if type(p) is MarkerText] == ["<tool_call>", "</tool_call>", "<tool_call>"]


# --- real generation with scripted tokens --------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(random_model_path: Path) -> LoadedModel:
    """The random-weight model with Mistral's markers grown into its vocabulary as special tokens."""
    from mlx_lm import load
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import AddedToken

    model, tokenizer = load(str(random_model_path))
    hf: Any = tokenizer._tokenizer  # pyright: ignore[reportAttributeAccessIssue]
    hf.add_tokens([AddedToken(t, special=True) for t in ("[TOOL_CALLS]", "[ARGS]")])
    # Rows for the new tokens in the (tied) embedding, so the model has logits for them.
    embedding = model.model.embed_tokens
    rows = len(hf) - embedding.weight.shape[0]
    grown = mx.random.normal((rows, embedding.weight.shape[1]), key=mx.random.key(7)) * 0.02
    embedding.weight = mx.concatenate([embedding.weight, grown.astype(embedding.weight.dtype)])
    mx.eval(embedding.weight)  # computed here: the generation thread cannot run this thread's graph
    return loaded_model((model, TokenizerWrapper(hf)))


def scripted(tokens: list[int]) -> Callable[[], Callable[[mx.array, mx.array], mx.array]]:
    """A logits processor that leaves the model one choice per step: the next scripted token."""

    def make() -> Callable[[mx.array, mx.array], mx.array]:
        step = 0

        def force(_tokens: mx.array, logits: mx.array) -> mx.array:
            nonlocal step
            allowed = mx.arange(logits.shape[-1]) == tokens[min(step, len(tokens) - 1)]
            step += 1
            return mx.where(allowed, logits, -mx.inf)

        return force

    return make


def encode(loaded: LoadedModel, text: str) -> list[int]:
    return list(loaded.tokenizer.encode(text, add_special_tokens=False))


def marker_id(loaded: LoadedModel, marker: str) -> int:
    return next(i for i, text in loaded.marker_tokens.items() if text == marker)


async def read(loaded: LoadedModel, stream: GenerationStream) -> tuple[list[str], ParseResult]:
    """The stream's items, and what the parser makes of them as `MLXModel` feeds it."""
    parser = StreamParser("mistral", special_tokens=loaded.marker_token_texts)
    items = [item async for item in stream]
    for item in items:
        parser.feed(item, special=type(item) is MarkerText)
    parser.close()
    return items, parser.result()


def scripts(loaded: LoadedModel) -> tuple[list[int], list[int]]:
    eos = next(iter(loaded.tokenizer.eos_token_ids))
    as_tokens = [
        *encode(loaded, "Sure.\n"),
        marker_id(loaded, "[TOOL_CALLS]"),
        *encode(loaded, "get_weather"),
        marker_id(loaded, "[ARGS]"),
        *encode(loaded, '{"city": "Paris"}'),
        eos,
    ]
    # Prose about the format: its marker spelled with ordinary tokens.
    spelled = [*encode(loaded, "Mistral writes [TOOL"), *encode(loaded, "_CALLS] before calls."), eos]
    assert marker_id(loaded, "[TOOL_CALLS]") not in spelled
    return as_tokens, spelled


CALL = ToolCall("get_weather", {"city": "Paris"})


async def test_one_at_a_time_a_sampled_marker_token_is_a_marker_and_a_spelled_one_is_text(
    loaded: LoadedModel,
) -> None:
    as_tokens, spelled = scripts(loaded)
    prompt = encode(loaded, "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")
    items, result = await read(
        loaded, start_generation(loaded, prompt, GenerationOptions(extra_processors=(scripted(as_tokens),)))
    )
    assert [i for i in items if type(i) is MarkerText] == ["[TOOL_CALLS]", "[ARGS]"]
    assert (result.content, result.calls) == ("Sure.\n", [CALL])
    items, result = await read(
        loaded, start_generation(loaded, prompt, GenerationOptions(extra_processors=(scripted(spelled),)))
    )
    assert not [i for i in items if type(i) is MarkerText]
    assert result.calls == [] and result.errors == []
    assert result.content == "".join(items)


async def test_batched_a_sampled_marker_token_is_a_marker_and_a_spelled_one_is_text(
    loaded: LoadedModel,
) -> None:
    as_tokens, spelled = scripts(loaded)
    prompt = encode(loaded, "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")
    scheduler = BatchScheduler(loaded)
    streams = [
        scheduler.start(prompt, GenerationOptions(extra_processors=(scripted(script),)))
        for script in (as_tokens, spelled)
    ]
    (_, marked), (items, spelled_result) = [await read(loaded, s) for s in streams]
    assert (marked.content, marked.calls) == ("Sure.\n", [CALL])
    assert spelled_result.calls == [] and spelled_result.content == "".join(items)
