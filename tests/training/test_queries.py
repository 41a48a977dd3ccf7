"""Training queries (CSR), the in-graph batch sampler and the epoch permutation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf.data.queries import Queries
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


def test_from_triples_orders_queries_by_head_and_relation() -> None:
    """The in-memory order (the trainer's epoch permutation indexes it): sorted (h, r, t), as np.unique."""
    rng = np.random.default_rng(0)
    triples = np.stack([rng.integers(0, 40, 500), rng.integers(0, 6, 500), rng.integers(0, 40, 500)], 1)
    q = TrainQueries.from_triples(triples, num_relations=6, num_entities=40)
    rows = np.unique(np.concatenate([triples, np.stack([triples[:, 2], triples[:, 1] + 6, triples[:, 0]], 1)]), axis=0)
    np.testing.assert_array_equal(np.repeat(q.heads, np.diff(q.offsets)), rows[:, 0])
    np.testing.assert_array_equal(np.repeat(q.relations, np.diff(q.offsets)), rows[:, 1])
    np.testing.assert_array_equal(q.answers, rows[:, 2])
    assert q.heads.dtype == q.relations.dtype == q.answers.dtype == np.int32 and q.offsets.dtype == np.int64


def test_as_train_queries_accepts_queries_and_triples_only() -> None:
    loaded = Queries(np.array([0, 4]), np.array([1, 3]), np.array([0, 2, 3]), np.array([5, 6, 7]))
    q = as_train_queries(loaded, num_entities=8, num_relations=4)
    assert isinstance(q, TrainQueries) and (q.num_entities, q.num_relations) == (8, 4)
    np.testing.assert_array_equal(q.offsets, [0, 2, 3])
    np.testing.assert_array_equal(q.answers, [5, 6, 7])
    assert as_train_queries(q, num_entities=8, num_relations=4) is q
    from_ids = as_train_queries(TRIPLES, num_entities=5, num_relations=4)
    np.testing.assert_array_equal(from_ids.answers, TrainQueries.from_triples(TRIPLES, num_relations=2).answers)

    class Aliased:  # the attribute names of the old adapters are no longer guessed
        heads, relations, row_splits, values = loaded.heads, loaded.relations, loaded.offsets, loaded.answers

    with pytest.raises(TypeError, match="TrainQueries, Queries or id triples"):
        as_train_queries(Aliased(), num_entities=8, num_relations=4)
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
