"""Request settings checked before any work: a bad value is a `UserError`, never a crash mid-batch
(an error inside a batched step fails every request in the batch) or a NaN in float32 logits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

from pydantic_ai.exceptions import UserError
from pydantic_ai.settings import ModelSettings, ToolOrOutput

from ._generation import GenerationOptions
from ._loading import LoadedModel

DEFAULT_MAX_TOKENS = 2048
"""Completion length limit when `max_tokens` is not set."""


def generation_options(settings: ModelSettings, vocabulary: int | None) -> GenerationOptions:
    """The sampling settings, checked: a bad value is a `UserError` here, not a crash mid-batch.

    With `vocabulary=None` (the model not loaded yet) everything but the token ids is checked:
    `prepare_request` does so before any work.

    A token id outside the vocabulary would index past the logits (MLX does not check bounds:
    the process segfaults), and an error inside a batched step fails every request in the batch.
    """
    max_tokens = integer_setting(settings, "max_tokens", DEFAULT_MAX_TOKENS)
    if not 1 <= max_tokens <= _INT32_MAX:
        raise UserError(f"max_tokens must be at least 1 and at most {_INT32_MAX}, not {max_tokens}")
    temperature = _number(settings, "temperature", 0.0)
    if temperature < 0:
        raise UserError(f"temperature must not be negative, not {temperature}")
    if 0 < temperature < 1 / _FLOAT32_MAX:
        # Sampling divides by it in float32: infinity, then NaN logits.
        raise UserError(f"temperature {temperature} is too small to sample with; 0 is greedy decoding")
    _check_choices(settings)
    top_p = _number(settings, "top_p", None)
    if top_p is not None and not 0 <= top_p <= 1:
        raise UserError(f"top_p must be between 0 and 1, not {top_p}")
    if top_p == 0:
        temperature = 0.0  # the nucleus shrinks to the most likely token: greedy decoding
    top_k = integer_setting(settings, "top_k", None)
    if top_k is not None and not 0 < top_k < (vocabulary or _INT32_MAX):
        top_k = None  # 0 (or less) means no filter, as does keeping the whole vocabulary
    seed = integer_setting(settings, "seed", None)
    return GenerationOptions(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=None if seed is None else seed % 2**64,  # MLX keys are unsigned 64-bit
        presence_penalty=_number(settings, "presence_penalty", None),
        frequency_penalty=_number(settings, "frequency_penalty", None),
        logit_bias=_logit_bias(settings.get("logit_bias"), vocabulary),
        stop_sequences=_stop_sequences(settings.get("stop_sequences")),
    )


def integer_setting(settings: ModelSettings, name: str, default: int | None) -> Any:
    value: Any = settings.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{name} must be an integer, not {value!r}")
    return value


def _number(settings: ModelSettings, name: str, default: float | None) -> Any:
    value: Any = settings.get(name, default)
    if value is not None and not _is_finite_number(value):
        raise UserError(f"{name} must be a finite number, not {value!r}")
    return value


def _is_finite_number(value: Any) -> bool:
    # NaN passes every range check, and an infinite bias turns into NaN once normalised. Logits
    # are float32: a value finite in float64 only (1e39) is infinite there.
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and abs(value) <= _FLOAT32_MAX
    )


_FLOAT32_MAX = 3.4028234663852886e38
_INT32_MAX = 2**31 - 1
_TOOL_CHOICES = ("auto", "none", "required")


def _check_choices(settings: ModelSettings) -> None:
    """`tool_choice` and `parallel_tool_calls` are of a type pydantic-ai defines (it asserts otherwise)."""
    choice: Any = settings.get("tool_choice")
    valid = (
        choice is None
        or choice in _TOOL_CHOICES
        or isinstance(choice, ToolOrOutput)
        or (isinstance(choice, list | tuple) and all(isinstance(name, str) for name in choice))  # pyright: ignore[reportUnknownVariableType]
    )
    if not valid:
        raise UserError(
            "tool_choice must be 'auto', 'none', 'required', a list of tool names or ToolOrOutput, "
            f"not {choice!r}"
        )
    parallel: Any = settings.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise UserError(f"parallel_tool_calls must be True or False, not {parallel!r}")


def _logit_bias(bias: Any, vocabulary: int | None) -> dict[int, float] | None:
    if bias is None:
        return None
    if not isinstance(bias, Mapping):
        raise UserError(f"logit_bias must be a mapping of token ids to biases, not {bias!r}")
    if not bias:
        return None
    checked: dict[int, float] = {}
    for key, value in dict(cast(Mapping[Any, Any], bias)).items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise UserError(f"logit_bias keys must be token ids, not {key!r}") from None
        if token < 0 or (vocabulary is not None and token >= vocabulary):
            bounds = f" (0 to {vocabulary - 1})" if vocabulary is not None else ""
            raise UserError(f"logit_bias token id {token} is outside the vocabulary{bounds}")
        if not _is_finite_number(value):
            raise UserError(f"logit_bias values must be finite numbers, not {value!r}")
        checked[token] = float(value)
    return checked


def _stop_sequences(stops: Any) -> tuple[str, ...]:
    if stops is None:
        return ()
    if isinstance(stops, str) or not all(isinstance(stop, str) and stop for stop in stops):
        raise UserError(f"stop_sequences must be a list of strings, none of them empty, not {stops!r}")
    return tuple(stops)


def fitted_to_context(
    options: GenerationOptions, prompt_tokens: int, context: int | None, *, max_tokens_set: bool
) -> GenerationOptions:
    """`options` for a prompt of `prompt_tokens` on a model with a `context`-token window.

    What cannot fit is refused before prefill (a prompt past the window is computed for minutes,
    then the model writes garbage); the default `max_tokens` shrinks to the room left, as servers do.
    """
    if context is None:
        return options
    room = context - prompt_tokens
    if room < 1:
        raise UserError(
            f"The prompt is {prompt_tokens} tokens, and the model's context is {context} tokens: "
            "shorten the conversation (pydantic-ai's history processors can drop old messages)."
        )
    if options.max_tokens <= room:
        return options
    if max_tokens_set:
        raise UserError(
            f"The prompt ({prompt_tokens} tokens) plus max_tokens ({options.max_tokens}) is "
            f"{prompt_tokens + options.max_tokens} tokens, more than the model's context of {context} "
            f"tokens: set max_tokens to at most {room}, or shorten the conversation."
        )
    return replace(options, max_tokens=room)


_CONTEXT_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(loaded: LoadedModel) -> int | None:
    """The model's context window in tokens, from its config (None when it does not say)."""
    args = getattr(loaded.model, "args", None)
    for key in _CONTEXT_LENGTH_KEYS:
        value = getattr(args, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def vocabulary_size(loaded: LoadedModel) -> int:
    """The number of logits the model computes per token (the model's vocabulary, with padding)."""
    size = getattr(getattr(loaded.model, "args", None), "vocab_size", None)
    if isinstance(size, int) and size > 0:
        return size
    return len(loaded.tokenizer._tokenizer)  # pyright: ignore[reportPrivateUsage]
