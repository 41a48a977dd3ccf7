"""The query TFRecord schema: encoder vs TensorFlow, in-memory and streaming readers, sharding, errors."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hale_tf.data import DatasetNotAvailableError, HaleDataError, records
from hale_tf.data.records import (
    QuerySet,
    encode_query_block,
    load_query_set,
    query_dataset,
    write_query_records,
)


def _reference(heads, relations, counts, answers) -> bytes:
    def feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "heads": feature(heads),
                "relations": feature(relations),
                "answer_counts": feature(counts),
                "answers": feature(answers),
            }
        )
    )
    return example.SerializeToString(deterministic=True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**40),
            st.integers(0, 500),
            st.lists(st.integers(0, 2**62), min_size=1, max_size=5),
        ),
        max_size=8,
    )
)
def test_encoder_matches_tensorflow(queries) -> None:
    heads = np.array([q[0] for q in queries], np.int64)
    relations = np.array([q[1] for q in queries], np.int64)
    counts = np.array([len(q[2]) for q in queries], np.int64)
    answers = np.array([a for q in queries for a in q[2]], np.int64)
    assert encode_query_block(heads, relations, counts, answers) == _reference(
        heads, relations, counts, answers
    )


def test_encoder_rejects_bad_blocks() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        encode_query_block(np.array([1]), np.array([1, 2]), np.array([1]), np.array([3]))
    with pytest.raises(ValueError, match="sum"):
        encode_query_block(np.array([1]), np.array([1]), np.array([2]), np.array([3]))
    with pytest.raises(ValueError, match="non-negative"):
        encode_query_block(np.array([-1]), np.array([1]), np.array([1]), np.array([3]))


def _random_queries(rng: np.random.Generator, n: int, num_entities: int = 1000):
    heads = rng.integers(0, num_entities, n).astype(np.int32)
    relations = rng.integers(0, 20, n).astype(np.int32)
    counts = rng.integers(1, 6, n)
    row_splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = rng.integers(0, num_entities, int(row_splits[-1])).astype(np.int32)
    return heads, relations, row_splits, values


@pytest.fixture
def two_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    parts = [_random_queries(rng, 37), _random_queries(rng, 20)]
    for i, (h, r, rs, v) in enumerate(parts):
        write_query_records(tmp_path / f"q-{i}.tfrecord", h, r, rs, v, queries_per_example=8)
    write_query_records(tmp_path / "q-2.tfrecord", *_random_queries(rng, 0))  # an empty shard is valid
    heads = np.concatenate([p[0] for p in parts])
    relations = np.concatenate([p[1] for p in parts])
    answers = [p[3][p[2][i] : p[2][i + 1]].tolist() for p in parts for i in range(len(p[0]))]
    return str(tmp_path / "q-*.tfrecord"), heads, relations, answers


def test_load_query_set_round_trip(two_files) -> None:
    pattern, heads, relations, answers = two_files
    qs = load_query_set(pattern)
    assert isinstance(qs, QuerySet) and qs.num_queries == 57
    assert qs.heads.dtype == tf.int32 and qs.relations.dtype == tf.int32 and qs.values.dtype == tf.int32
    assert qs.row_splits.dtype == tf.int64
    np.testing.assert_array_equal(qs.heads.numpy(), heads)  # file order, then record order
    np.testing.assert_array_equal(qs.relations.numpy(), relations)
    assert qs.answers.to_list() == answers
    assert qs.num_answers == sum(len(a) for a in answers)
    assert qs.answer_counts.numpy().tolist() == [len(a) for a in answers]


def _collect(ds: tf.data.Dataset) -> list[tuple[int, int, tuple[int, ...]]]:
    out = []
    for batch in ds:
        for h, r, a in zip(
            batch["heads"].numpy(), batch["relations"].numpy(), batch["answers"].to_list(), strict=True
        ):
            out.append((int(h), int(r), tuple(a)))
    return out


def test_query_dataset_epoch_and_shuffle(two_files) -> None:
    pattern, heads, relations, answers = two_files
    expected = [(int(h), int(r), tuple(a)) for h, r, a in zip(heads, relations, answers, strict=True)]
    assert _collect(query_dataset(pattern, batch_size=10)) == expected  # unshuffled: file order
    shuffled = _collect(query_dataset(pattern, batch_size=10, shuffle_seed=3))
    assert sorted(shuffled) == sorted(expected) and shuffled != expected
    assert _collect(query_dataset(pattern, batch_size=10, shuffle_seed=3)) == shuffled  # reproducible
    stream = query_dataset(pattern, batch_size=16, shuffle_seed=1, repeat=True, drop_remainder=True)
    batches = list(stream.take(7))
    assert all(b["heads"].shape == [16] and isinstance(b["answers"], tf.RaggedTensor) for b in batches)
    heads_seen = np.concatenate([b["heads"].numpy() for b in batches])
    # Epochs stay separated under repeat: the first 57 queries are exactly one epoch.
    assert sorted(heads_seen[:57].tolist()) == sorted(heads.tolist())


def test_query_dataset_sharding(two_files) -> None:
    pattern, heads, *_ = two_files
    for num_shards in (2, 4):  # 3 files: whole files for 2 shards, records for 4
        seen = []
        for index in range(num_shards):
            if index == 1:  # the tf.distribute way of asking for the same shard
                context = tf.distribute.InputContext(num_input_pipelines=num_shards, input_pipeline_id=1)
                ds = query_dataset(pattern, batch_size=7, input_context=context)
            else:
                ds = query_dataset(pattern, batch_size=7, num_shards=num_shards, shard_index=index)
            seen += _collect(ds)
        assert len(seen) == 57 and sorted(h for h, _, _ in seen) == sorted(heads.tolist())
    with pytest.raises(ValueError, match="shard_index"):
        query_dataset(pattern, batch_size=7, num_shards=2, shard_index=2)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotAvailableError, match="no query TFRecord files match"):
        load_query_set(str(tmp_path / "none-*.tfrecord"))
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(b"definitely not a tfrecord file")
    with pytest.raises(HaleDataError, match="corrupt query records"):
        load_query_set(str(bad))
    inconsistent = tmp_path / "inconsistent.tfrecord"
    with tf.io.TFRecordWriter(str(inconsistent)) as writer:  # answer_counts do not sum to len(answers)
        writer.write(_reference([1], [2], [3], [4]))
    with pytest.raises(HaleDataError, match="corrupt query records"):
        load_query_set(str(inconsistent))


def test_records_module_layering() -> None:
    """hale_tf must not import Beam or components (DESIGN.md), and writing must not need TensorFlow."""
    tree = ast.parse(Path(records.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"apache_beam", "components", "pipelines"}
    top_level = [n for n in tree.body if isinstance(n, ast.Import)]
    assert all(alias.name != "tensorflow" for node in top_level for alias in node.names)
