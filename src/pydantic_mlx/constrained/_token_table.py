"""llguidance's tokenizer for a Hugging Face tokenizer, built from a token table kept on disk.

llguidance builds its `LLTokenizer` from the tokenizer's JSON: serialising the Hugging Face
tokenizer, parsing it back in Rust and working out every token's bytes, then its mask "slices"
(5 s for Qwen2.5's 152k tokens on a 2-core CPU, of which 4 s before the slices). llguidance (1.9)
offers no way to save what it built, but it builds the same tokenizer in under a second from what
that first part works out — each token's bytes, which tokens are special — with a function that
tokenizes text (`llguidance.TokenizerWrapper`). That table is what is kept here, one file per
tokenizer:

- `$PYDANTIC_MLX_CACHE/llguidance-tokenizers/` (else `~/.cache/pydantic-mlx/...`), about 1.5 MB
  for a 152k vocabulary;
- named by a digest of everything the table depends on: the tokenizer's model (vocabulary and
  merges), its normalizer, pre-tokenizer, post-processor and decoder, its added tokens, the
  end-of-sequence ids, the llguidance version, and this file format's version;
- written to a temporary name and renamed, so no reader sees half a file;
- a file that is damaged, truncated or not what its name says is ignored with a
  `DiskCacheWarning`, deleted, and written again; an unwritable folder is warned about and
  the tokenizer is built as usual.

Every process, the first included, builds the tokenizer from the table, so all of them tokenize
alike. Text is tokenized with the Hugging Face tokenizer when that gives back exactly the bytes
asked for (a tokenizer that prepends a space, say, does not), else greedily by llguidance:
matchers only ever need the bytes right.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

import llguidance
import llguidance.hf
import numpy as np

from .._cache_dir import DiskCacheWarning, cache_root, discard_unusable, remove_stale_temps, write_cache_file

__all__ = ["FOLDER_NAME", "TokenTable", "default_folder", "from_table", "llg_tokenizer", "table_key"]

FOLDER_NAME = "llguidance-tokenizers"
FORMAT = 1
"""Version of the files written here; files of another version are not read."""
MAGIC = b"PMLX-LLG-TOKENS\n"
SUFFIX = ".tokens"
_DIGEST_BYTES = 32


class TokenTable:
    """Each token's bytes (special tokens by name, without llguidance's marker byte) and which
    tokens are special: what llguidance needs, beside a tokenize function, to build a tokenizer."""

    def __init__(self, tokens: list[bytes], special: list[int]) -> None:
        self.tokens = tokens
        self.special = special

    @classmethod
    def of(cls, llg: llguidance.LLTokenizer) -> TokenTable:
        """The table of a tokenizer llguidance built."""
        count = llg.vocab_size
        return cls(
            [llg.decode_bytes([i]) for i in range(count)],
            [i for i in range(count) if llg.is_special_token(i)],
        )

    def to_bytes(self, key: str, eos: Sequence[int]) -> bytes:
        header = json.dumps(
            {
                "format": FORMAT,
                "key": key,
                "llguidance": _llguidance_version(),
                "vocab_size": len(self.tokens),
                "special": self.special,
                "eos": list(eos),
            }
        ).encode()
        lengths = np.array([len(t) for t in self.tokens], dtype="<u4").tobytes()
        body = len(header).to_bytes(4, "little") + header + lengths + b"".join(self.tokens)
        return MAGIC + body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> TokenTable:
        """The table in `data`, which must be a whole, intact file for `key`. Raises `ValueError`
        saying what is wrong otherwise."""
        if not data.startswith(MAGIC):
            raise ValueError("not a token table")
        if len(data) < len(MAGIC) + 4 + _DIGEST_BYTES:
            raise ValueError("truncated")
        body, digest = data[len(MAGIC) : -_DIGEST_BYTES], data[-_DIGEST_BYTES:]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError("truncated or corrupt (checksum mismatch)")
        size = int.from_bytes(body[:4], "little")
        header = json.loads(body[4 : 4 + size])
        if header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}, not {FORMAT!r}")
        if header.get("key") != key:
            raise ValueError("written for another tokenizer")
        count = int(header["vocab_size"])
        start = 4 + size + 4 * count
        lengths = np.frombuffer(body[4 + size : start], dtype="<u4")
        ends = (start + np.cumsum(lengths, dtype=np.int64)).tolist()
        if len(lengths) != count or (ends[-1] if ends else start) != len(body):
            raise ValueError("its token lengths do not match its size")
        starts = [start, *ends[:-1]]
        special = [int(i) for i in header["special"]]
        if any(not 0 <= i < count for i in special):
            raise ValueError("a special token id out of range")
        return cls([body[a:b] for a, b in zip(starts, ends, strict=True)], special)


class _HfTokenize:
    """Tokenizes text for llguidance with the Hugging Face tokenizer; where that does not give back
    exactly the text's bytes, splits the text at added tokens (as the Hugging Face tokenizer does)
    and tokenizes the rest greedily with llguidance."""

    def __init__(self, backend: Any, table: TokenTable, eos: int) -> None:
        self._backend = backend
        self._bytes = table.tokens
        self._added: re.Pattern[bytes] | None = None
        self.llg: llguidance.LLTokenizer | None = None
        # What llguidance.TokenizerWrapper reads.
        self.eos_token_id = eos
        self.bos_token_id = None
        self.tokens = table.tokens
        self.special_token_ids = table.special

    def __call__(self, text: str | bytes) -> list[int]:
        wanted = text if isinstance(text, bytes) else text.encode()
        ids: list[int] = self._backend.encode(wanted.decode(), add_special_tokens=False).ids
        # Added tokens come back as themselves (their table bytes are their text), as llguidance's
        # own build tokenizes them.
        if all(i < len(self._bytes) for i in ids) and b"".join(self._bytes[i] for i in ids) == wanted:
            return ids
        return self._split_at_added_tokens(wanted)

    def _split_at_added_tokens(self, wanted: bytes) -> list[int]:
        assert self.llg is not None
        by_text = {self._bytes[i]: i for i in self.special_token_ids if self._bytes[i]}
        if self._added is None:
            longest_first = sorted(by_text, key=len, reverse=True)
            self._added = re.compile(b"|".join(map(re.escape, longest_first)) if by_text else b"(?!)")
        ids: list[int] = []
        done = 0
        for found in self._added.finditer(wanted):
            ids += self.llg.greedy_tokenize(wanted[done : found.start()].decode())
            ids.append(by_text[found.group()])
            done = found.end()
        return ids + self.llg.greedy_tokenize(wanted[done:].decode())


def table_key(hf_tokenizer: Any, eos: Sequence[int]) -> str | None:
    """A digest of everything the token table of `hf_tokenizer` depends on; None for a tokenizer
    that is not a Hugging Face fast tokenizer (nothing is cached for it)."""
    try:
        backend = hf_tokenizer.backend_tokenizer
        digest = hashlib.sha256(f"{FORMAT}|llguidance {_llguidance_version()}|eos {list(eos)}|".encode())
        digest.update(backend.model.__getstate__())
        for part in (backend.normalizer, backend.pre_tokenizer, backend.post_processor, backend.decoder):
            digest.update(b"|" + (part.__getstate__() if part is not None else b"null"))
        added = sorted(backend.get_added_tokens_decoder().items())
        digest.update(
            repr(
                [(i, t.content, t.special, t.single_word, t.lstrip, t.rstrip, t.normalized) for i, t in added]
            ).encode()
        )
    except Exception:  # another kind of tokenizer, or a tokenizers version without these
        return None
    return digest.hexdigest()[:40]


def default_folder() -> Path:
    """`$PYDANTIC_MLX_CACHE/llguidance-tokenizers`, else under `~/.cache/pydantic-mlx`."""
    return cache_root() / FOLDER_NAME


def llg_tokenizer(
    hf_tokenizer: Any, eos: Sequence[int], *, folder: Path | None = None
) -> llguidance.LLTokenizer:
    """llguidance's tokenizer for the Hugging Face tokenizer `hf_tokenizer` with end-of-sequence
    ids `eos`, from the token table in `folder` (default: `default_folder()`), which is written
    first when it is not there. A tokenizer nothing can be cached for is built directly."""
    key = table_key(hf_tokenizer, eos)
    if key is None:
        return llguidance.hf.from_tokenizer(hf_tokenizer, eos_token=list(eos))
    path = (folder if folder is not None else default_folder()) / f"{key}{SUFFIX}"
    table = _read(path, key)
    if table is None:
        # The expensive part of llguidance's own build, without its slices (they are built below).
        table = TokenTable.of(llguidance.hf.from_tokenizer(hf_tokenizer, eos_token=list(eos), slices=[]))
        data = table.to_bytes(key, eos)
        if write_cache_file(path, lambda temp: temp.write_bytes(data), what="the token table", stacklevel=2):
            remove_stale_temps(path.parent)
    return from_table(hf_tokenizer.backend_tokenizer, table, eos)


def from_table(backend: Any, table: TokenTable, eos: Sequence[int]) -> llguidance.LLTokenizer:
    """llguidance's tokenizer from `table`, tokenizing text with the `tokenizers.Tokenizer`
    `backend` (where it gives back the text's bytes exactly)."""
    tokenize = _HfTokenize(backend, table, eos[0])
    built = llguidance.LLTokenizer(llguidance.TokenizerWrapper(tokenize), eos_token=list(eos))
    tokenize.llg = built
    return built


def _read(path: Path, key: str) -> TokenTable | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # not written yet (or no folder: warned at the write)
        return None
    except OSError as error:
        warnings.warn(f"cannot read the token table {path}: {error}", DiskCacheWarning, stacklevel=3)
        return None
    try:
        return TokenTable.from_bytes(data, key)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        discard_unusable(path, error, what="the token table", stacklevel=3)
        return None


def _llguidance_version() -> str:
    try:
        return distributions.version("llguidance")
    except distributions.PackageNotFoundError:
        return "?"
