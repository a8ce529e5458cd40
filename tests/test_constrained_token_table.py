"""llguidance's tokenizer from the token table kept on disk: a second process does not build it
again, it behaves as llguidance's own build, and a damaged, foreign or unwritable file never
breaks constrained decoding (it is warned about and written again)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llguidance")

import llguidance
import llguidance.hf
from mlx_lm.tokenizer_utils import load as load_tokenizer
from tokenizers import AddedToken

from pydantic_mlx import DiskCacheWarning
from pydantic_mlx._cache_dir import STALE_TEMP_SECONDS, TEMP_MARK
from pydantic_mlx.constrained import _token_table
from pydantic_mlx.constrained._token_table import SUFFIX, TokenTable, from_table, llg_tokenizer, table_key

SAMPLES = [
    "hello world",
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    "<|im_start|>assistant\n",
    "  spaces\n\n\ttabs and é, 日本語 🙂",
    '```json\n{"a": [1, 2.5e-3, null]}',
]


@pytest.fixture
def tokenizer(random_model_path: Path) -> Any:
    """A fresh load of the demo tokenizer (tests may add tokens to it)."""
    return load_tokenizer(random_model_path)


def _eos(tokenizer: Any) -> list[int]:
    return sorted(tokenizer.eos_token_ids)


def _only_file(folder: Path) -> Path:
    files = list(folder.glob(f"*{SUFFIX}"))
    assert len(files) == 1, files
    return files[0]


def _no_build(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("llguidance built the tokenizer from its JSON again")


def test_the_second_build_reads_the_table_and_does_not_build_again(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=tmp_path)
    path = _only_file(tmp_path)
    monkeypatch.setattr(llguidance.hf, "from_tokenizer", _no_build)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiskCacheWarning)
        second = llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=tmp_path)
    assert _only_file(tmp_path) == path
    assert [second.decode_bytes([i]) for i in range(second.vocab_size)] == [
        first.decode_bytes([i]) for i in range(first.vocab_size)
    ]


def test_the_default_folder_is_under_pydantic_mlx_cache(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYDANTIC_MLX_CACHE", str(tmp_path))
    llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer))
    assert _only_file(tmp_path / "llguidance-tokenizers").stat().st_size > 0


def test_the_tokenizer_built_from_the_table_is_llguidances_own(tokenizer: Any, tmp_path: Path) -> None:
    """Same bytes for every token, same special tokens and ends, same tokenization, and the same
    mask at every step of a grammar (the slices are built anew, not read)."""
    hf, eos = tokenizer._tokenizer, _eos(tokenizer)
    hf.add_tokens([AddedToken("<think>", special=True), AddedToken("</think>", special=True)])
    own = llguidance.hf.from_tokenizer(hf, eos_token=eos)
    llg_tokenizer(hf, eos, folder=tmp_path)  # writes the table
    cached = llg_tokenizer(hf, eos, folder=tmp_path)  # reads it
    assert cached.vocab_size == own.vocab_size and cached.eos_tokens == own.eos_tokens
    for i in range(own.vocab_size):
        assert cached.decode_bytes([i]) == own.decode_bytes([i]), i
        assert cached.is_special_token(i) == own.is_special_token(i), i
    for text in SAMPLES:
        assert cached.tokenize_str(text) == own.tokenize_str(text), text
    for special in ("<|im_end|>", "<tool_call>", "<think>"):
        assert cached.tokenize_str(special, parse_special=True) == own.tokenize_str(
            special, parse_special=True
        )
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": ["number", "null"]}}}}
    )
    matchers = [llguidance.LLMatcher(t, grammar, log_level=0) for t in (own, cached)]
    for token in [*own.tokenize_str('{"a": [1, 2.5e-3, null]}'), own.eos_token]:
        masks = [bytes(m.compute_bitmask()) for m in matchers]
        assert masks[0] == masks[1]
        assert all(m.consume_token(token) for m in matchers)


def test_text_the_tokenizer_cannot_give_back_exactly_is_tokenized_greedily(tokenizer: Any) -> None:
    """A tokenizer that changes the text (one that prepends a space, as SentencePiece ones do) must
    not hand llguidance tokens for other bytes: a matcher fed them would refuse the opening."""
    hf, eos = tokenizer._tokenizer, _eos(tokenizer)
    table = TokenTable.of(llguidance.hf.from_tokenizer(hf, eos_token=eos, slices=[]))
    backend = hf.backend_tokenizer

    class PrependsASpace:
        def encode(self, text: str, add_special_tokens: bool = False) -> Any:
            return backend.encode(" " + text, add_special_tokens=add_special_tokens)

    plain = from_table(backend, table, eos)
    prepending = from_table(PrependsASpace(), table, eos)
    for text in SAMPLES:
        assert plain.decode_bytes(plain.tokenize_str(text)) == text.encode(), text
        assert prepending.decode_bytes(prepending.tokenize_str(text)) == text.encode(), text
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert prepending.tokenize_str("<|im_end|>", parse_special=True) == [end]
    mixed = prepending.tokenize_str("a<|im_end|>b", parse_special=True)
    assert end in mixed and prepending.decode_bytes(mixed) == b"a<|im_end|>b"


def _table_written(tokenizer: Any, folder: Path) -> Path:
    llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=folder)
    return _only_file(folder)


def _rebuilt_with_a_warning(tokenizer: Any, folder: Path, match: str) -> None:
    """Building again warns about the file, still gives llguidance's tokenizer, and rewrites the
    file whole (the next build reads it without a warning)."""
    with pytest.warns(DiskCacheWarning, match=match):
        built = llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=folder)
    own = llguidance.hf.from_tokenizer(tokenizer._tokenizer, eos_token=_eos(tokenizer))
    assert built.tokenize_str(SAMPLES[1]) == own.tokenize_str(SAMPLES[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiskCacheWarning)
        llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=folder)


def test_a_corrupt_table_is_ignored_with_a_warning_and_written_again(tokenizer: Any, tmp_path: Path) -> None:
    path = _table_written(tokenizer, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _rebuilt_with_a_warning(tokenizer, tmp_path, "corrupt")


def test_a_truncated_table_is_ignored_with_a_warning_and_written_again(
    tokenizer: Any, tmp_path: Path
) -> None:
    path = _table_written(tokenizer, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    _rebuilt_with_a_warning(tokenizer, tmp_path, "truncated")


@pytest.mark.parametrize("content", [b"", b"PMLX", b"not a table at all" * 10])
def test_a_file_that_is_no_table_is_ignored_with_a_warning(
    tokenizer: Any, tmp_path: Path, content: bytes
) -> None:
    path = _table_written(tokenizer, tmp_path)
    path.write_bytes(content)
    _rebuilt_with_a_warning(tokenizer, tmp_path, "not a token table|truncated")


def test_another_tokenizers_table_under_this_name_is_never_used(tokenizer: Any, tmp_path: Path) -> None:
    """A well-formed table written for another tokenizer (here: another end-of-sequence token), put
    where this tokenizer's table belongs."""
    hf, eos = tokenizer._tokenizer, _eos(tokenizer)
    other_eos = [eos[0] + 1]
    own_path = tmp_path / f"{table_key(hf, eos)}{SUFFIX}"
    other = TokenTable.of(llguidance.hf.from_tokenizer(hf, eos_token=other_eos, slices=[]))
    own_path.write_bytes(other.to_bytes(str(table_key(hf, other_eos)), other_eos))
    _rebuilt_with_a_warning(tokenizer, tmp_path, "another tokenizer")


