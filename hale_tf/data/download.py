"""Downloading a registered dataset into the cache: HTTP fetch with checksums, safe extraction, strict checks.

:func:`download_dataset` fetches (checksums verified when the registry knows them), extracts safely
(:mod:`hale_tf.data.archive`), parses every split strictly, compares the counts with the registry, writes
gzipped LF-normalised splits and renames the finished directory into the cache in one step, so the cache
never holds a partial dataset.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from hale_tf.atomic import atomic_open, replace_directory
from hale_tf.data.archive import extract_archive
from hale_tf.data.counts import count_differences, count_triples
from hale_tf.data.errors import (
    ChecksumError,
    CountMismatchError,
    DataFormatError,
    DatasetNotAvailableError,
)
from hale_tf.data.raw import git_blob_sha1_stream, read_triples, write_triples
from hale_tf.data.types import SPLITS, DatasetFiles, DatasetInfo

__all__ = ["CACHE_ENV", "DEFAULT_CACHE", "DEFAULT_TIMEOUT", "cache_root", "download_dataset", "download_file"]

CACHE_ENV = "HALE_TF_CACHE"
DEFAULT_CACHE = Path("~/.cache/hale_tf/datasets")
DEFAULT_TIMEOUT = 60.0


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory (downloads and generated graphs): ``cache_dir``, else ``$HALE_TF_CACHE``, else
    ``~/.cache/hale_tf/datasets``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_CACHE.expanduser()


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    sha256: str | None = None,
    git_sha1: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying the SHA-256 and/or git blob id when given.

    The bytes go to a temporary file next to ``dest`` that is renamed only after all checks pass and
    deleted otherwise. Network failures raise :class:`DatasetNotAvailableError`; a checksum mismatch
    raises :class:`ChecksumError`.
    """
    target = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DatasetNotAvailableError(f"cannot download {url}: unsupported URL scheme {scheme!r}")
    # "w+b": the git blob id needs the size first, so the written bytes are read back for it. A failed check
    # raises inside the block, so the temporary file is removed and nothing appears under ``dest``.
    with atomic_open(target, "w+b") as fh:
        size, digest = _fetch(url, fh, timeout)
        if sha256 and digest != sha256.lower():
            raise ChecksumError(f"{url}: SHA-256 {digest} differs from the expected {sha256}")
        if git_sha1:
            fh.flush()
            fh.seek(0)
            found = git_blob_sha1_stream(fh, size)
            if found != git_sha1.lower():
                raise ChecksumError(f"{url}: git blob id {found} differs from the expected {git_sha1}")
    return target


def _fetch(url: str, out: BinaryIO, timeout: float) -> tuple[int, str]:
    """Stream ``url`` into ``out``; returns (size, hex SHA-256). Failures are one-line
    :class:`DatasetNotAvailableError` (raised here, so ``atomic_open`` does not relabel them as write errors)."""
    digest = hashlib.sha256()
    size = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "hale-tf (dataset download)"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        raise DatasetNotAvailableError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DatasetNotAvailableError(f"could not download {url}: {exc.reason} (offline?)") from None
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise DatasetNotAvailableError(f"could not download {url}: {exc or type(exc).__name__}") from None
    if announced is not None and announced.isdigit() and int(announced) != size:
        raise DatasetNotAvailableError(f"download of {url} incomplete: got {size} of {announced} bytes")
    return size, digest.hexdigest()


def _locate(root: Path, member: str, info: DatasetInfo, split: str) -> Path:
    """The extracted file for a split: the registered member path, else a unique file of that name."""
    exact = root / member
    if exact.is_file():
        return exact
    # Archives are sometimes repacked with a top-level folder; accept the member under any one folder.
    base = PurePosixPath(member).name
    hits = sorted(p for p in root.rglob("*") if p.is_file() and p.name in (base, base + ".gz"))
    if len(hits) == 1:
        return hits[0]
    present = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())[:20]
    raise DatasetNotAvailableError(
        f"{info.name}: the downloaded archive has {'several' if hits else 'no'} {member!r} for the {split} "
        f"split (it contains: {', '.join(present) or 'nothing'})"
    )


def download_dataset(
    info: DatasetInfo, cache_dir: str | os.PathLike | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> DatasetFiles:
    """Download ``info`` into ``<cache>/<name>/{train,valid,test}.txt.gz`` and return its files.

    Steps: fetch (checksums verified when known) -> extract safely -> parse every split strictly ->
    compare counts with the registry (:class:`CountMismatchError` on any difference) -> write gzipped
    LF-normalised splits -> rename the finished directory into the cache. All intermediate files live in
    a temporary directory inside the cache that is removed whatever happens.
    """
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{info.name}-", dir=root))
    try:
        raw = scratch / "raw"
        raw.mkdir()
        members: dict[str, Path] = {}
        if info.url:
            suffix = "".join(PurePosixPath(urllib.parse.urlsplit(info.url).path).suffixes[-2:]) or ".archive"
            archive = download_file(
                info.url,
                scratch / f"archive{suffix}",
                timeout=timeout,
                sha256=info.archive_sha256,
                git_sha1=info.archive_git_sha1,
            )
            extract_archive(archive, raw)
            archive.unlink()
            members = {split: _locate(raw, info.files[split], info, split) for split in SPLITS}
            origin = info.url
        else:
            missing = [s for s in SPLITS if s not in info.files]
            if missing:
                raise DatasetNotAvailableError(
                    f"{info.name}: no download source for split(s) {', '.join(missing)}"
                )
            for split in SPLITS:
                url = info.files[split]
                name = PurePosixPath(urllib.parse.urlsplit(url).path).name or f"{split}.txt"
                members[split] = download_file(
                    url, raw / split / name, timeout=timeout, git_sha1=info.file_git_sha1.get(split)
                )
            origin = ", ".join(info.files[s] for s in SPLITS)
        triples = {}
        for split in SPLITS:
            try:
                triples[split] = read_triples(members[split])
            except DataFormatError as exc:
                # The scratch copy is deleted below, so name the file by where it came from instead.
                if info.url:
                    where = f"{info.url}#{members[split].relative_to(raw).as_posix()}"
                else:
                    where = info.files[split]
                raise DataFormatError(where, exc.line, exc.reason) from None
        problems = count_differences(count_triples(triples), info)
        if problems:
            raise CountMismatchError(
                f"data downloaded from {origin} does not match the registry: {'; '.join(problems)}"
            )
        out = scratch / info.name
        for split in SPLITS:
            write_triples(out / f"{split}.txt.gz", triples[split])
        # Only an incomplete or stale copy can be at the final place (a complete one would have been used).
        final = replace_directory(out, root / info.name, scratch / "previous")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return DatasetFiles.in_directory(info.name, final, "download")
