"""Resolution order (data_dir, mirror, cache, download) on the real offline copies and on toy folders."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import socket
import warnings
from pathlib import Path

import pytest

from hale_tf.data import (
    ChecksumError,
    DataFormatError,
    DatasetCountWarning,
    DatasetNotAvailableError,
    HaleDataError,
    UnknownDatasetError,
    check_counts,
    dataset_counts,
    get_info,
    read_triples,
    resolve_dataset,
    write_triples,
)

TOY = {
    "train": [("a", "r", "b"), ("b", "r", "c"), ("c", "s", "a")],
    "valid": [("a", "s", "c")],
    "test": [("b", "s", "a")],
}


def _toy_dir(path: Path, ext: str = ".txt") -> Path:
    for split, rows in TOY.items():
        write_triples(path / f"{split}{ext}", rows)
    return path


@pytest.mark.parametrize("name", ["kinship", "umls", "wn18rr"])
def test_mirror_copies_match_the_registry(name: str, shared_datasets: Path) -> None:
    files = resolve_dataset(name, download=False)
    assert files.source == "mirror"
    assert files.directory == shared_datasets / name
    assert files.train == shared_datasets / name / "train.txt.gz"
    assert check_counts(files, get_info(name)) == []


def test_check_counts_reports_expected_and_found(shared_datasets: Path) -> None:
    files = resolve_dataset("nations", download=False)
    wrong = dataclasses.replace(get_info("nations"), num_train=1_000, num_entities=15)
    problems = check_counts(files, wrong)
    assert problems == [
        "nations entities: expected 15, found 14",
        "nations train: expected 1,000 triples, found 1,592",
    ]


def test_yago_without_train_offline_says_why_and_what_to_do(shared_datasets: Path) -> None:
    with pytest.raises(DatasetNotAvailableError) as info:
        resolve_dataset("yago3-10", download=False)
    message = str(info.value)
    assert "has only valid, test" in message
    assert "train (1,079,040 triples)" in message
    assert "https://github.com/TimDettmers/ConvE/raw/master/YAGO3-10.tar.gz" in message
    assert "--data_dir" in message and "synthetic" in message
    assert "\n" not in message


def _refusing_port() -> int:
    with socket.socket() as sock:  # bind, then close: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_yago_download_failure_is_reported(shared_datasets: Path) -> None:
    info = dataclasses.replace(
        get_info("yago3-10"), url=f"http://127.0.0.1:{_refusing_port()}/YAGO3-10.tar.gz"
    )
    with pytest.raises(DatasetNotAvailableError, match="the download failed: could not download http://127"):
        resolve_dataset("yago3-10", info=info, timeout=5)


def test_offline_env_disables_download(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALE_TF_OFFLINE", "1")
    info = dataclasses.replace(get_info("yago3-10"), url="http://192.0.2.1/never-contacted.tar.gz")
    with pytest.raises(DatasetNotAvailableError, match=r"\$HALE_TF_OFFLINE is set"):
        resolve_dataset("yago3-10", info=info, timeout=2)


def test_yago_from_data_dir_with_train(tmp_path: Path, shared_datasets: Path) -> None:
    # A user-supplied copy (here: mirror valid/test plus a stand-in train) is used as is, with a warning
    # because its counts are not the published ones.
    d = tmp_path / "yago"
    d.mkdir()
    for split in ("valid", "test"):
        shutil.copy(shared_datasets / "yago3-10" / f"{split}.txt.gz", d)
    write_triples(d / "train.tsv", read_triples(d / "valid.txt.gz")[:10])
    with pytest.warns(DatasetCountWarning, match=r"yago3-10 train: expected 1,079,040 triples, found 10"):
        files = resolve_dataset("YAGO3-10", str(d))
    assert files.source == "data_dir" and files.train.name == "train.tsv"


@pytest.mark.parametrize("ext", [".txt", ".txt.gz", ".tsv", ".tsv.gz"])
def test_data_dir_accepts_all_extensions(tmp_path: Path, ext: str) -> None:
    files = resolve_dataset("my-graph", str(_toy_dir(tmp_path / "g", ext)))
    assert files.source == "data_dir" and files.name == "my-graph"
    assert files.train.name == f"train{ext}"
    counts = dataset_counts(files)
    assert (counts.num_entities, counts.num_relations, counts.num_train) == (3, 2, 3)


def test_data_dir_may_be_a_mirror_like_root(tmp_path: Path) -> None:
    _toy_dir(tmp_path / "root" / "toy")
    files = resolve_dataset("toy", str(tmp_path / "root"))
    assert files.directory == tmp_path / "root" / "toy"


def test_explicit_data_dir_never_falls_through(tmp_path: Path, shared_datasets: Path) -> None:
    d = _toy_dir(tmp_path / "g")
    (d / "test.txt").unlink()
    with pytest.raises(DatasetNotAvailableError, match=r"lacks the test split.*test\.txt\.gz"):
        resolve_dataset("kinship", str(d))
    with pytest.raises(DatasetNotAvailableError, match="is not a directory"):
        resolve_dataset("kinship", str(tmp_path / "missing"))


def test_ambiguous_and_empty_splits(tmp_path: Path) -> None:
    d = _toy_dir(tmp_path / "g")
    write_triples(d / "train.txt.gz", TOY["train"])
    with pytest.raises(HaleDataError, match="several files for the train split"):
        resolve_dataset("toy", str(d))
    (d / "train.txt.gz").unlink()
    (d / "valid.txt").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"valid\.txt:1: empty valid split"):
        resolve_dataset("toy", str(d))


def test_data_dir_matching_registry_gives_no_warning(shared_datasets: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = resolve_dataset("umls", str(shared_datasets / "umls"))
    assert files.source == "data_dir"


def test_modified_mirror_fails_its_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_datasets: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_datasets / "nations", mirror / "nations")
    path = mirror / "nations" / "valid.txt.gz"
    rows = read_triples(path)
    path.write_bytes(gzip.compress("".join(f"{h}\t{r}\t{t}\n" for h, r, t in rows[:-1]).encode()))
    monkeypatch.setenv("HALE_TF_DATA_MIRROR", str(mirror))
    with pytest.raises(ChecksumError, match=r"valid\.txt\.gz: SHA-256 .* differs .* nations valid"):
        resolve_dataset("nations", download=False)
    assert resolve_dataset("nations", download=False, verify=False).source == "mirror"


def test_cache_is_used_when_the_mirror_lacks_a_dataset(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HALE_TF_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    _toy_dir(isolated_cache / "kinship", ".txt.gz")
    files = resolve_dataset("kinship", download=False)
    assert files.source == "cache" and files.directory == isolated_cache / "kinship"
    other = tmp_path / "other-cache"
    with pytest.raises(DatasetNotAvailableError, match=r"kinship is not available locally.*download=False"):
        resolve_dataset("kinship", cache_dir=str(other), download=False)


def test_unknown_dataset_and_misplaced_synthetic_params() -> None:
    with pytest.raises(UnknownDatasetError, match="available: yago3-10, wn18rr"):
        resolve_dataset("freebase")
    with pytest.raises(HaleDataError, match="synthetic_params only apply"):
        resolve_dataset("kinship", synthetic_params={"num_entities": 10})
