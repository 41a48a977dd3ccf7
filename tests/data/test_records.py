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
from hale_tf.data.queries import Queries
from hale_tf.data.records import (
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
    block = Queries(heads, relations, np.concatenate([[0], np.cumsum(counts)]), answers)
    assert encode_query_block(block) == _reference(heads, relations, counts, answers)


def test_encoder_rejects_bad_blocks() -> None:
    with pytest.raises(ValueError, match="one entry per query"):
        Queries(np.array([1]), np.array([1, 2]), np.array([0, 1]), np.array([3]))
    with pytest.raises(ValueError, match="end at len"):
        Queries(np.array([1]), np.array([1]), np.array([0, 2]), np.array([3]))
    with pytest.raises(ValueError, match="non-negative"):
        encode_query_block(Queries(np.array([-1]), np.array([1]), np.array([0, 1]), np.array([3])))


def _random_queries(rng: np.random.Generator, n: int, num_entities: int = 1000) -> Queries:
    heads = rng.integers(0, num_entities, n).astype(np.int32)
    relations = rng.integers(0, 20, n).astype(np.int32)
    counts = rng.integers(1, 6, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    answers = rng.integers(0, num_entities, int(offsets[-1])).astype(np.int32)
    return Queries(heads, relations, offsets, answers)


def test_writer_frames_records_as_tensorflow_does(tmp_path: Path) -> None:
    """The TFRecord framing written without TensorFlow equals tf.io.TFRecordWriter's, byte for byte."""
    queries = _random_queries(np.random.default_rng(1), 11)
    assert write_query_records(tmp_path / "ours.tfrecord", queries, queries_per_example=4) == 3
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for start in range(0, 11, 4):
            writer.write(encode_query_block(queries.slice(start, min(start + 4, 11))))
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.tfrecord", "tf.tfrecord"]  # no temporary left
    with pytest.raises(ValueError, match="queries_per_example"):
        write_query_records(tmp_path / "x.tfrecord", queries, queries_per_example=0)


@pytest.fixture
def two_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    parts = [_random_queries(rng, 37), _random_queries(rng, 20)]
    for i, queries in enumerate(parts):
        write_query_records(tmp_path / f"q-{i}.tfrecord", queries, queries_per_example=8)
    write_query_records(tmp_path / "q-2.tfrecord", _random_queries(rng, 0))  # an empty shard is valid
    heads = np.concatenate([p.heads for p in parts])
    relations = np.concatenate([p.relations for p in parts])
    answers = [p.answers[p.offsets[i] : p.offsets[i + 1]].tolist() for p in parts for i in range(p.num_queries)]
    return str(tmp_path / "q-*.tfrecord"), heads, relations, answers


def test_load_query_set_round_trip(two_files) -> None:
    pattern, heads, relations, answers = two_files
    qs = load_query_set(pattern)
    assert isinstance(qs, Queries) and qs.num_queries == 57
    assert qs.heads.dtype == qs.relations.dtype == qs.answers.dtype == np.int32 and qs.offsets.dtype == np.int64
    np.testing.assert_array_equal(qs.heads, heads)  # file order, then record order
    np.testing.assert_array_equal(qs.relations, relations)
    assert [qs.answers[qs.offsets[i] : qs.offsets[i + 1]].tolist() for i in range(57)] == answers
    assert qs.num_answers == sum(len(a) for a in answers)
    assert qs.answers_per_query().tolist() == [len(a) for a in answers]


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
