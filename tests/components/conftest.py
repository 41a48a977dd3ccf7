"""Shared fixtures of the component tests: a tiny hand-made graph written as raw split files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

# Beam logs every worker failure as a full traceback at ERROR; the tests check the raised errors instead.
logging.getLogger("apache_beam").setLevel(logging.CRITICAL)

# Entities a..f, relations friend/likes/parent_of. "likes" is 1-1 (tph = hpt = 4/3), "parent_of" is N-1
# (two heads share tail d), "friend" is symmetric. The duplicate "a likes b" line must yield one answer.
TINY_TRAIN = [
    ("a", "likes", "b"),
    ("a", "likes", "c"),
    ("b", "likes", "c"),
    ("c", "likes", "a"),
    ("a", "parent_of", "d"),
    ("b", "parent_of", "d"),
    ("e", "friend", "f"),
    ("f", "friend", "e"),
    ("a", "likes", "b"),
]
# "x" is an entity and "unknown_rel" a relation that never occur in train.
TINY_VALID = [("d", "likes", "a"), ("x", "likes", "a"), ("b", "parent_of", "c")]
TINY_TEST = [("b", "friend", "a"), ("a", "unknown_rel", "b")]


def write_split(path: Path, triples: list[tuple[str, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(t) + "\n" for t in triples), encoding="utf-8")
    return path


def write_dataset(directory: Path, train=TINY_TRAIN, valid=TINY_VALID, test=TINY_TEST) -> Path:
    for name, triples in (("train", train), ("valid", valid), ("test", test)):
        write_split(directory / f"{name}.txt", triples)
    return directory


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "raw")
