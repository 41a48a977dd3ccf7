"""Finding a dataset's split files: explicit directory, local mirror, cache, or download.

Resolution order for a registered dataset (first hit wins):

1. ``data_dir`` given explicitly: it (or ``data_dir/<name>``) must hold the three splits, else an error:
   an explicit directory never silently falls through to other copies;
2. the mirror named by ``$HALE_TF_DATA_MIRROR`` (``<mirror>/<name>/{train,valid,test}.txt.gz``), whose
   files are checked against the registry's SHA-256;
3. the cache, ``cache_dir`` or ``$HALE_TF_CACHE`` or ``~/.cache/hale_tf/datasets`` (``<cache>/<name>/``);
4. a download (``urllib``, with timeout and checksum verification), extracted safely and checked against
   the registry counts in a temporary directory, then renamed into the cache in one step, so the cache
   never holds a partial dataset. ``download=False`` or ``$HALE_TF_OFFLINE=1`` disables this step.

``synthetic`` is generated into the cache under a name derived from its parameters and re-used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from hale_tf.data.errors import (
    ChecksumError,
    CountMismatchError,
    DataFormatError,
    DatasetCountWarning,
    DatasetNotAvailableError,
    HaleDataError,
    UnsafeArchiveError,
)
from hale_tf.data.raw import git_blob_sha1, read_triples, sha256_file, write_triples
from hale_tf.data.registry import SPLITS, SYNTHETIC, DatasetInfo, canonical_name, get_info
from hale_tf.data.synthetic import generate_synthetic, normalize_params, synthetic_dirname, synthetic_info

MIRROR_ENV = "HALE_TF_DATA_MIRROR"
CACHE_ENV = "HALE_TF_CACHE"
OFFLINE_ENV = "HALE_TF_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/hale_tf/datasets")
#: Accepted split file names, in order of preference.
SPLIT_EXTENSIONS: tuple[str, ...] = (".txt.gz", ".txt", ".tsv.gz", ".tsv")
DEFAULT_TIMEOUT = 60.0
#: Upper bound on the bytes an archive may expand to (guards against decompression bombs).
MAX_EXTRACT_BYTES = 8 << 30

_SOURCES = ("data_dir", "mirror", "cache", "download", "synthetic")


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset's three splits are, and which resolution step found them (``source``)."""

    name: str
    directory: Path
    train: Path
    valid: Path
    test: Path
    source: str  # "data_dir" | "mirror" | "cache" | "download" | "synthetic"

    @property
    def splits(self) -> dict[str, Path]:
        """``{"train": path, "valid": path, "test": path}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}


@dataclass(frozen=True)
class DatasetCounts:
    """Counts measured on files: entities/relations are unique strings over all splits."""

    num_entities: int
    num_relations: int
    num_train: int
    num_valid: int
    num_test: int


# --- locating files --------------------------------------------------------------------------------


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$HALE_TF_CACHE``, else ``~/.cache/hale_tf/datasets``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return _env_path(CACHE_ENV) or DEFAULT_CACHE.expanduser()


def mirror_root() -> Path | None:
    """The local mirror named by ``$HALE_TF_DATA_MIRROR``, or ``None`` when unset."""
    return _env_path(MIRROR_ENV)


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def find_split_files(directory: str | os.PathLike) -> dict[str, Path]:
    """The split files present in ``directory`` (``train.txt.gz``, ``valid.tsv``, ...), by split name.

    Missing splits are absent from the result. Two candidates for one split (``train.txt`` and
    ``train.txt.gz``) are an error: silently preferring one could train on a stale copy.
    """
    d = Path(directory)
    found: dict[str, Path] = {}
    for split in SPLITS:
        hits = [d / f"{split}{ext}" for ext in SPLIT_EXTENSIONS if (d / f"{split}{ext}").is_file()]
        if len(hits) > 1:
            raise HaleDataError(
                f"{d}: several files for the {split} split ({', '.join(p.name for p in hits)}); keep only one"
            )
        if hits:
            found[split] = hits[0]
    return found


def _expected_names(split: str) -> str:
    return ", ".join(f"{split}{ext}" for ext in SPLIT_EXTENSIONS)


def _files(name: str, directory: Path, found: dict[str, Path], source: str) -> DatasetFiles:
    for split in SPLITS:
        path = found[split]
        if path.stat().st_size == 0:
            raise DataFormatError(path, 1, f"empty {split} split: the file has no triples")
    return DatasetFiles(name, directory, found["train"], found["valid"], found["test"], source)


def _from_data_dir(data_dir: str | os.PathLike, name: str) -> DatasetFiles:
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise DatasetNotAvailableError(
            f"data_dir {d} is not a directory (expected train/valid/test files in it)"
        )
    found = find_split_files(d)
    if not found and (d / name).is_dir():
        # Also accept a mirror-like root: data_dir/<name>/{train,valid,test}.
        d, found = d / name, find_split_files(d / name)
    missing = [s for s in SPLITS if s not in found]
    if missing:
        wanted = "; ".join(f"{s}: {_expected_names(s)}" for s in missing)
        raise DatasetNotAvailableError(
            f"data_dir {d} lacks the {', '.join(missing)} split(s) (looked for {wanted})"
        )
    return _files(name, d, found, "data_dir")


def verify_mirror_checksums(files: DatasetFiles, info: DatasetInfo) -> list[str]:
    """Check the split files against ``info.mirror_sha256``; returns the splits without a known checksum.

    Raises :class:`ChecksumError` on a mismatch. Costs one SHA-256 pass over the ``.gz`` files (a few
    milliseconds for the benchmarks), much cheaper than counting the triples.
    """
    unchecked = []
    for split, path in files.splits.items():
        expected = info.mirror_sha256.get(path.name)
        if not expected:
            unchecked.append(split)
            continue
        found = sha256_file(path)
        if found != expected:
            raise ChecksumError(
                f"{path}: SHA-256 {found} differs from the registry's {expected} for {info.name} {split}; "
                "the mirror copy is corrupt or modified (restore it, or pass it as --data_dir to use it)"
            )
    return unchecked


# --- counts ----------------------------------------------------------------------------------------


def count_triples(splits: dict[str, list[tuple[str, str, str]]]) -> DatasetCounts:
    """Counts of in-memory splits (``{"train": [...], "valid": [...], "test": [...]}``)."""
    entities: set[str] = set()
    relations: set[str] = set()
    for triples in splits.values():
        for h, r, t in triples:
            entities.add(h)
            entities.add(t)
            relations.add(r)
    return DatasetCounts(
        len(entities), len(relations), len(splits["train"]), len(splits["valid"]), len(splits["test"])
    )


def dataset_counts(files: DatasetFiles) -> DatasetCounts:
    """Read all three splits and count them (raises :class:`DataFormatError` on malformed content)."""
    return count_triples({split: read_triples(path) for split, path in files.splits.items()})


def _compare(found: DatasetCounts, info: DatasetInfo) -> list[str]:
    problems = []
    for label, attr, unit in (
        ("entities", "num_entities", ""),
        ("relations", "num_relations", ""),
        ("train", "num_train", " triples"),
        ("valid", "num_valid", " triples"),
        ("test", "num_test", " triples"),
    ):
        want, got = getattr(info, attr), getattr(found, attr)
        if want != got:
            problems.append(f"{info.name} {label}: expected {want:,}{unit}, found {got:,}")
    return problems


def check_counts(files: DatasetFiles, info: DatasetInfo) -> list[str]:
    """Human-readable differences between the files' counts and the registry entry; empty if they match.

    Entities and relations are counted as unique strings over train, valid and test together.
    """
    return _compare(dataset_counts(files), info)


def _warn_counts(files: DatasetFiles, info: DatasetInfo) -> None:
    problems = check_counts(files, info)
    if problems:
        warnings.warn(
            f"{files.directory}: counts differ from the registry entry: {'; '.join(problems)}",
            DatasetCountWarning,
            stacklevel=3,
        )


# --- download and extraction -----------------------------------------------------------------------


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        size = 0
        request = urllib.request.Request(url, headers={"User-Agent": "hale-tf (dataset download)"})
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if announced is not None and announced.isdigit() and int(announced) != size:
            raise DatasetNotAvailableError(f"download of {url} incomplete: got {size} of {announced} bytes")
        if sha256 and digest.hexdigest() != sha256.lower():
            raise ChecksumError(f"{url}: SHA-256 {digest.hexdigest()} differs from the expected {sha256}")
        if git_sha1:
            found = git_blob_sha1(tmp_name)
            if found != git_sha1.lower():
                raise ChecksumError(f"{url}: git blob id {found} differs from the expected {git_sha1}")
        os.replace(tmp_name, target)
        return target
    except HaleDataError:
        raise
    except urllib.error.HTTPError as exc:
        raise DatasetNotAvailableError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DatasetNotAvailableError(f"could not download {url}: {exc.reason} (offline?)") from None
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise DatasetNotAvailableError(f"could not download {url}: {exc or type(exc).__name__}") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """A member name as a safe relative path; absolute paths, drives and ``..`` are rejected."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise UnsafeArchiveError(
            f"{archive}: refusing member {name!r}: it points outside the extraction directory"
        )
    parts = [p for p in posix.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, RuntimeError, OSError):
        # RuntimeError/OSError: a symlink loop planted by earlier members (Python < 3.13 / >= 3.13).
        return False
    return True


