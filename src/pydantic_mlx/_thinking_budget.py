"""`mlx_thinking_budget`: a logits processor that closes the model's reasoning after N tokens.

Once the reasoning block has taken its budget, the next tokens are forced to the family's own
closer (`</think>`, harmony's `<|end|>`, Gemma 4's `<channel|>`, ...), one token at a time; then
the model is free again and writes its answer (or calls) after its reasoning, as it would have.
The processor follows the completion's tokens itself, so it runs the same way in the batched and
one-at-a-time paths and beside a grammar processor (which leaves reasoning unconstrained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mlx.core as mx

from .parsers.formats import get_format, reasoning_enders, reasoning_pairs

__all__ = ["ReasoningMarkers", "ThinkingBudgetProcessor", "reasoning_markers"]

_GENERIC = (("<think>", "</think>"),)
"""The reasoning block of templates whose tool format declares none (`auto`, Llama's, ...)."""


@dataclass(frozen=True)
class ReasoningMarkers:
    """A family's reasoning block: its opener and closer as text and as the token ids the model
    writes, and what else ends the block for the format's parser (as token ids): `ender_ids`, the
    call openers that end any block the model never closed (`parsers.formats.reasoning_enders`);
    `prompt_ender_ids`, those that end a block the prompt opened, and the format's other closers
    (`parsers.formats.reasoning_pairs`), which end it too."""

    opener: str
    closer: str
    opener_ids: tuple[int, ...]
    closer_ids: tuple[int, ...]
    ender_ids: tuple[tuple[int, ...], ...] = field(default=())
    prompt_ender_ids: tuple[tuple[int, ...], ...] = field(default=())


def reasoning_markers(template: str | None, tool_format: str, tokenizer: object) -> ReasoningMarkers | None:
    """The reasoning block of `template`'s family, or `None` when the template shows none.

    The pair is the first of the tool format's reasoning pairs (the parsers' own table) whose
    opener and closer both appear in the template.
    """
    if not template:
        return None
    # `auto` (a template no format was detected from) has no module of its own: the generic pair.
    own = get_format(tool_format).REASONING if tool_format != "auto" else ()
    pairs: Sequence[tuple[str, str]] = (*own, *_GENERIC)
    for opener, closer in pairs:
        if opener.strip() in template and closer in template:
            opener_ids = _encode(tokenizer, opener)
            closer_ids = _encode(tokenizer, closer)
            if opener_ids and closer_ids:
                enders, prompt_enders = reasoning_enders(tool_format)
                closers = {c for _, c in reasoning_pairs(tool_format)} - {closer}
                return ReasoningMarkers(
                    opener,
                    closer,
                    opener_ids,
                    closer_ids,
                    _encode_all(tokenizer, enders),
                    _encode_all(tokenizer, prompt_enders | closers),
                )
    return None


def _encode_all(tokenizer: object, texts: frozenset[str] | set[str]) -> tuple[tuple[int, ...], ...]:
    return tuple(ids for ids in (_encode(tokenizer, text) for text in sorted(texts)) if ids)


def _encode(tokenizer: object, text: str) -> tuple[int, ...]:
    encode = getattr(tokenizer, "encode")  # noqa: B009 - mlx-lm's wrapper or a Hugging Face tokenizer
    return tuple(int(token) for token in encode(text, add_special_tokens=False))


class ThinkingBudgetProcessor:
    """`processor(tokens, logits) -> logits` that spends at most `budget` tokens in reasoning.

    `tokens` is what the model has seen; the first call's tokens are taken as the prompt (the
    batched path shows none of it, the one-at-a-time path its last token). Reasoning counts from
    the prompt's end when the prompt opened the block (`in_reasoning`), else from the opener the
    model writes. Tokens in every reasoning block of the completion count against one budget: a
    block opened after it is spent is closed at once. A call opener that ends the block (for the
    parser) ends it here too: the call is the answer, and is not cut by a forced closer.
    """

    def __init__(self, markers: ReasoningMarkers, budget: int, *, in_reasoning: bool) -> None:
        self._markers = markers
        self._budget = budget
        self._in_reasoning = in_reasoning
        self._recent: list[int] = []
        self._prompt_opened = in_reasoning
        self._keep = max(
            len(ids) for ids in (markers.opener_ids, markers.closer_ids, *markers.prompt_ender_ids)
        )
        self._seen: int | None = None
        self._forcing: int | None = None
        """Index of the closer token to force next, while the closer is being forced."""
        self.spent = 0
        """Reasoning tokens written so far (the closer excepted)."""
        self.closed_by_budget = 0
        """How many times the closer was forced."""

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self._seen is None:
            self._seen = tokens.shape[-1]
        elif tokens.shape[-1] > self._seen:
            # Reading the token waits for the step that sampled it: queue the read, then this
            # step's forward pass (it needs the token as an array, not its value), so the device
            # runs the model meanwhile instead of idling until the read is done.
            fresh = tokens[self._seen :]
            mx.async_eval(fresh)
            mx.async_eval(logits)
            new: list[int] = fresh.tolist()  # type: ignore[assignment]
            self._seen = tokens.shape[-1]
            for token in new:
                self._advance(token)
        if self._forcing is None and self._in_reasoning and self.spent >= self._budget:
            self._forcing = 0
            self.closed_by_budget += 1
        if self._forcing is None:
            return logits
        forced = self._markers.closer_ids[self._forcing]
        only = mx.arange(logits.shape[-1]) == forced
        return mx.where(only, mx.zeros_like(logits), mx.full(logits.shape, -mx.inf, logits.dtype))

    def _advance(self, token: int) -> None:
        if self._forcing is not None:
            self._forcing += 1
            if self._forcing == len(self._markers.closer_ids):
                self._forcing, self._in_reasoning, self._recent = None, False, []
            return
        self._recent = [*self._recent, token][-self._keep :]
        if self._in_reasoning:
            markers = self._markers
            enders = markers.prompt_ender_ids if self._prompt_opened else markers.ender_ids
            ended = next(
                (ids for ids in (markers.closer_ids, *enders) if _ends_with(self._recent, ids)), None
            )
            if ended is not None:
                self._in_reasoning, self._recent = False, []
                # The marker's first tokens were counted as reasoning: take them back.
                self.spent -= len(ended) - 1
            else:
                self.spent += 1
        elif _ends_with(self._recent, self._markers.opener_ids):
            self._in_reasoning, self._prompt_opened, self._recent = True, False, []


def _ends_with(tokens: list[int], suffix: tuple[int, ...]) -> bool:
    return len(tokens) >= len(suffix) and tuple(tokens[-len(suffix) :]) == suffix
