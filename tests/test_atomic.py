"""hale_tf.atomic: the one place for atomic file and directory writes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hale_tf.atomic import atomic_write_bytes, exchange_directories, replace_directory


def test_write_bytes_plain_and_deterministic_gzip(tmp_path: Path) -> None:
    plain = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00payload")
    assert plain.read_bytes() == b"\x00payload"
    first = atomic_write_bytes(tmp_path / "a.txt.gz", b"a\tr\tb\n", gzip_level=6).read_bytes()
    again = atomic_write_bytes(tmp_path / "a.txt.gz", b"a\tr\tb\n", gzip_level=6).read_bytes()
    assert first == again and gzip.decompress(first) == b"a\tr\tb\n"  # no name, mtime 0: same bytes
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's mtime field
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt.gz", "sub"]  # no temporary file left


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = atomic_write_bytes(tmp_path / "t.bin", b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t.bin"]


def test_replace_directory_moves_the_stale_copy_aside(tmp_path: Path) -> None:
    new, final, scratch = tmp_path / "new", tmp_path / "final", tmp_path / "scratch"
    for folder, text in ((new, "new"), (final, "stale")):
        folder.mkdir()
        (folder / "f.txt").write_text(text)
    scratch.mkdir()
    assert replace_directory(new, final, scratch / "previous") == final
    assert (final / "f.txt").read_text() == "new" and not new.exists()
    assert (scratch / "previous" / "f.txt").read_text() == "stale"
    other = tmp_path / "other"
    other.mkdir()
    replace_directory(other, tmp_path / "fresh", scratch / "unused")  # nothing to move aside
    assert (tmp_path / "fresh").is_dir() and not (scratch / "unused").exists()


def test_exchange_directories_swaps_two_directories_in_one_step(tmp_path: Path) -> None:
    new, published = tmp_path / ".new", tmp_path / "published"
    for directory, text in ((new, "new"), (published, "old")):
        directory.mkdir()
        (directory / "out.txt").write_text(text)
    if not exchange_directories(new, published):
        pytest.skip("this kernel or file system cannot exchange directories")
    assert (published / "out.txt").read_text() == "new" and (new / "out.txt").read_text() == "old"


def test_exchange_directories_with_a_missing_side_changes_nothing(tmp_path: Path) -> None:
    new = tmp_path / ".new"
    new.mkdir()
    assert exchange_directories(new, tmp_path / "gone") is False
    assert new.is_dir() and not (tmp_path / "gone").exists()
