"""Datasets: registry of benchmarks, resolution to local files, strict triple I/O, synthetic graphs.

Typical use::

    from hale_tf import data

    files = data.resolve_dataset("wn18rr")              # mirror, cache or download
    train = data.read_triples(files.train)              # [(head, relation, tail), ...] as strings
    files = data.resolve_dataset("synthetic", synthetic_params={"preset": "yago3-10"})

All errors derive from :class:`HaleDataError` (a ``ValueError``) with a one-line message.
"""

from hale_tf.data.archive import extract_archive
from hale_tf.data.counts import check_counts, dataset_counts
from hale_tf.data.download import cache_root, download_dataset
from hale_tf.data.errors import (
    ChecksumError,
    CountMismatchError,
    DataFormatError,
    DatasetCountWarning,
    DatasetNotAvailableError,
    HaleDataError,
    UnknownDatasetError,
    UnsafeArchiveError,
)
from hale_tf.data.ids import IdSplits, load_id_splits
from hale_tf.data.raw import read_triples, sha256_file, write_triples
from hale_tf.data.registry import available, canonical_name, get_info
from hale_tf.data.resolve import find_split_files, resolve_dataset
from hale_tf.data.synthetic import SyntheticGraph, generate_synthetic, synthetic_graph, synthetic_info
from hale_tf.data.types import PRESETS as SYNTHETIC_PRESETS
from hale_tf.data.types import SPLITS, DatasetCounts, DatasetFiles, DatasetInfo, SyntheticParams

__all__ = [
    "SPLITS",
    "SYNTHETIC_PRESETS",
    "ChecksumError",
    "CountMismatchError",
    "DataFormatError",
    "DatasetCountWarning",
    "DatasetCounts",
    "DatasetFiles",
    "DatasetInfo",
    "DatasetNotAvailableError",
    "HaleDataError",
    "IdSplits",
    "SyntheticGraph",
    "SyntheticParams",
    "UnknownDatasetError",
    "load_id_splits",
    "UnsafeArchiveError",
    "available",
    "cache_root",
    "canonical_name",
    "check_counts",
    "dataset_counts",
    "download_dataset",
    "extract_archive",
    "find_split_files",
    "generate_synthetic",
    "get_info",
    "read_triples",
    "resolve_dataset",
    "sha256_file",
    "synthetic_graph",
    "synthetic_info",
    "write_triples",
]
