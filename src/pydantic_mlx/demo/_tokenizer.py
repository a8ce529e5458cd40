"""The demo model's tokenizer: a byte-level BPE trained offline, laid out like Qwen2.5's.

It uses Qwen2's pre-tokenizer pipeline (NFC, Qwen2's split regex, byte-level without prefix
space) because transformers 5.x rebuilds any `qwen2` model folder's tokenizer as `Qwen2Tokenizer`
with exactly that pipeline, whatever the folder says; a tokenizer trained any other way would
encode differently once loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from ._template import CHAT_TEMPLATE

# Copied from the definition of Qwen2's tokenizer: it is the format's contract, not an implementation.
QWEN2_SPLIT_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""  # noqa: E501

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Control tokens: never produced from text in message content (see `pydantic_mlx._chat`)."""

TOOL_CALL_TOKENS = ("<tool_call>", "</tool_call>", "<think>", "</think>")
"""Single tokens, but not special ones (as in Qwen2.5 and Qwen3): they decode as text for the parsers."""

EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with Qwen2's pipeline, trained on `corpus`, with the ChatML and tool-call tokens."""
    tokenizer = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in TOOL_CALL_TOKENS])
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, folder: Path) -> None:
    """Write `tokenizer.json` and a Qwen2-style `tokenizer_config.json` carrying the chat template."""
    tokenizer.save(str(folder / "tokenizer.json"))
    added_tokens: dict[str, dict[str, Any]] = {}
    for token in (*SPECIAL_TOKENS, *TOOL_CALL_TOKENS):
        token_id = tokenizer.token_to_id(token)
        added_tokens[str(token_id)] = {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": token in SPECIAL_TOKENS,
        }
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": added_tokens,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": 4096,
        "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    special_map = {"eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
