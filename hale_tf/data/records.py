"""TFRecord schema for training queries, and ``tf.data`` readers for it.

Schema (``RECORD_FORMAT = "hale_tf.query_block/v1"``)
-------------------------------------------------------
A *query* is ``(head, relation)`` with its answer set ``{tail : (head, relation, tail) in train}``;
``relation`` is a base id ``r`` in ``[0, R)`` for tail prediction or ``r + R`` (the reciprocal) for head
prediction, so a head query ``(?, r, t)`` is stored as ``(t, r + R)``.

Each ``tf.train.Example`` holds a **block** of up to a few hundred queries (not one query), because the
per-record cost of TFRecord framing, protobuf parsing and ``tf.data`` element handling dominates for
tiny records: blocks make files ~17x smaller and reading ~10x faster. Features (all ``int64_list``):

===================  =======================  ==================================================
feature              length                   meaning
===================  =======================  ==================================================
``heads``            n (queries in block)     head entity id of each query
``relations``        n                        relation id (``r`` or ``r + R``)
``answer_counts``    n                        number of answers of each query (>= 1)
``answers``          sum(answer_counts)       answer entity ids, query by query (CSR values),
                                              ascending within a query
===================  =======================  ==================================================

Readers use only ``tf.data`` / ``tf.io`` (no Beam), so the trainer can run anywhere TensorFlow runs:

* :func:`load_query_set` reads every query into memory as a :class:`QuerySet` (CSR answers), for
  samplers that draw query batches with TF ops;
* :func:`query_dataset` streams shuffled, batched, prefetched queries, shardable across input pipelines.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from hale_tf.data.errors import DatasetNotAvailableError, HaleDataError

if TYPE_CHECKING:
    import tensorflow as tf


def _tf() -> ModuleType:
    # TensorFlow is imported on first use only: encoding records (done in Beam workers) needs NumPy alone,
    # which saves every worker process the multi-second TensorFlow import.
    import tensorflow

    return tensorflow


__all__ = [
    "DEFAULT_QUERIES_PER_EXAMPLE",
    "FEATURE_KEYS",
    "RECORD_FORMAT",
    "QuerySet",
    "list_query_files",
    "load_query_set",
    "parse_query_blocks",
    "query_dataset",
    "encode_query_block",
    "serialize_query_block",
    "write_query_records",
]

RECORD_FORMAT = "hale_tf.query_block/v1"
DEFAULT_QUERIES_PER_EXAMPLE = 512
FEATURE_KEYS = ("heads", "relations", "answer_counts", "answers")


def _features() -> dict[str, tf.io.RaggedFeature]:
    tf = _tf()
    return {name: tf.io.RaggedFeature(dtype=tf.int64) for name in FEATURE_KEYS}


# --------------------------------------------------------------------------------------------------------
# Writing


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _packed_varints(values: np.ndarray) -> bytes:
    """Protobuf varint encoding of non-negative integers, vectorised (no per-value Python work)."""
    v = np.asarray(values)
    if v.size == 0:
        return b""
    if v.dtype.kind not in "iu" or (v.dtype.kind == "i" and int(v.min()) < 0):
        raise ValueError("query ids must be non-negative integers")
    v = v.astype(np.uint64)
    nbytes = np.ones(v.shape, np.int64)
    for k in range(1, 10):
        nbytes += v >= np.uint64(1 << (7 * k))
    width = int(nbytes.max())
    position = np.arange(width)
    groups = ((v[:, None] >> (position.astype(np.uint64) * np.uint64(7))) & np.uint64(0x7F)).astype(np.uint8)
    groups[position[None, :] < nbytes[:, None] - 1] |= 0x80  # continuation bit on all but the last byte
    return groups[position[None, :] < nbytes[:, None]].tobytes()


def _length_delimited(field_tag: bytes, payload: bytes) -> bytes:
    return field_tag + _varint(len(payload)) + payload


def encode_query_block(
    heads: np.ndarray, relations: np.ndarray, answer_counts: np.ndarray, answers: np.ndarray
) -> bytes:
    """Serialise one block of queries as a ``tf.train.Example`` without TensorFlow.

    The bytes equal ``tf.train.Example(...).SerializeToString(deterministic=True)`` (map entries sorted by
    key; tested), so files are identical whichever process or runner writes them, and Beam workers
    need not import TensorFlow to write query records.
    """
    if not (len(heads) == len(relations) == len(answer_counts)):
        raise ValueError("heads, relations and answer_counts must have equal lengths")
    if int(np.sum(answer_counts)) != len(answers):
        raise ValueError("sum(answer_counts) must equal len(answers)")
    columns = {"answer_counts": answer_counts, "answers": answers, "heads": heads, "relations": relations}
    features = b""
    for key in sorted(columns):  # deterministic protobuf map order
        packed = _packed_varints(columns[key])
        int64_list = _length_delimited(b"\x0a", packed) if packed else b""  # Int64List.value = 1 (packed)
        feature = _length_delimited(b"\x1a", int64_list)  # Feature.int64_list = 3
        entry = _length_delimited(b"\x0a", key.encode()) + _length_delimited(b"\x12", feature)
        features += _length_delimited(b"\x0a", entry)  # Features.feature = 1 (map entry)
    return _length_delimited(b"\x0a", features)  # Example.features = 1


def serialize_query_block(
    heads: np.ndarray, relations: np.ndarray, answer_counts: np.ndarray, answers: np.ndarray
) -> bytes:
    """Alias of :func:`encode_query_block` (kept for readability at call sites that think in protos)."""
    return encode_query_block(heads, relations, answer_counts, answers)


def write_query_records(
    path: str | os.PathLike[str],
    heads: np.ndarray,
    relations: np.ndarray,
    row_splits: np.ndarray,
    values: np.ndarray,
    *,
    queries_per_example: int = DEFAULT_QUERIES_PER_EXAMPLE,
) -> int:
    """Write queries (CSR answers) to one TFRecord file, in order, ``queries_per_example`` per record.

    The file is written under a temporary name and renamed, so the final name never holds a partial file.
    Returns the number of records written.
    """
    tf = _tf()
    if queries_per_example < 1:
        raise ValueError("queries_per_example must be >= 1")
    heads = np.asarray(heads)
    row_splits = np.asarray(row_splits, np.int64)
    counts = np.diff(row_splits)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    records = 0
    with tf.io.TFRecordWriter(tmp) as writer:
        for start in range(0, len(heads), queries_per_example):
            stop = min(start + queries_per_example, len(heads))
            writer.write(
                encode_query_block(
                    heads[start:stop],
                    relations[start:stop],
                    counts[start:stop],
                    values[row_splits[start] : row_splits[stop]],
                )
            )
            records += 1
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return records


# --------------------------------------------------------------------------------------------------------
# Reading


def list_query_files(file_pattern: str | Sequence[str]) -> list[str]:
    """Files matching a glob pattern (or a list of patterns), sorted so every reader sees the same order."""
    tf = _tf()
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else list(file_pattern)
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(os.fspath(p))})
    if not files:
        raise DatasetNotAvailableError(f"{file_pattern}: no query TFRecord files match")
    return files


def parse_query_blocks(serialized: tf.Tensor) -> dict[str, tf.Tensor | tf.RaggedTensor]:
    """Parse a batch of serialised blocks into flat per-query tensors.

    Returns ``heads``/``relations`` int32 ``[q]`` and ``answers`` an int32 ``RaggedTensor [q, None]``
    over all queries of the blocks, in order. Inconsistent blocks fail a TF assertion.
    """
    tf = _tf()
    parsed = tf.io.parse_example(serialized, _features())
    heads, relations, counts, answers = (
        parsed[k] for k in ("heads", "relations", "answer_counts", "answers")
    )
    lengths = {k: tf.cast(v.row_lengths(), tf.int64) for k, v in parsed.items()}
    checks = [
        tf.debugging.assert_equal(lengths["heads"], lengths["relations"], "heads/relations lengths"),
        tf.debugging.assert_equal(lengths["heads"], lengths["answer_counts"], "heads/answer_counts lengths"),
        tf.debugging.assert_equal(
            tf.reduce_sum(counts, axis=1), lengths["answers"], "sum(answer_counts) != len(answers)"
        ),
        tf.debugging.assert_positive(counts.flat_values, "answer_counts must be >= 1"),
    ]
    with tf.control_dependencies(checks):
        flat_counts = tf.identity(counts.flat_values)
    return {
        "heads": tf.cast(heads.flat_values, tf.int32),
        "relations": tf.cast(relations.flat_values, tf.int32),
        "answers": tf.RaggedTensor.from_row_lengths(
            tf.cast(answers.flat_values, tf.int32), flat_counts, validate=False
        ),
    }


@dataclass(frozen=True)
class QuerySet:
    """All queries of a split in memory, answers in CSR form.

    Attributes:
        heads: int32 ``[Q]`` head entity ids.
        relations: int32 ``[Q]`` relation ids (``r + R`` for reciprocal/head-prediction queries).
        row_splits: int64 ``[Q + 1]``; answers of query ``i`` are ``values[row_splits[i]:row_splits[i+1]]``.
        values: int32 ``[sum of answer counts]`` answer entity ids.
    """

    heads: tf.Tensor
    relations: tf.Tensor
    row_splits: tf.Tensor
    values: tf.Tensor

    @property
    def answers(self) -> tf.RaggedTensor:
        """Answers as an int32 ``RaggedTensor [Q, None]`` (shares the CSR tensors)."""
        return _tf().RaggedTensor.from_row_splits(self.values, self.row_splits, validate=False)

    @property
    def answer_counts(self) -> tf.Tensor:
        """int64 ``[Q]`` number of answers per query."""
        return self.row_splits[1:] - self.row_splits[:-1]

    @property
    def num_queries(self) -> int:
        return int(self.heads.shape[0])

    @property
    def num_answers(self) -> int:
        return int(self.values.shape[0])

    def numpy(self) -> dict[str, np.ndarray]:
        """The four CSR arrays as NumPy arrays (for tests and statistics)."""
        return {
            "heads": self.heads.numpy(),
            "relations": self.relations.numpy(),
            "row_splits": self.row_splits.numpy(),
            "values": self.values.numpy(),
        }


def load_query_set(file_pattern: str | Sequence[str], *, read_batch: int = 256) -> QuerySet:
    """Read every query of the matching TFRecord files (sorted by name) into a :class:`QuerySet`.

    Query order is file order then record order, so the result is deterministic for given files.

    Raises:
        DatasetNotAvailableError: no file matches.
        HaleDataError: a file is corrupt or violates the schema.
    """
    tf = _tf()
    files = list_query_files(file_pattern)
    ds = tf.data.TFRecordDataset(files).batch(read_batch).map(parse_query_blocks)
    heads, relations, counts, values = [], [], [], []
    try:
        for block in ds:
            heads.append(block["heads"].numpy())
            relations.append(block["relations"].numpy())
            counts.append(block["answers"].row_lengths().numpy())
            values.append(block["answers"].flat_values.numpy())
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
        first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
        raise HaleDataError(f"{file_pattern}: corrupt query records ({first})") from None

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros([0], dtype)

    row_splits = np.zeros([sum(len(c) for c in counts) + 1], np.int64)
    np.cumsum(cat(counts, np.int64), out=row_splits[1:])
    return QuerySet(
        heads=tf.constant(cat(heads, np.int32)),
        relations=tf.constant(cat(relations, np.int32)),
        row_splits=tf.constant(row_splits),
        values=tf.constant(cat(values, np.int32)),
    )


def query_dataset(
    file_pattern: str | Sequence[str],
    batch_size: int,
    shuffle_seed: int | None = None,
    *,
    shuffle_buffer: int = 65_536,
    repeat: bool = False,
    drop_remainder: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    read_batch: int = 16,
) -> tf.data.Dataset:
    """Stream batches ``{"heads": int32 [B], "relations": int32 [B], "answers": int32 ragged [B, None]}``.

    Args:
        file_pattern: Glob (or list of globs) of query TFRecord files.
        batch_size: Queries per batch *of this pipeline*; with ``tf.distribute`` pass the per-replica
            size (``input_context.get_per_replica_batch_size(global_batch)``).
        shuffle_seed: ``None`` for file order (no shuffling); an int shuffles files and queries
            reproducibly, with a new order each epoch.
        shuffle_buffer: Queries held by the shuffle buffer.
        repeat: Repeat indefinitely (epochs stay separated: each query once per epoch).
        drop_remainder: Drop a final partial batch (static batch shape).
        input_context: From ``strategy.distribute_datasets_from_function``; overrides ``num_shards`` and
            ``shard_index`` with its input-pipeline count and id.
        num_shards, shard_index: Read only this pipeline's share. Whole files are sharded when there are
            at least as many files as shards (each file read once overall); otherwise records are
            sharded after reading.
        read_batch: Records parsed together (a parsing-efficiency knob only).
    """
    tf = _tf()
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if input_context is not None:
        num_shards, shard_index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} must be in [0, {num_shards})")
    files = list_query_files(file_pattern)
    shuffle = shuffle_seed is not None

    ds = tf.data.Dataset.from_tensor_slices(files)
    by_file = len(files) >= num_shards
    if num_shards > 1 and by_file:
        ds = ds.shard(num_shards, shard_index)
    if shuffle:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        # Unshuffled streams read files one after another (the documented file order); shuffled ones
        # read several files at once so the query shuffle buffer mixes shards.
        cycle_length=min(len(files), 4) if shuffle else 1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,  # reproducible for a seed
    )
    if num_shards > 1 and not by_file:
        ds = ds.shard(num_shards, shard_index)
    ds = ds.batch(read_batch).map(parse_query_blocks, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.ragged_batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