def _copy_stream(src, dest: Path, budget: list[int], archive: Path, member: str) -> None:
    if dest.is_symlink():
        dest.unlink()  # never write through a link planted by an earlier member
    with open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UnsafeArchiveError(
                    f"{archive}: expands beyond {MAX_EXTRACT_BYTES:,} bytes at {member!r}"
                )
            out.write(chunk)


def _refuse(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: refusing member {member!r}: {why}")


def _destination(archive: Path, root: Path, name: str, is_dir: bool) -> Path | None:
    """Where a member goes, or ``None`` for the archive's own root folder (``./``)."""
    rel = _member_path(name, archive)
    if rel == PurePosixPath("."):
        if is_dir:
            return None
        raise _refuse(archive, name, "a file without a name")
    dest = root / rel
    # Resolving the parent catches a folder that is (through an earlier symlink member) outside root.
    if not _inside(dest.parent, root):
        raise _refuse(archive, name, "its folder leads outside the extraction directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def _extract_tar(src: Path, root: Path, budget: list[int]) -> None:
    with tarfile.open(src, "r:*") as tar:
        for member in tar:
            dest = _destination(src, root, member.name, member.isdir())
            if dest is None:
                continue
            if member.isdir():
                dest.mkdir(exist_ok=True)
            elif member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None  # regular members always have a file object
                with fh:
                    _copy_stream(fh, dest, budget, src, member.name)
            elif member.issym():
                link = member.linkname
                if os.path.isabs(link) or not _inside(dest.parent / link, root):
                    raise _refuse(
                        src, member.name, f"symlink to {link!r} leads outside the extraction directory"
                    )
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                os.symlink(link, dest)
            elif member.islnk():
                # A hard link names another member: copy that already-checked file instead of linking.
                origin = root / _member_path(member.linkname, src)
                if not _inside(origin, root) or not origin.is_file():
                    raise _refuse(
                        src, member.name, f"hard link to {member.linkname!r}, not an extracted file"
                    )
                with open(origin, "rb") as fh:
                    _copy_stream(fh, dest, budget, src, member.name)
            else:
                raise _refuse(src, member.name, "only files, folders and links are allowed")


def _extract_zip(src: Path, root: Path, budget: list[int]) -> None:
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(src, info.filename, "symlinks are not allowed in zip archives")
            dest = _destination(src, root, info.filename, info.is_dir())
            if dest is None:
                continue
            if info.is_dir():
                dest.mkdir(exist_ok=True)
                continue
            with zf.open(info) as fh:
                _copy_stream(fh, dest, budget, src, info.filename)


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> None:
    """Extract a tar (any compression) or zip archive into ``target``, refusing anything unsafe.

    Rejected with :class:`UnsafeArchiveError`: absolute member paths, ``..`` components, links whose
    target lies outside ``target``, device/FIFO members, zip symlinks, and archives that expand beyond
    :data:`MAX_EXTRACT_BYTES`. Files are written by this function (not ``extractall``), so the checks
    apply to every byte written. On error, ``target`` may hold a partial tree: extract into a
    temporary directory and delete it on failure (as :func:`download_dataset` does).
    """
    src, root = Path(archive), Path(target)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    budget = [MAX_EXTRACT_BYTES]
    if tarfile.is_tarfile(src):
        _extract_tar(src, root, budget)
    elif zipfile.is_zipfile(src):
        _extract_zip(src, root, budget)
    else:
        raise UnsafeArchiveError(f"{src}: not a tar or zip archive")


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


def _install(directory: Path, final: Path, scratch: Path) -> None:
    """Move a completed dataset directory to its final place in one rename."""
    if final.exists() or final.is_symlink():
        # Only an incomplete or stale copy can be there (a complete one would have been used); move it
        # into the scratch area that is deleted afterwards, then rename the new one in.
        os.replace(final, scratch / "previous")
    os.replace(directory, final)


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
        problems = _compare(count_triples(triples), info)
        if problems:
            raise CountMismatchError(
                f"data downloaded from {origin} does not match the registry: {'; '.join(problems)}"
            )
        out = scratch / info.name
        for split in SPLITS:
            write_triples(out / f"{split}.txt.gz", triples[split])
        final = root / info.name
        _install(out, final, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return DatasetFiles(
        info.name, final, final / "train.txt.gz", final / "valid.txt.gz", final / "test.txt.gz", "download"
    )


# --- resolution ------------------------------------------------------------------------------------


def _resolve_synthetic(data_dir, cache_dir, params: dict | None) -> DatasetFiles:
    p = normalize_params(params)
    if data_dir is not None:
        files = _from_data_dir(data_dir, SYNTHETIC)
        if params:
            _warn_counts(files, synthetic_info(p))
        return files
    root = cache_root(cache_dir)
    final = root / synthetic_dirname(p)
    found = find_split_files(final) if final.is_dir() else {}
    if len(found) == len(SPLITS) and (final / "synthetic.json").is_file():
        return _files(SYNTHETIC, final, found, "synthetic")
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tmp-synthetic-", dir=root))
    try:
        out = scratch / final.name
        generate_synthetic(out, **p)
        if (
            final.is_dir()
            and (final / "synthetic.json").is_file()
            and len(find_split_files(final)) == len(SPLITS)
        ):
            pass  # a concurrent process finished the same graph first; its copy is identical
        else:
            _install(out, final, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _files(SYNTHETIC, final, find_split_files(final), "synthetic")


def resolve_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    cache_dir: str | None = None,
    download: bool = True,
    synthetic_params: dict | None = None,
    info: DatasetInfo | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    verify: bool = True,
) -> DatasetFiles:
    """Find (or fetch, or generate) the split files of dataset ``name``; see the module docstring.

    Args:
        name: a registry name (case/``_`` insensitive), ``"synthetic"``, or any name with ``data_dir``.
        data_dir: directory holding ``{train,valid,test}.{txt,txt.gz,tsv,tsv.gz}`` (or ``<name>/`` below it).
        cache_dir: overrides ``$HALE_TF_CACHE`` / ``~/.cache/hale_tf/datasets``.
        download: allow a network download when no local copy exists.
        synthetic_params: generator parameters for ``"synthetic"`` (see ``hale_tf.data.synthetic``).
        info: use this entry instead of the registry's (e.g. another download URL).
        timeout: seconds per network operation.
        verify: check mirror SHA-256s, and counts of a ``data_dir`` copy (a :class:`DatasetCountWarning`).

    Raises:
        UnknownDatasetError, DatasetNotAvailableError, ChecksumError, DataFormatError (all HaleDataError).
    """
    key = canonical_name(name)
    if key == SYNTHETIC:
        return _resolve_synthetic(data_dir, cache_dir, synthetic_params)
    if synthetic_params:
        raise HaleDataError(f"synthetic_params only apply to the 'synthetic' dataset, not {name!r}")

    if data_dir is not None:
        if info is None:
            try:
                info = get_info(key)
            except HaleDataError:
                info = None  # any directory of splits is a dataset; only registered ones have counts to check
        files = _from_data_dir(data_dir, info.name if info else str(name).strip())
        if verify and info is not None:
            _warn_counts(files, info)
        return files

    info = info or get_info(key)
    notes: list[str] = []
    partial: dict[str, Path] = {}
    mirror = mirror_root()
    if mirror is None:
        notes.append(f"${MIRROR_ENV} is not set")
    else:
        directory = mirror / info.name
        found = find_split_files(directory) if directory.is_dir() else {}
        if len(found) == len(SPLITS):
            files = _files(info.name, directory, found, "mirror")
            if verify and verify_mirror_checksums(files, info):
                _warn_counts(files, info)  # some split has no recorded checksum: fall back to counting
            return files
        partial = found
        notes.append(f"mirror {directory} has {', '.join(found) if found else 'no splits'}")

    cache = cache_root(cache_dir) / info.name
    found = find_split_files(cache) if cache.is_dir() else {}
    if len(found) == len(SPLITS):
        return _files(info.name, cache, found, "cache")
    notes.append(f"cache {cache} has {', '.join(found) if found else 'no splits'}")

    if not download:
        reason = "downloading is disabled (download=False)"
    elif _offline():
        reason = f"downloading is disabled (${OFFLINE_ENV} is set)"
    else:
        try:
            return download_dataset(info, cache_dir, timeout=timeout)
        except DatasetNotAvailableError as exc:
            reason = f"the download failed: {exc}"

    source = info.url or ", ".join(str(v) for v in info.files.values()) or "no public source"
    if partial:
        lacking = [s for s in SPLITS if s not in partial]
        sizes = ", ".join(f"{s} ({info.num_triples[s]:,} triples)" for s in lacking)
        raise DatasetNotAvailableError(
            f"{info.name}: the local mirror {mirror / info.name} has only {', '.join(partial)}; {sizes} must "
            f"come from {source}, but {reason}. Pass --data_dir=DIR with train/valid/test files "
            f"(e.g. the extracted archive), or use the 'synthetic' dataset offline (its preset "
            f"'yago3-10' has the same size)"
        )
    raise DatasetNotAvailableError(
        f"{info.name} is not available locally ({'; '.join(notes)}) and {reason} (source: {source}). "
        f"Pass --data_dir=DIR with train/valid/test files, set ${MIRROR_ENV}, or use --dataset=synthetic"
    )
