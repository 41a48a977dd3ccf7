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

The download itself is :mod:`hale_tf.data.download` (with :mod:`hale_tf.data.archive` for safe extraction
and :mod:`hale_tf.data.counts` for the count check); their public names stay importable from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from hale_tf.atomic import replace_directory
from hale_tf.data.archive import MAX_EXTRACT_BYTES, extract_archive
from hale_tf.data.counts import check_counts, count_triples, dataset_counts
from hale_tf.data.download import (
    CACHE_ENV,
    DEFAULT_CACHE,
    DEFAULT_TIMEOUT,
    cache_root,
    download_dataset,
    download_file,
)
from hale_tf.data.errors import (
    ChecksumError,
    DataFormatError,
    DatasetCountWarning,
    DatasetNotAvailableError,
    HaleDataError,
    UnsafeArchiveError,
)
from hale_tf.data.raw import sha256_file
from hale_tf.data.registry import canonical_name, get_info
from hale_tf.data.synthetic import generate_synthetic
from hale_tf.data.types import SPLITS, SYNTHETIC, DatasetCounts, DatasetFiles, DatasetInfo, SyntheticParams

# Names kept importable from here since before the split into download/archive/counts (other code and tests
# use them through this module).
__all__ = [
    "CACHE_ENV",
    "DEFAULT_CACHE",
    "DEFAULT_TIMEOUT",
    "MAX_EXTRACT_BYTES",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "SPLIT_EXTENSIONS",
    "DatasetCounts",
    "DatasetFiles",
    "UnsafeArchiveError",
    "cache_root",
    "check_counts",
    "count_triples",
    "dataset_counts",
    "download_dataset",
    "download_file",
    "extract_archive",
    "find_split_files",
    "mirror_root",
    "resolve_dataset",
    "verify_mirror_checksums",
]

MIRROR_ENV = "HALE_TF_DATA_MIRROR"
OFFLINE_ENV = "HALE_TF_OFFLINE"
#: Accepted split file names, in order of preference.
SPLIT_EXTENSIONS: tuple[str, ...] = (".txt.gz", ".txt", ".tsv.gz", ".tsv")


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


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


def _warn_counts(files: DatasetFiles, info: DatasetInfo) -> None:
    problems = check_counts(files, info)
    if problems:
        warnings.warn(
            f"{files.directory}: counts differ from the registry entry: {'; '.join(problems)}",
            DatasetCountWarning,
            stacklevel=3,
        )


def _synthetic_in(directory: Path) -> dict[str, Path] | None:
    """The splits of a finished synthetic graph in ``directory`` (``synthetic.json`` is written last)."""
    found = find_split_files(directory) if directory.is_dir() else {}
    return found if len(found) == len(SPLITS) and (directory / "synthetic.json").is_file() else None


def _resolve_synthetic(data_dir, cache_dir, params: dict | None) -> DatasetFiles:
    p = SyntheticParams.from_dict(params)
    if data_dir is not None:
        files = _from_data_dir(data_dir, SYNTHETIC)
        if params:
            _warn_counts(files, p.info())
        return files
    root = cache_root(cache_dir)
    final = root / p.dirname
    found = _synthetic_in(final)
    if found:
        return _files(SYNTHETIC, final, found, "synthetic")
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tmp-synthetic-", dir=root))
    try:
        out = scratch / final.name
        generate_synthetic(out, p)
        # A concurrent process may have finished the same graph first; its copy is identical, keep it.
        if not _synthetic_in(final):
            replace_directory(out, final, scratch / "previous")
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
