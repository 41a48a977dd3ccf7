"""Training queries (CSR), the in-graph batch sampler and the epoch permutation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf.training import BatchSampler, TrainQueries, as_train_queries, epoch_permutation

TRIPLES = np.array([[0, 0, 1], [0, 0, 2], [3, 1, 1], [2, 0, 1], [0, 0, 2]])  # one duplicate


def test_from_triples_groups_queries_with_reciprocals() -> None:
    q = TrainQueries.from_triples(TRIPLES, num_relations=2, num_entities=5)
    got = {
        (int(h), int(r)): sorted(q.answers[q.offsets[i]:q.offsets[i + 1]].tolist())
        for i, (h, r) in enumerate(zip(q.heads, q.relations, strict=True))
    }
    assert got == {(0, 0): [1, 2], (3, 1): [1], (2, 0): [1], (1, 2): [0, 2], (2, 2): [0], (1, 3): [3]}
    assert q.num_relations == 4 and q.num_answers == 8  # the duplicate counted once, reciprocals added
    np.testing.assert_array_equal(q.answer_counts(), [2, 3, 2, 1, 0])


def test_query_set_adapter_accepts_row_splits_values() -> None:
    class QS:  # the shape of hale_tf.data.records.QuerySet
        heads = tf.constant([0, 4], tf.int32)
        relations = tf.constant([1, 3], tf.int32)
        row_splits = tf.constant([0, 2, 3], tf.int64)
        values = tf.constant([5, 6, 7], tf.int32)

    q = as_train_queries(QS(), num_entities=8, num_relations=4)
    np.testing.assert_array_equal(q.offsets, [0, 2, 3])
    np.testing.assert_array_equal(q.answers, [5, 6, 7])
    with pytest.raises(ValueError, match="offsets"):
        TrainQueries(np.zeros(1, np.int32), np.zeros(1, np.int32), np.array([0, 0]), np.zeros(0, np.int32), 1, 1)


@pytest.mark.parametrize("unit", ["queries", "triples"])
def test_sampler_batches_match_numpy(unit: str) -> None:
    q = TrainQueries.from_triples(TRIPLES, num_relations=2, num_entities=5)
    sampler = BatchSampler(q, unit)
    indices = np.array([3, 0, 5]) if unit == "queries" else np.array([7, 1, 4])
    batch = sampler.batch(tf.constant(indices, tf.int32))
    if unit == "queries":
        want_rows = np.repeat(np.arange(3), np.diff(q.offsets)[indices])
        want_ids = np.concatenate([q.answers[q.offsets[i]:q.offsets[i + 1]] for i in indices])
        np.testing.assert_array_equal(batch.heads.numpy(), q.heads[indices])
    else:
        query = q.answer_query()[indices]
        want_rows, want_ids = np.arange(3), q.answers[indices]
        np.testing.assert_array_equal(batch.heads.numpy(), q.heads[query])
        np.testing.assert_array_equal(batch.relations.numpy(), q.relations[query])
    np.testing.assert_array_equal(batch.answer_rows.numpy(), want_rows)
    np.testing.assert_array_equal(batch.answer_ids.numpy(), want_ids)


def test_epoch_permutation_is_a_function_of_seed_and_epoch() -> None:
    a = epoch_permutation(100, seed=1, epoch=3).numpy()
    assert sorted(a.tolist()) == list(range(100))
    np.testing.assert_array_equal(a, epoch_permutation(100, seed=1, epoch=3).numpy())
    assert not np.array_equal(a, epoch_permutation(100, seed=1, epoch=4).numpy())
    assert not np.array_equal(a, epoch_permutation(100, seed=2, epoch=3).numpy())
