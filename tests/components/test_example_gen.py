"""ExampleGen alone: canonical splits and statistics, caching on raw content, and bad inputs."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

from components.base import run_component
from components.example_gen import EXAMPLE_GEN
from hale_tf.data import (
    CountMismatchError,
    DataFormatError,
    DatasetNotAvailableError,
    HaleDataError,
    UnknownDatasetError,
    read_triples,
)
from tests.components.conftest import TINY_TEST, TINY_TRAIN, TINY_VALID, write_dataset


def _run(root: Path, **params):
    return run_component(EXAMPLE_GEN, root, params=params)


def _nothing_published(root: Path) -> bool:
    d = root / "ExampleGen"
    return not d.exists() or not any(d.iterdir())


def test_tiny_directory(tmp_path: Path, tiny_dir: Path) -> None:
    art = _run(tmp_path / "root", dataset="tiny", data_dir=str(tiny_dir))
    assert art.type == "Examples"
    for split, triples in (("train", TINY_TRAIN), ("valid", TINY_VALID), ("test", TINY_TEST)):
        assert read_triples(art.path("splits", f"{split}.tsv")) == triples  # order and duplicates kept
    stats = json.loads(art.path("stats.json").read_text())
    assert stats["splits"]["train"]["triples"] == 9
    assert stats["splits"]["train"]["duplicate_lines"] == 1
    assert stats["splits"]["valid"]["entities_not_in_train"] == 1  # x
    assert stats["splits"]["test"]["relations_not_in_train"] == 1  # unknown_rel
    assert stats["entities"] == 7 and stats["relations"] == 4
    assert stats["count_check"] == {"registered": False, "ok": None, "problems": []}
    assert stats["source"] == "data_dir"


def test_gzip_crlf_input_is_canonicalised(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, triples in (("train", TINY_TRAIN), ("valid", TINY_VALID), ("test", TINY_TEST)):
        text = "".join("\t".join(t) + "\r\n" for t in triples)
        (raw / f"{name}.txt.gz").write_bytes(gzip.compress(text.encode()))
    art = _run(tmp_path / "root", dataset="tiny", data_dir=str(raw))
    data = art.path("splits", "train.tsv").read_bytes()
    assert b"\r" not in data and data.decode().splitlines()[0] == "a\tlikes\tb"


def test_cache_follows_raw_content(tmp_path: Path, tiny_dir: Path) -> None:
    root = tmp_path / "root"
    first = _run(root, dataset="tiny", data_dir=str(tiny_dir))
    assert _run(root, dataset="tiny", data_dir=str(tiny_dir)).uri == first.uri
    write_dataset(tiny_dir, train=[*TINY_TRAIN, ("f", "likes", "a")])
    changed = _run(root, dataset="tiny", data_dir=str(tiny_dir))
    assert changed.uri != first.uri
    assert len(read_triples(changed.path("splits", "train.tsv"))) == len(TINY_TRAIN) + 1


def test_kinship_from_mirror(tmp_path: Path, shared_datasets: Path) -> None:
    art = _run(tmp_path / "root", dataset="kinship")
    stats = json.loads(art.path("stats.json").read_text())
    assert stats["source"] == "mirror"
    assert [stats["splits"][s]["triples"] for s in ("train", "valid", "test")] == [8544, 1068, 1074]
    assert stats["entities"] == 104 and stats["relations"] == 25
    assert stats["count_check"]["ok"] is True and stats["count_check"]["registry_name"] == "kinship"


def test_count_mismatch_against_registry(tmp_path: Path, tiny_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resolve_dataset also warns about the counts
        art = _run(tmp_path / "root", dataset="kinship", data_dir=str(tiny_dir))
        check = json.loads(art.path("stats.json").read_text())["count_check"]
        assert check["ok"] is False and any("train" in p for p in check["problems"])
        with pytest.raises(CountMismatchError, match="counts differ from the registry"):
            _run(tmp_path / "strict", dataset="kinship", data_dir=str(tiny_dir), strict_counts=True)
    assert _nothing_published(tmp_path / "strict")


def test_malformed_line_names_file_and_line(tmp_path: Path, tiny_dir: Path) -> None:
    (tiny_dir / "valid.txt").write_text("d\tlikes\ta\nbroken line without tabs\n")
    with pytest.raises(DataFormatError) as info:
        _run(tmp_path / "root", dataset="tiny", data_dir=str(tiny_dir))
    message = str(info.value)
    assert message.startswith(f"{tiny_dir / 'valid.txt'}:2: ") and "\n" not in message
    assert _nothing_published(tmp_path / "root")


def test_empty_split(tmp_path: Path, tiny_dir: Path) -> None:
    (tiny_dir / "test.txt").write_text("")
    with pytest.raises(DataFormatError, match=r"test\.txt:1: .*empty"):
        _run(tmp_path / "root", dataset="tiny", data_dir=str(tiny_dir))
    assert _nothing_published(tmp_path / "root")


def test_missing_split(tmp_path: Path, tiny_dir: Path) -> None:
    (tiny_dir / "test.txt").unlink()
    with pytest.raises(DatasetNotAvailableError, match="test"):
        _run(tmp_path / "root", dataset="tiny", data_dir=str(tiny_dir))
    assert _nothing_published(tmp_path / "root")


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(UnknownDatasetError) as info:
        _run(tmp_path / "root", dataset="no-such-graph", download=False)
    assert isinstance(info.value, HaleDataError) and "\n" not in str(info.value)
    assert _nothing_published(tmp_path / "root")