def test_a_table_of_another_format_version_is_not_read(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _table_written(tokenizer, tmp_path)
    key = path.name.removesuffix(SUFFIX)
    table = TokenTable.from_bytes(path.read_bytes(), key)
    monkeypatch.setattr(_token_table, "FORMAT", 0)
    data = table.to_bytes(key, _eos(tokenizer))
    monkeypatch.undo()
    path.write_bytes(data)
    _rebuilt_with_a_warning(tokenizer, tmp_path, "format 0")


def test_an_unwritable_folder_is_warned_about_and_the_tokenizer_still_built(
    tokenizer: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "a-file"
    folder.write_text("not a folder")
    with pytest.warns(DiskCacheWarning, match="could not write"):
        built = llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=folder)
    assert built.vocab_size == len(tokenizer._tokenizer)
    assert list(tmp_path.iterdir()) == [folder]  # no temporary file left behind


def test_temporary_files_a_crashed_writer_left_are_removed(tokenizer: Any, tmp_path: Path) -> None:
    stale = tmp_path / f"x{SUFFIX}.tmp-1-deadbeef"  # as versions before the shared writer named them
    stale_now = tmp_path / f"z.tmp-3-0badf00d{SUFFIX}"  # as `write_cache_file` names them
    fresh = tmp_path / f"y.tmp-2-cafebabe{SUFFIX}"
    for temp in (stale, stale_now, fresh):
        temp.write_bytes(b"half a table")
    old = time.time() - 2 * STALE_TEMP_SECONDS
    for temp in (stale, stale_now):
        os.utime(temp, (old, old))
    llg_tokenizer(tokenizer._tokenizer, _eos(tokenizer), folder=tmp_path)
    assert not stale.exists() and not stale_now.exists()
    assert fresh.exists()  # a fresh one may be another writer's, mid-write
    assert len([p for p in tmp_path.glob(f"*{SUFFIX}") if TEMP_MARK not in p.name]) == 1


def test_the_key_names_the_tokenizer_its_ends_and_llguidance(
    random_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = load_tokenizer(random_model_path), load_tokenizer(random_model_path)
    eos = _eos(one)
    key = table_key(one._tokenizer, eos)
    assert key is not None and key == table_key(two._tokenizer, eos)  # stable across loads
    assert table_key(one._tokenizer, [*eos, 5]) != key
    two._tokenizer.add_tokens([AddedToken("<new>", special=True)])
    assert table_key(two._tokenizer, eos) != key
    monkeypatch.setattr(_token_table, "_llguidance_version", lambda: "0.0.1")
    assert table_key(one._tokenizer, eos) != key


def test_a_tokenizer_that_is_not_a_fast_hugging_face_one_is_not_cached(tmp_path: Path) -> None:
    class NotHuggingFace:
        pass

    assert table_key(NotHuggingFace(), [0]) is None
    with pytest.raises(ValueError, match="fast tokenizers"):
        llg_tokenizer(NotHuggingFace(), [0], folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
