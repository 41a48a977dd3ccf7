"""Downloads from a local HTTP server: checksums, safe extraction, counts, and nothing half-written."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from hale_tf.data import (
    ChecksumError,
    CountMismatchError,
    DataFormatError,
    DatasetInfo,
    DatasetNotAvailableError,
    UnsafeArchiveError,
    extract_archive,
    read_triples,
    resolve_dataset,
)
from hale_tf.data.raw import git_blob_sha1
from hale_tf.data.resolve import download_file
from tests.data.helpers import LocalServer, make_tar, toy_splits


def _info(url: str | None, **changes) -> DatasetInfo:
    fields = {
        "name": "toy",
        "description": "toy graph",
        "url": url,
        "archive_sha256": None,
        "files": {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
        "num_entities": 6,
        "num_relations": 2,
        "num_train": 6,
        "num_valid": 2,
        "num_test": 2,
    }
    fields.update(changes)
    return DatasetInfo(**fields)


def _leftovers(cache: Path) -> list[str]:
    """Everything in the cache (hidden temp folders included)."""
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_extract_verify_and_cache(http_server: LocalServer, isolated_cache: Path) -> None:
    archive = make_tar(http_server.root / "toy.tar.gz", toy_splits())
    info = _info(
        http_server.url("toy.tar.gz"), archive_sha256=hashlib.sha256(archive.read_bytes()).hexdigest()
    )
    files = resolve_dataset("toy", info=info)
    assert files.source == "download"
    assert files.directory == isolated_cache / "toy"
    assert _leftovers(isolated_cache) == ["toy"]
    assert sorted(p.name for p in files.directory.iterdir()) == [
        "test.txt.gz",
        "train.txt.gz",
        "valid.txt.gz",
    ]
    # Stored LF-normalised and gzipped, like the mirror.
    assert gzip.decompress(files.valid.read_bytes()) == b"a\tr2\tc\nb\tr2\td\n"
    assert read_triples(files.train)[0] == ("a", "r1", "b")

    archive.unlink()  # the second resolution must not need the server
    again = resolve_dataset("toy", info=info)
    assert again.source == "cache" and again.train == files.train


def test_archive_with_a_top_level_folder(http_server: LocalServer, isolated_cache: Path) -> None:
    make_tar(http_server.root / "toy.tar.gz", toy_splits(), prefix="./toy/")
    files = resolve_dataset("toy", info=_info(http_server.url("toy.tar.gz")))
    assert len(read_triples(files.test)) == 2


def test_zip_archives_work_too(http_server: LocalServer) -> None:
    with zipfile.ZipFile(http_server.root / "toy.zip", "w") as zf:
        for name, payload in toy_splits().items():
            zf.writestr(name, payload)
    files = resolve_dataset("toy", info=_info(http_server.url("toy.zip")))
    assert len(read_triples(files.train)) == 6


@pytest.mark.parametrize("field", ["archive_sha256", "archive_git_sha1"])
def test_checksum_mismatch_leaves_nothing(http_server: LocalServer, isolated_cache: Path, field: str) -> None:
    make_tar(http_server.root / "toy.tar.gz", toy_splits())
    wrong = "0" * (64 if field == "archive_sha256" else 40)
    with pytest.raises(ChecksumError, match="differs from the expected 0000"):
        resolve_dataset("toy", info=_info(http_server.url("toy.tar.gz"), **{field: wrong}))
    assert _leftovers(isolated_cache) == []


def test_git_blob_checksum_accepted(http_server: LocalServer) -> None:
    archive = make_tar(http_server.root / "toy.tar.gz", toy_splits())
    info = _info(http_server.url("toy.tar.gz"), archive_git_sha1=git_blob_sha1(archive))
    assert resolve_dataset("toy", info=info).source == "download"


def _evil_tar(path: Path, evil: tarfile.TarInfo, payload: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in toy_splits().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        evil.size = len(payload) if evil.isfile() else 0
        tar.addfile(evil, io.BytesIO(payload) if evil.isfile() else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "evil",
    [
        tarfile.TarInfo("../../../evil.txt"),
        tarfile.TarInfo("sub/../../evil.txt"),
        tarfile.TarInfo("/tmp/hale_tf_absolute_evil.txt"),
        _symlink("escape", "../../../.."),
        _symlink("abs", "/etc"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-up", "symlink-absolute"],
)
def test_path_traversal_is_rejected(
    http_server: LocalServer, isolated_cache: Path, tmp_path: Path, evil: tarfile.TarInfo
) -> None:
    _evil_tar(http_server.root / "toy.tar.gz", evil, b"pwned\n")
    with pytest.raises(UnsafeArchiveError, match="refusing member"):
        resolve_dataset("toy", info=_info(http_server.url("toy.tar.gz")))
    assert _leftovers(isolated_cache) == []
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/hale_tf_absolute_evil.txt").exists()


def test_link_then_write_through_it_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(_symlink("d", str(outside)))
        info = tarfile.TarInfo("d/x.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, tmp_path / "target")
    assert list(outside.iterdir()) == []


def test_safe_links_fifos_and_zip_traversal(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("data/train.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"a\tr\tb\n"))
        tar.addfile(_symlink("data/alias.txt", "train.txt"))
        hard = tarfile.TarInfo("copy.txt")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "data/train.txt"
        tar.addfile(hard)
    extract_archive(archive, tmp_path / "ok")
    assert read_triples(tmp_path / "ok" / "data" / "alias.txt") == [("a", "r", "b")]
    assert (tmp_path / "ok" / "copy.txt").read_bytes() == b"a\tr\tb\n"

    fifo = tmp_path / "fifo.tar"
    with tarfile.open(fifo, "w") as tar:
        info = tarfile.TarInfo("pipe")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="only files, folders and links"):
        extract_archive(fifo, tmp_path / "f")

    bad_zip = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_archive(bad_zip, tmp_path / "z")
    assert not (tmp_path / "evil.txt").exists()

    not_archive = tmp_path / "plain.txt"
    not_archive.write_text("a\tr\tb\n")
    with pytest.raises(UnsafeArchiveError, match="not a tar or zip"):
        extract_archive(not_archive, tmp_path / "p")


def test_count_mismatch_is_an_error_and_not_cached(http_server: LocalServer, isolated_cache: Path) -> None:
    make_tar(http_server.root / "toy.tar.gz", toy_splits())
    with pytest.raises(CountMismatchError, match="toy train: expected 7 triples, found 6"):
        resolve_dataset("toy", info=_info(http_server.url("toy.tar.gz"), num_train=7))
    assert _leftovers(isolated_cache) == []


def test_malformed_download_names_its_source(http_server: LocalServer, isolated_cache: Path) -> None:
    splits = toy_splits()
    splits["test.txt"] += b"broken line\n"
    make_tar(http_server.root / "toy.tar.gz", splits)
    url = http_server.url("toy.tar.gz")
    with pytest.raises(DataFormatError) as info:
        resolve_dataset("toy", info=_info(url))
    assert str(info.value).startswith(f"{url}#test.txt:3: expected 3 tab-separated fields")
    assert _leftovers(isolated_cache) == []


def test_missing_member_is_reported(http_server: LocalServer) -> None:
    splits = toy_splits()
    del splits["valid.txt"]
    make_tar(http_server.root / "toy.tar.gz", splits)
    with pytest.raises(DatasetNotAvailableError, match=r"has no 'valid.txt' for the valid split"):
        resolve_dataset("toy", info=_info(http_server.url("toy.tar.gz")))


def test_per_file_urls_with_git_blob_ids(http_server: LocalServer, isolated_cache: Path) -> None:
    blobs = {}
    for name, payload in toy_splits().items():
        path = http_server.root / "codex" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(payload)
        blobs[name.split(".")[0]] = git_blob_sha1(path)
    files = {s: http_server.url(f"codex/{s}.txt") for s in ("train", "valid", "test")}
    got = resolve_dataset("toy", info=_info(None, files=files, file_git_sha1=blobs))
    assert got.source == "download" and len(read_triples(got.valid)) == 2

    blobs["test"] = "f" * 40
    with pytest.raises(ChecksumError, match=r"codex/test\.txt: git blob id"):
        resolve_dataset(
            "toy",
            cache_dir=str(isolated_cache / "second"),
            info=_info(None, files=files, file_git_sha1=blobs),
        )
    assert _leftovers(isolated_cache / "second") == []


def test_http_errors_and_truncation(http_server: LocalServer, isolated_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotAvailableError, match="HTTP 404"):
        resolve_dataset("toy", info=_info(http_server.url("missing.tar.gz")))
    assert _leftovers(isolated_cache) == []

    dest = tmp_path / "dl" / "x.tar.gz"
    with pytest.raises(DatasetNotAvailableError, match="could not download|incomplete"):
        download_file(http_server.url("truncated/x.tar.gz"), dest, timeout=10)
    assert os.listdir(dest.parent) == []  # no partial file under any name

    with pytest.raises(DatasetNotAvailableError, match="unsupported URL scheme 'ftp'"):
        download_file("ftp://127.0.0.1/x", dest)
