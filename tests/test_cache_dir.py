"""The one way the disk caches (prompt caches, token tables) write a file: whole or not at all."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pydantic_mlx import DiskCacheWarning
from pydantic_mlx._cache_dir import (
    STALE_TEMP_SECONDS,
    TEMP_MARK,
    discard_unusable,
    remove_stale_temps,
    write_cache_file,
)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMP_MARK in p.name]


def test_a_file_is_written_through_a_temporary_name_ending_in_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "key.tokens"
    seen: list[Path] = []

    def write(temp: Path) -> int:
        seen.append(temp)
        assert not path.exists()  # readers see no file until it is whole
        return temp.write_bytes(b"table")

    assert write_cache_file(path, write, what="the token table") is True
    assert path.read_bytes() == b"table" and not _temps(path.parent)
    [temp] = seen
    assert temp.parent == path.parent and temp.name.startswith(f"key{TEMP_MARK}{os.getpid()}-")
    assert temp.suffix == ".tokens"  # writers such as mlx's safetensors append a missing suffix


def test_a_file_that_does_not_fit_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    written = write_cache_file(
        path,
        lambda temp: temp.write_bytes(b"x" * 10),
        what="the file",
        fits=lambda temp: temp.stat().st_size < 5,
    )
    assert written is False and list(tmp_path.iterdir()) == []


def test_an_os_error_is_a_warning_at_the_callers_line_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(
        DiskCacheWarning, match=r"could not write the token table .*a-file/key\.tokens"
    ) as caught:
        assert (
            write_cache_file(blocker / "key.tokens", lambda t: t.write_bytes(b""), what="the token table")
            is False
        )
    assert caught[0].filename == __file__

    def full_disk(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.warns(DiskCacheWarning, match="No space left on device"):
        assert write_cache_file(tmp_path / "key.tokens", full_disk, what="the token table") is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_writer_that_fails_otherwise_raises_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    def broken(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise ValueError("a bug in the writer")

    with pytest.raises(ValueError, match="a bug in the writer"):
        write_cache_file(tmp_path / "key.safetensors", broken, what="the prompt-cache file")
    assert list(tmp_path.iterdir()) == []


def test_only_stale_temporary_files_with_the_suffix_are_removed(tmp_path: Path) -> None:
    old = time.time() - 2 * STALE_TEMP_SECONDS
    stale = tmp_path / f"a{TEMP_MARK}1-deadbeef.safetensors"
    fresh = tmp_path / f"b{TEMP_MARK}2-cafebabe.safetensors"
    other_kind = tmp_path / f"c{TEMP_MARK}3-0badf00d.tokens"
    kept = tmp_path / "d.safetensors"
    for path in (stale, fresh, other_kind, kept):
        path.write_bytes(b"")
    for path in (stale, other_kind, kept):
        os.utime(path, (old, old))
    remove_stale_temps(tmp_path, ".safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (fresh, other_kind, kept))
    remove_stale_temps(tmp_path)
    assert not other_kind.exists() and kept.exists() and fresh.exists()


def test_an_unusable_file_is_warned_about_at_the_callers_line_and_deleted(tmp_path: Path) -> None:
    path = tmp_path / "key.tokens"
    path.write_bytes(b"not a table")
    with pytest.warns(DiskCacheWarning) as caught:
        discard_unusable(path, ValueError("bad magic"), what="the token table")
    assert str(caught[0].message) == (
        f"ignoring the token table {path} (bad magic); it is deleted and will be written again"
    )
    assert caught[0].filename == __file__ and not path.exists()
    with pytest.warns(DiskCacheWarning, match="truncated"):
        discard_unusable(path, "truncated", what="the prompt-cache file")  # already gone: no error
