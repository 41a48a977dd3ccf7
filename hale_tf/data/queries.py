"""Id triples -> training queries with CSR answers: the one query builder (NumPy only).

A *query* is ``(head, relation)`` with its answer set ``{tail : (head, relation, tail) in train}``; a head
query ``(?, r, t)`` is stored as ``(t, r + R)`` (the reciprocal relation id, R = number of base
relations). Every in-memory holder of queries uses one set of names, those of :class:`Queries`:

=============  ==========  =========================================================================
name           shape       meaning
=============  ==========  =========================================================================
``heads``      int [Q]     head entity id of each query (int32 in memory, int64 on disk)
``relations``  int [Q]     relation id, ``r`` (tail query) or ``r + R`` (head query)
``offsets``    int64 [Q+1] answers of query q are ``answers[offsets[q]:offsets[q + 1]]``
``answers``    int [A]     answer entity ids, query by query, ascending within a query
=============  ==========  =========================================================================

Other forms of the same data, each confined to one place:

* on disk (``hale_tf.data.records``, the only module that knows the TFRecord feature keys): features
  ``heads``, ``relations``, ``answer_counts`` (= ``diff(offsets)``) and ``answers``;
* in a loss batch (``hale_tf.losses.QueryBatch``, COO): ``heads``, ``relations``, ``answer_rows`` (the
  query of each answer, :meth:`Queries.answer_query` restricted to the batch) and ``answer_ids``
  (= ``answers``).

Reciprocal rows come from :func:`hale_tf.reciprocal.both_directions` (tail queries, then head queries).

Query order. ``seed=None`` sorts queries by (head, relation) (the in-memory trainer's order);
an integer seed gives Transform's deterministic shuffle: queries sorted by a seeded 64-bit hash of
(head, relation), :func:`query_hash` with ``ORDER_SALT``. Transform also routes each query to a shard by
the same hash with ``SHARD_SALT`` (:func:`shard_of`), so its files are a function of the seed alone,
whatever the runner, worker count or chunking. Answers are always ascending and deduplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hale_tf.reciprocal import both_directions

__all__ = [
    "ORDER_SALT",
    "SHARD_SALT",
    "Queries",
    "group_queries",
    "queries_from_triples",
    "query_hash",
    "shard_of",
]

SHARD_SALT = 0  # salt of the hash that assigns a query to a shard
ORDER_SALT = 1  # salt of the hash that orders the queries inside a shard


@dataclass(frozen=True)
class Queries:
    """Queries and their answers in CSR form (the names are explained in the module docstring).

    ``offsets`` is stored as int64; the id arrays keep their integer dtype (int32 from Transform, the
    records and the trainer; the on-disk format holds int64). Construction checks that the lengths agree
    and that every query has at least one answer.
    """

    heads: np.ndarray
    relations: np.ndarray
    offsets: np.ndarray
    answers: np.ndarray

    def __post_init__(self) -> None:
        for name in ("heads", "relations", "answers"):
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        object.__setattr__(self, "offsets", np.asarray(self.offsets).astype(np.int64, copy=False))
        q = len(self.heads)
        if len(self.relations) != q or len(self.offsets) != q + 1:
            raise ValueError("heads, relations need one entry per query and offsets one more")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.answers) or np.any(np.diff(self.offsets) < 1):
            raise ValueError("offsets must start at 0, end at len(answers) and give every query an answer")

    @classmethod
    def empty(cls) -> Queries:
        """No queries (an empty shard)."""
        none = np.zeros([0], np.int32)
        return cls(none, none, np.zeros([1], np.int64), none)

    @property
    def num_queries(self) -> int:
        return len(self.heads)

    @property
    def num_answers(self) -> int:
        """Number of (query, answer) pairs, i.e. training triples including reciprocals."""
        return len(self.answers)

    def answers_per_query(self) -> np.ndarray:
        """int64 ``[Q]``: how many answers each query has (the on-disk ``answer_counts``)."""
        return np.diff(self.offsets)

    def answer_query(self) -> np.ndarray:
        """int32 ``[A]``: the query of each answer entry (a loss batch's ``answer_rows``)."""
        return np.repeat(np.arange(self.num_queries, dtype=np.int32), self.answers_per_query())

    def slice(self, start: int, stop: int) -> Queries:
        """Queries ``start:stop`` (offsets rebased to 0), e.g. one TFRecord block."""
        offsets = self.offsets[start : stop + 1]
        return Queries(self.heads[start:stop], self.relations[start:stop], offsets - offsets[0],
                       self.answers[offsets[0] : offsets[-1]])


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed, platform-independent 64-bit hash of uint64 values."""
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _query_keys(heads: np.ndarray, relations: np.ndarray) -> np.ndarray:
    """The unique 64-bit key of a query, ``head << 32 | relation`` (ids are below 2^32)."""
    return (np.asarray(heads).astype(np.uint64) << np.uint64(32)) | np.asarray(relations).astype(np.uint64)


def query_hash(heads: np.ndarray, relations: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """Seeded uint64 hash of each query (a bijection of its key for fixed ``seed`` and ``salt``)."""
    salt_value = _mix64(np.array([(seed * 2 + salt) & 0xFFFFFFFFFFFFFFFF], np.uint64))[0]
    return _mix64(_query_keys(heads, relations) ^ salt_value)


def shard_of(heads: np.ndarray, relations: np.ndarray, seed: int, num_shards: int) -> np.ndarray:
    """int64 shard index in ``[0, num_shards)`` of each query: all rows of a query go to one shard."""
    return (query_hash(heads, relations, seed, SHARD_SALT) % np.uint64(num_shards)).astype(np.int64)


def group_queries(rows: Any, seed: int | None = None) -> Queries:
    """Rows ``[n, 3]`` (query head, query relation, answer) -> :class:`Queries`, duplicates dropped.

    ``seed=None`` orders queries by (head, relation); an int orders them by ``query_hash(.., seed,
    ORDER_SALT)``. Either sort key is a bijection of the query key, so distinct queries never tie and
    sorting by (key, answer) keeps each query's rows together with ascending answers.
    """
    rows = np.asarray(rows).reshape(-1, 3)
    if len(rows) == 0:
        return Queries.empty()
    if seed is None:
        key = _query_keys(rows[:, 0], rows[:, 1])
    else:
        key = query_hash(rows[:, 0], rows[:, 1], seed, ORDER_SALT)
    order = np.lexsort((rows[:, 2], key))
    rows, key = rows[order], key[order]
    fresh = np.ones(len(rows), bool)
    fresh[1:] = (key[1:] != key[:-1]) | (rows[1:, 2] != rows[:-1, 2])  # duplicates give one answer
    rows, key = rows[fresh], key[fresh]
    starts = np.ones(len(rows), bool)
    starts[1:] = key[1:] != key[:-1]
    first = np.flatnonzero(starts)
    return Queries(rows[first, 0], rows[first, 1], np.append(first, len(rows)), rows[:, 2])


def queries_from_triples(
    triples: Any, num_relations: int, *, seed: int | None = None, reciprocals: bool = True
) -> Queries:
    """Id triples ``[M, 3]`` (h, r, t) -> :class:`Queries`: tail queries ``(h, r)`` and, with
    ``reciprocals``, head queries ``(t, r + R)`` for ``R = num_relations`` base relations."""
    rows = np.asarray(triples).reshape(-1, 3)
    return group_queries(both_directions(rows, num_relations) if reciprocals else rows, seed)
