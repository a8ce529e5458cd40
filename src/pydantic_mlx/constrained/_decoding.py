"""Grammar masks on MLX logits: llguidance matchers driven by an mlx-lm logits processor.

`GrammarLogitsProcessor` watches the tokens as they are sampled. While the output is free it
only looks at their bytes for a trigger (and for the format's reasoning block, inside which
nothing triggers; a trigger for the answer's start counts only there); once a trigger fires it
starts that region's llguidance matcher on the triggering text and masks every token until the
region is complete, then the output is free again. A whole-answer grammar
(`tool_choice="required"`, native output) masks from the first token after any reasoning block up
to the end-of-sequence token; inside that reasoning block only the end-of-sequence token is
masked (the block must close, and the answer follow). The block ends where the parser ends it:
at its closer, or at a call opener that ends it (`ReasoningBlock.enders`), which then starts the
call's region (or the forced answer); one that cannot start the forced answer (a call opener
before native output) is masked there when it is one token.

Where the decoder tells the processor each token it samples (`sampled`, as `with_sampled_hooks`
in `_generation` does), reading that token, following it and computing the next mask run on a
worker thread while the host prepares and launches the next forward pass: where tokens are fast
the host, not the device, sets the pace, so the grammar's work is off its path. Without the hook
the processor reads the tokens it is shown and does that work itself.

The mask is llguidance's bitmask turned into additive biases with plain `mx` ops (a lookup per
mask byte), so it runs on every MLX backend (llguidance's own `llguidance.mlx` helper is a Metal
kernel and fails on Linux). The biases of the last few distinct masks stay on the device, keyed by
the mask's bytes: inside a JSON string or free text the mask repeats token after token, so most
masked steps are one add, with no copy from the host.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import llguidance
import mlx.core as mx
import numpy as np

from ._grammars import GrammarSet, Trigger
from ._token_table import llg_tokenizer

__all__ = ["GrammarLogitsProcessor", "GrammarTokenizer", "grammar_tokenizer"]

_COMPILED_GRAMMARS = 64
"""Compiled grammars kept per tokenizer (one per distinct set of tools or output schema)."""

_PROBLEM_CHARS = 300
"""Characters of an llguidance error kept: its message, not the parser state and grammar it
appends (tens of kB for a few dozen tools, carried in every response's `provider_details`)."""

_DEVICE_MASKS = 16
"""Distinct masks whose biases a processor keeps on the device (least recently used dropped): one
per kind of position a call's grammar has (inside a string, after a key, ...), a few hundred kB
each for a 150k vocabulary."""

_WORKERS = 4
"""Threads that follow sampled tokens and compute masks (one job per generation at a time)."""

_WINDOW = 512
"""Bytes of free text kept for trigger matching (longer than any trigger can match: the longest,
a fence and `{"name": "<tool>"`, is under 150 bytes plus the tool name)."""


class GrammarTokenizer:
    """llguidance's view of one model's tokenizer, with the grammars compiled for it.

    Building it walks the whole vocabulary (about 3 s per 100k tokens; under 1 s for 150k once its
    token table is on disk, see `_token_table`), so there is one per loaded tokenizer
    (`grammar_tokenizer`); compiled grammars are kept in a small LRU.
    """

    def __init__(self, tokenizer: Any) -> None:
        hf = getattr(tokenizer, "_tokenizer", tokenizer)
        eos = getattr(tokenizer, "eos_token_ids", None) or [hf.eos_token_id]
        self.llg: llguidance.LLTokenizer = llg_tokenizer(hf, sorted(eos))
        self._compiled: OrderedDict[str, llguidance.LLMatcher] = OrderedDict()
        self._lock = threading.Lock()
        self.grammar_sets: dict[Any, GrammarSet | None] = {}
        """Grammar sets built for this tokenizer, by (format, tools, mode) key."""

    def is_special(self, text: str) -> bool:
        """Whether `text` is one special token here (grammars must then name it, not spell it)."""
        return self.special_token(text) is not None

    def special_token(self, text: str) -> int | None:
        """The id of the special token spelled `text`, if the tokenizer has one."""
        ids = self.llg.tokenize_str(text, parse_special=True)
        return ids[0] if len(ids) == 1 and self.llg.is_special_token(ids[0]) else None

    def matcher(self, grammar: str) -> llguidance.LLMatcher:
        """A fresh matcher for `grammar` (compiled once, then copied). Raises `ValueError` for a
        grammar llguidance rejects."""
        with self._lock:
            compiled = self._compiled.get(grammar)
            if compiled is None:
                compiled = llguidance.LLMatcher(
                    self.llg, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0
                )
                if compiled.is_error():
                    raise ValueError(f"invalid grammar: {_summary(compiled.get_error())}")
                self._compiled[grammar] = compiled
                while len(self._compiled) > _COMPILED_GRAMMARS:
                    self._compiled.popitem(last=False)
            else:
                self._compiled.move_to_end(grammar)
            return compiled.deep_copy()


_tokenizers: weakref.WeakKeyDictionary[Any, GrammarTokenizer] = weakref.WeakKeyDictionary()
_tokenizers_lock = threading.Lock()


def grammar_tokenizer(tokenizer: Any) -> GrammarTokenizer:
    """The `GrammarTokenizer` of an mlx-lm (or Hugging Face) tokenizer, built on first use."""
    with _tokenizers_lock:
        found = _tokenizers.get(tokenizer)
        if found is None:
            found = _tokenizers[tokenizer] = GrammarTokenizer(tokenizer)
        return found


class GrammarLogitsProcessor:
    """An mlx-lm logits processor (`processor(tokens, logits) -> logits`) for one generation.

    `tokens` is everything the model has seen; the first call's length is taken as the prompt.
    After generation, `regions` counts the constrained regions and `problems` says why a
    trigger could not be constrained (the text it opened stayed free).
    """

    device_masks: int = _DEVICE_MASKS
    """How many distinct masks' biases stay on the device (0: every step's is built from the host's
    bitmask, as in the release before; `benchmarks/constrained.py` compares the two)."""

    def __init__(
        self,
        tokenizer: Any,
        grammars: Callable[[GrammarTokenizer], GrammarSet | None],
        *,
        in_reasoning: bool = False,
    ) -> None:
        # Built on the first call, on the generation thread: the first use of a tokenizer walks
        # its vocabulary, and a new grammar is compiled, neither of which belongs on an event loop.
        self._source = tokenizer
        self._build = grammars
        self._tokenizer: GrammarTokenizer | None = None
        self._grammars = GrammarSet()
        self._in_reasoning = in_reasoning
        self._opened_by: str | None = None  # the block's opener (None: the prompt opened it)
        self._matcher: llguidance.LLMatcher | None = None
        self._answer_started = False
        self._window = b""
        # Whether `_window` holds the answer from its start (the output's, or the end of the
        # reasoning block): only then can an `at_start` trigger match.
        self._at_answer_start = not in_reasoning
        self._seen: int | None = None
        self._words = np.zeros(0, dtype=np.int32)
        self._tables: dict[mx.Dtype, mx.array] = {}
        self._no_end: dict[tuple[mx.Dtype, int, str | None], mx.array] = {}
        self._may_open_reasoning: int | None = None
        self._biases: OrderedDict[tuple[mx.Dtype, int, bytes], mx.array] = OrderedDict()
        self._mask_key: bytes | None = None  # the bytes of the mask in `_words`, if one is ready
        # The worker's job following the last sampled token (`sampled`), joined by the next call.
        self._pending: Future[None] | None = None
        self._regions = 0
        self._problems: list[str] = []

    @property
    def regions(self) -> int:
        """Constrained regions started so far."""
        self._settle()
        return self._regions

    @property
    def problems(self) -> list[str]:
        """Why a trigger could not be constrained, or a region was given up, in order."""
        self._settle()
        return self._problems

    def _setup(self) -> None:
        tokenizer = self._tokenizer = grammar_tokenizer(self._source)
        self._grammars = self._build(tokenizer) or GrammarSet()
        self._in_reasoning = self._in_reasoning and self._grammars.reasoning is not None
        self._at_answer_start = not self._in_reasoning
        self._words = np.zeros((tokenizer.llg.vocab_size + 31) // 32, dtype=np.int32)
        reasoning = self._grammars.reasoning
        if self._grammars.answer is not None and not self._in_reasoning:
            self._start(self._grammars.answer, b"", answer=True)
            # A thinking model whose prompt did not open its reasoning block may open it itself
            # with its first token (Qwen3 does, by default): that one token is allowed too.
            if reasoning is not None:
                self._may_open_reasoning = tokenizer.special_token(reasoning.opener)

    def check(self) -> None:
        """Build and compile every grammar of this processor now (call it on the thread that will
        generate: it may walk the vocabulary). Raises `ValueError` for a grammar llguidance
        rejects (a schema it cannot follow), where generating would leave that region free and
        only record the problem in `problems`."""
        tokenizer = grammar_tokenizer(self._source)
        grammars = self._build(tokenizer) or GrammarSet()
        for grammar in (grammars.answer, *(trigger.grammar for trigger in grammars.triggers)):
            if grammar is not None:
                tokenizer.matcher(grammar)

    @property
    def constraining(self) -> bool:
        """Whether the next token is masked."""
        self._settle()
        return self._matcher is not None

    worker: bool | None = None
    """Whether told tokens (`sampled`) are followed on a worker thread; None: where the model runs
    on a GPU. On the CPU backend the forward pass already runs on MLX's own thread while this one
    computes the mask, and the cores are the model's: a worker would only compete for them."""

    def sampled(self, token: mx.array) -> None:
        """Told by the decoder the token it has just sampled (lazy, shape `(1,)`), before the next
        call: a worker thread waits for it, follows it and computes the next mask while this thread
        goes on to prepare and launch the next forward pass. The decoder must show the token in the
        `tokens` of that call (every sampled token, in order, as mlx-lm's decoders do)."""
        if self._seen is None:
            return  # not set up yet: the next call reads the token itself
        worker = self.worker
        if not (worker if worker is not None else mx.default_device() == mx.gpu):
            return  # the next call reads the token itself
        self._settle()
        # The worker waits on its own node, never on `token`: this thread goes on using `token`
        # (the next forward pass reads it), and MLX arrays are not safe to wait on from two threads.
        probe = token + 0
        mx.async_eval(token, probe)
        self._pending = _workers().submit(self._follow_sampled, probe)

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        # Reading the tokens just sampled waits for the step that sampled them, so this step's
        # forward pass, which needs those tokens as arrays, not their values, is queued first: the
        # device goes on from one step to the next while the token is read, scanned and the mask
        # computed (as vLLM and SGLang overlap them), on the worker (`sampled`) or on this thread.
        fresh: mx.array | None = None
        if self._seen is not None and self._pending is None and tokens.shape[-1] > self._seen:
            fresh = tokens[self._seen :]
            mx.async_eval(fresh)  # queued before the forward pass, so its read does not wait for it
        mx.async_eval(logits)
        if self._seen is None:
            self._setup()
            self._seen = tokens.shape[-1]
            self._compute_mask()
        elif self._pending is not None:
            self._settle()
            if tokens.shape[-1] != self._seen:
                raise RuntimeError(
                    f"the decoder showed {tokens.shape[-1]} tokens, but sampled {self._seen}: "
                    "every sampled token must be shown to the next call"
                )
        elif fresh is not None:
            self._seen = tokens.shape[-1]
            self._follow(fresh.tolist())  # type: ignore[arg-type]
        if self._matcher is None:
            if self._in_reasoning and self._grammars.answer is not None:
                # The answer is forced and has not begun: the reasoning must close first, so the
                # end of the sequence may not come inside it (the output would hold no answer).
                return logits + self._no_end_bias(logits)
            return logits
        return logits + self._mask_bias(logits)

    def _settle(self) -> None:
        """Wait for the worker's job, if one is running (it raises what the job raised)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _follow_sampled(self, probe: mx.array) -> None:
        """The worker's job: wait for the sampled token, follow it and compute the next mask."""
        mx.eval(probe)  # lets go of the GIL while it waits
        new: list[int] = probe.tolist()  # type: ignore[assignment]
        assert self._seen is not None
        self._seen += len(new)
        self._follow(new)

    def _follow(self, tokens: list[int]) -> None:
        """Follow `tokens`, then compute the mask of the next token if it is masked."""
        for token in tokens:
            self._advance(token)
        self._compute_mask()

    def _advance(self, token: int) -> None:
        opener, self._may_open_reasoning = self._may_open_reasoning, None
        if token == opener:
            self._matcher, self._answer_started, self._in_reasoning = None, False, True
            assert self._grammars.reasoning is not None
            self._opened_by = self._grammars.reasoning.opener
            self._regions -= 1  # the answer starts after the reasoning block instead
            return
        matcher = self._matcher
        if matcher is not None:
            if not matcher.consume_token(token):
                self._give_up(matcher)
            elif self._grammars.answer is None and matcher.is_stopped():
                self._matcher = None  # the region is complete: free text again
            return
        assert self._tokenizer is not None
        window = self._window + self._tokenizer.llg.decode_bytes([token])
        if len(window) > _WINDOW:
            window, self._at_answer_start = window[-_WINDOW:], False
        self._window = window
        self._scan()

    def _scan(self) -> None:
        """Act on the reasoning markers and triggers in the free text just extended."""
        reasoning = self._grammars.reasoning
        while True:
            if self._in_reasoning:
                assert reasoning is not None
                end = self._reasoning_end()
                if end is None:
                    return
                self._in_reasoning = False
                self._window = self._window[end:]
                self._at_answer_start = True
                if self._grammars.answer is not None and not self._answer_started:
                    self._start(self._grammars.answer, self._window, answer=True)
                    return
                continue
            if self._grammars.answer is not None:
                return
            opened = self._reasoning_opened()
            hit = _first_match(self._grammars.triggers, self._window, at_answer_start=self._at_answer_start)
            if opened is not None and (hit is None or opened[0] < hit[0]):
                at, self._opened_by = opened
                self._in_reasoning = True
                self._window = self._window[at + len(self._opened_by.encode()) :]
                continue
            if hit is None:
                return
            start, trigger = hit
            self._at_answer_start = False
            if self._start(trigger.grammar, self._window[start:]):
                self._window = b""
                return
            self._window = self._window[start + 1 :]  # not a region after all: look further on

    def _reasoning_opened(self) -> tuple[int, str] | None:
        """Where a reasoning block opens in `_window` (the earliest opener), and its opener."""
        reasoning = self._grammars.reasoning
        if reasoning is None:
            return None
        found = [(at, o) for o, _ in reasoning.pairs if (at := self._window.find(o.encode())) >= 0]
        return min(found, key=lambda f: (f[0], -len(f[1]))) if found else None

    def _reasoning_end(self) -> int | None:
        """Where the answer starts in `_window` if the reasoning block ended in it: after its
        closer, or at a call opener that ends it (the opener belongs to the answer); the earliest."""
        reasoning = self._grammars.reasoning
        assert reasoning is not None
        closers, enders = reasoning.ends(self._opened_by)
        # (marker, whether it is the block's: a closer is, a call opener starts the answer)
        markers = [(c.encode(), True) for c in closers] + [(e.encode(), False) for e in enders]
        found = [
            (at, at + len(marker) if own else at)
            for marker, own in markers
            if (at := self._window.find(marker)) >= 0
        ]
        return min(found)[1] if found else None

    def _start(self, grammar: str, opening: bytes, *, answer: bool = False) -> bool:
        """Constrain from here with `grammar`, which must accept `opening` (text already written)."""
        assert self._tokenizer is not None
        self._answer_started = self._answer_started or answer
        try:
            matcher = self._tokenizer.matcher(grammar)
        except ValueError as error:
            self._problems.append(str(error))
            return False
        if opening and not matcher.consume_tokens(
            self._tokenizer.llg.tokenize_bytes(opening, parse_special=True)
        ):
            self._problems.append(f"the grammar does not accept the opening {opening[:80]!r}")
            return False
        self._regions += 1
        # One token may open a region and end it (`()]` after `[ping`): then the text is free again.
        self._matcher = None if matcher.is_stopped() and not answer else matcher
        return True

    def _give_up(self, matcher: llguidance.LLMatcher) -> None:
        # Only a token outside the mask gets here (another processor or sampler overrode it).
        self._problems.append(_summary(matcher.get_error()) or "a token outside the grammar was sampled")
        self._matcher = None
        self._window = b""

    def _compute_mask(self) -> None:
        """Compute the next token's mask into `_words` (and its bytes, `_mask_key`), if one is
        masked; a matcher in error is given up (the text is free again)."""
        self._mask_key = None
        matcher = self._matcher
        if matcher is None:
            return
        words = self._words
        matcher.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
        if matcher.is_error():
            self._give_up(matcher)
            return
        token = self._may_open_reasoning
        if token is not None and token < 32 * words.size:  # allowed too: set its bit
            words.view(np.uint32)[token // 32] |= np.uint32(1 << (token % 32))
        key = words.tobytes()
        hash(key)  # bytes keep their hash: the lookup on the next call does not compute it
        self._mask_key = key

    def _mask_bias(self, logits: mx.array) -> mx.array:
        """The biases of the mask computed for this step, kept on the device if seen lately."""
        assert self._mask_key is not None
        key = (logits.dtype, logits.shape[-1], self._mask_key)
        bias = self._biases.get(key)
        if bias is None:
            bias = self._biases[key] = self._bias(self._words, logits.dtype, logits.shape[-1])
            while len(self._biases) > self.device_masks:
                self._biases.popitem(last=False)
        else:
            self._biases.move_to_end(key)
        return bias

    def _bias(self, words: np.ndarray[Any, np.dtype[np.int32]], dtype: mx.Dtype, width: int) -> mx.array:
        """The additive biases of bitmask `words` for `width` logits: 0 where a token is allowed,
        -inf elsewhere, and past the tokenizer's vocabulary (padding rows of the embedding)."""
        # Each mask byte looks up its 8 biases: one gather, measured ~3x cheaper on the CPU backend
        # than `mx.where` on a bool mask. Lazy: it is computed with the step that first uses it.
        bias = mx.take(self._bias_table(dtype), mx.array(words.view(np.uint8)), axis=0).reshape(-1)
        if bias.shape[0] >= width:
            return bias[:width]
        return mx.concatenate([bias, mx.full((width - bias.shape[0],), -mx.inf, dtype=bias.dtype)])

    def _no_end_bias(self, logits: mx.array) -> mx.array:
        """0 for every token but the end-of-sequence ones, which get -inf (unless one of them is
        the reasoning block's closer), and the one-token call openers that would end the block
        (`_scan`) but cannot start the forced answer (a call before native output)."""
        key = (logits.dtype, logits.shape[-1], self._opened_by)
        bias = self._no_end.get(key)
        if bias is None:
            tokenizer, reasoning, answer = self._tokenizer, self._grammars.reasoning, self._grammars.answer
            assert tokenizer is not None and reasoning is not None and answer is not None
            closers, enders = reasoning.ends(self._opened_by)
            closing = {tokenizer.special_token(closer) for closer in closers}
            width = logits.shape[-1]
            banned = [t for t in tokenizer.llg.eos_tokens if t not in closing]
            for ender in enders:
                ids = tokenizer.llg.tokenize_str(ender, parse_special=True)
                if len(ids) == 1 and tokenizer.matcher(answer).validate_tokens(ids) == 0:
                    banned.append(ids[0])
            values = np.zeros(width, dtype=np.float32)
            values[[t for t in banned if t < width]] = -np.inf
            bias = self._no_end[key] = mx.array(values).astype(logits.dtype)
        return bias

    def _bias_table(self, dtype: mx.Dtype) -> mx.array:
        table = self._tables.get(dtype)
        if table is None:
            bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
            table = mx.array(np.where(bits == 1, 0.0, -np.inf).astype(np.float32)).astype(dtype)
            self._tables[dtype] = table
        return table


_workers_pool: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """The threads that follow sampled tokens and compute masks while forward passes launch."""
    global _workers_pool
    with _workers_lock:
        if _workers_pool is None:
            _workers_pool = ThreadPoolExecutor(
                max_workers=_WORKERS, thread_name_prefix="pydantic-mlx-grammar"
            )
        return _workers_pool


def _first_match(
    triggers: tuple[Trigger, ...], text: bytes, *, at_answer_start: bool = False
) -> tuple[int, Trigger] | None:
    """The trigger matching earliest in `text` (the first declared one on a tie); `at_start`
    triggers only when `text` is the answer from its start (`at_answer_start`), and only there."""
    best: tuple[int, Trigger] | None = None
    for trigger in triggers:
        if trigger.at_start and not at_answer_start:
            continue
        found: re.Match[bytes] | None = (
            trigger.pattern.match(text) if trigger.at_start else trigger.pattern.search(text)
        )
        if found is None:
            continue
        start = found.start("region") if "region" in trigger.pattern.groupindex else found.start()
        if best is None or start < best[0]:
            best = (start, trigger)
    return best


def _summary(error: str) -> str:
    """llguidance's error message without the parser state and grammar dump that follow it."""
    message = error.split("\n<state>", 1)[0].strip()
    return message if len(message) <= _PROBLEM_CHARS else message[: _PROBLEM_CHARS - 1] + "…"
