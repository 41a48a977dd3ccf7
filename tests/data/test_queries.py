"""The one query builder (hale_tf.data.queries): reciprocal rows, grouping, the seeded order and shards."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from hale_tf.data import queries as q

TRIPLES = np.array([[0, 0, 1], [0, 0, 2], [3, 1, 1], [2, 0, 1], [0, 0, 2]], np.int32)  # one duplicate


def _as_dict(queries: q.Queries) -> dict[tuple[int, int], list[int]]:
    return {(int(h), int(r)): queries.answers[queries.offsets[i] : queries.offsets[i + 1]].tolist()
            for i, (h, r) in enumerate(zip(queries.heads, queries.relations, strict=True))}


def test_grouping_with_reciprocals() -> None:
    built = q.queries_from_triples(TRIPLES, 2)
    assert _as_dict(built) == {(0, 0): [1, 2], (2, 0): [1], (3, 1): [1], (1, 2): [0, 2], (2, 2): [0], (1, 3): [3]}
    assert [(int(h), int(r)) for h, r in zip(built.heads, built.relations, strict=True)] == sorted(_as_dict(built))
    assert built.num_answers == 8 and built.answers_per_query().tolist() == [2, 2, 1, 1, 1, 1]
    np.testing.assert_array_equal(built.answer_query(), [0, 0, 1, 1, 2, 3, 4, 5])
    assert _as_dict(q.queries_from_triples(TRIPLES, 2, reciprocals=False)) == {(0, 0): [1, 2], (2, 0): [1],
                                                                               (3, 1): [1]}


def test_seeded_order_is_a_shuffle_of_the_same_queries() -> None:
    rng = np.random.default_rng(0)
    triples = np.stack([rng.integers(0, 50, 300), rng.integers(0, 4, 300), rng.integers(0, 50, 300)], 1)
    plain = q.queries_from_triples(triples, 4)
    orders = {seed: q.queries_from_triples(triples, 4, seed=seed) for seed in (0, 1)}
    for seeded in orders.values():
        assert _as_dict(seeded) == _as_dict(plain)  # same queries, answers ascending
        keys = q.query_hash(seeded.heads, seeded.relations, 0 if seeded is orders[0] else 1, q.ORDER_SALT)
        assert np.all(keys[1:] > keys[:-1])  # ordered by the seeded hash
    assert not np.array_equal(orders[0].heads, orders[1].heads)
    shards = q.shard_of(plain.heads, plain.relations, 7, 5)
    assert shards.min() >= 0 and shards.max() < 5 and len(set(shards.tolist())) == 5
    np.testing.assert_array_equal(shards, q.shard_of(plain.heads, plain.relations, 7, 5))


def test_queries_validation_and_slices() -> None:
    built = q.queries_from_triples(TRIPLES, 2)
    block = built.slice(3, 5)  # queries (2, 0) and (2, 2) of the (h, r) order
    assert _as_dict(block) == {(2, 0): [1], (2, 2): [0]} and block.offsets.tolist() == [0, 1, 2]
    assert q.group_queries(np.zeros([0, 3], np.int32)).num_queries == 0
    with pytest.raises(ValueError, match="every query an answer"):
        q.Queries(np.array([1, 2]), np.array([0, 0]), np.array([0, 1, 1]), np.array([3]))


def test_builder_needs_numpy_only() -> None:
    """Beam workers build queries without importing TensorFlow (seconds per worker process)."""
    tree = ast.parse(Path(q.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "dataclasses", "typing", "numpy", "hale_tf.reciprocal"}
