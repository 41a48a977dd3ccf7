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

This module is the only one that knows the feature keys: in memory, queries are a
:class:`hale_tf.data.queries.Queries` (``heads``, ``relations``, ``offsets``, ``answers``; the on-disk
``answer_counts`` is ``diff(offsets)``). Files are written by :func:`write_query_records` (the one
TFRecord writer of queries, used by Transform; NumPy and ``crcmod`` only, no TensorFlow, so Beam workers
skip the TensorFlow import) and read with ``tf.data`` / ``tf.io`` only (no Beam):

* :func:`load_query_set` reads every query into memory as :class:`~hale_tf.data.queries.Queries`;
* :func:`query_dataset` streams shuffled, batched, prefetched queries, shardable across input pipelines.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import crcmod.predefined
import numpy as np

from hale_tf.atomic import atomic_open
from hale_tf.data.errors import DatasetNotAvailableError, HaleDataError
from hale_tf.data.queries import Queries

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
    "list_query_files",
    "load_query_set",
    "parse_query_blocks",
    "query_dataset",
    "encode_query_block",
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


def encode_query_block(block: Queries) -> bytes:
    """Serialise one block of queries as a ``tf.train.Example`` without TensorFlow.

    The bytes equal ``tf.train.Example(...).SerializeToString(deterministic=True)`` (map entries sorted by
    key; tested), so files are identical whichever process or runner writes them.
    """
    columns = {
        "answer_counts": block.answers_per_query(),
        "answers": block.answers,
        "heads": block.heads,
        "relations": block.relations,
    }
    features = b""
    for key in sorted(columns):  # deterministic protobuf map order
        packed = _packed_varints(columns[key])
        int64_list = _length_delimited(b"\x0a", packed) if packed else b""  # Int64List.value = 1 (packed)
        feature = _length_delimited(b"\x1a", int64_list)  # Feature.int64_list = 3
        entry = _length_delimited(b"\x0a", key.encode()) + _length_delimited(b"\x12", feature)
        features += _length_delimited(b"\x0a", entry)  # Features.feature = 1 (map entry)
    return _length_delimited(b"\x0a", features)  # Example.features = 1


_crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")  # C implementation, a Beam[tfrecord] dependency


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC32C of ``data``, little-endian."""
    crc = _crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def write_query_records(
    path: str | os.PathLike[str], queries: Queries, *, queries_per_example: int = DEFAULT_QUERIES_PER_EXAMPLE
) -> int:
    """Write ``queries`` to one TFRecord file, in order, ``queries_per_example`` per record.

    TFRecord framing (length, masked CRC32C, data, masked CRC32C) is written here without TensorFlow; the
    file is written atomically (a retried Beam bundle never leaves half a file). No queries give an empty
    file, which is a valid shard. Returns the number of records written.
    """
    if queries_per_example < 1:
        raise ValueError("queries_per_example must be >= 1")
    records = 0
    with atomic_open(path, "wb") as f:
        for start in range(0, queries.num_queries, queries_per_example):
            data = encode_query_block(queries.slice(start, min(start + queries_per_example, queries.num_queries)))
            length = struct.pack("<Q", len(data))
            f.write(length + _masked_crc(length) + data + _masked_crc(data))
            records += 1
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


def load_query_set(file_pattern: str | Sequence[str], *, read_batch: int = 256) -> Queries:
    """Read every query of the matching TFRecord files (sorted by name) into :class:`Queries`.

    Query order is file order then record order, so the result is deterministic for given files.

    Raises:
        DatasetNotAvailableError: no file matches.
        HaleDataError: a file is corrupt or violates the schema.
    """
    tf = _tf()
    files = list_query_files(file_pattern)
    ds = tf.data.TFRecordDataset(files).batch(read_batch).map(parse_query_blocks)
    heads, relations, counts, answers = [], [], [], []
    try:
        for block in ds:
            heads.append(block["heads"].numpy())
            relations.append(block["relations"].numpy())
            counts.append(block["answers"].row_lengths().numpy())
            answers.append(block["answers"].flat_values.numpy())
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
        first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
        raise HaleDataError(f"{file_pattern}: corrupt query records ({first})") from None

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros([0], dtype)

    offsets = np.zeros([sum(len(c) for c in counts) + 1], np.int64)
    np.cumsum(cat(counts, np.int64), out=offsets[1:])
    return Queries(cat(heads, np.int32), cat(relations, np.int32), offsets, cat(answers, np.int32))


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
