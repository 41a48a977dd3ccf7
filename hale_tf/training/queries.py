"""Training queries in memory (CSR answers) and batch sampling entirely in TensorFlow.

A query is q = (h, r) with r ∈ R ∪ R⁻¹ (reciprocal ids r + R), its answers T_q stored in CSR form:
``answers[offsets[q]:offsets[q + 1]]`` (:class:`hale_tf.data.queries.Queries`, whose module builds them
from id triples). The trainer keeps these arrays as constant tensors and builds each batch inside the
compiled train step from a slice of an epoch permutation, so no Python or tf.data work happens per step
(the data pipeline cannot become the bottleneck) and the data position is a pure function of
(seed, epoch, batch index), which makes resuming exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf.data.queries import Queries, queries_from_triples
from hale_tf.losses.base import QueryBatch
from hale_tf.reciprocal import base_relation_count, relation_ids

__all__ = ["BatchSampler", "TrainQueries", "as_train_queries", "epoch_permutation"]


@dataclass(frozen=True)
class TrainQueries(Queries):
    """:class:`~hale_tf.data.queries.Queries` with the sizes of the model that trains on them.

    ``num_relations`` counts the relation ids the model embeds (2R with reciprocals).
    """

    num_entities: int
    num_relations: int

    def answer_counts(self) -> np.ndarray:
        """How often each entity is an answer, ``[num_entities]`` (for frequency-based negative sampling)."""
        return np.bincount(self.answers, minlength=self.num_entities)

    @classmethod
    def from_queries(cls, queries: Queries, *, num_entities: int, num_relations: int) -> TrainQueries:
        """``queries`` (e.g. :func:`hale_tf.data.records.load_query_set`'s) for a model of these sizes."""
        ids = (queries.heads, queries.relations, queries.answers)
        heads, relations, answers = (np.asarray(a).astype(np.int32, copy=False) for a in ids)  # fast gathers
        return cls(heads, relations, queries.offsets, answers, num_entities=num_entities,
                   num_relations=num_relations)

    @classmethod
    def from_triples(
        cls,
        triples: Any,
        *,
        num_relations: int,
        num_entities: int | None = None,
        add_reciprocals: bool = True,
    ) -> TrainQueries:
        """Group id triples ``[M, 3]`` (h, r, t) into queries sorted by (head, relation); with reciprocals
        (t, r + R, h) added.

        Args:
            num_relations: R, the number of base relations (the model embeds 2R with reciprocals).
            num_entities: |E| (default: 1 + the largest entity id).
        """
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        queries = queries_from_triples(triples, num_relations, reciprocals=add_reciprocals)
        if num_entities is None:
            num_entities = int(max(queries.heads.max(initial=-1), queries.answers.max(initial=-1)) + 1)
        return cls.from_queries(
            queries, num_entities=num_entities,
            num_relations=relation_ids(num_relations) if add_reciprocals else num_relations,
        )


def as_train_queries(data: Any, *, num_entities: int, num_relations: int) -> TrainQueries:
    """Coerce ``data`` to :class:`TrainQueries` for a model with these sizes.

    Accepts :class:`TrainQueries` (returned as is), :class:`~hale_tf.data.queries.Queries` (e.g. read by
    ``load_query_set``), or id triples ``[M, 3]`` (reciprocals added; ``num_relations`` is the model's
    count, 2R).
    """
    if isinstance(data, TrainQueries):
        return data
    if isinstance(data, Queries):
        return TrainQueries.from_queries(data, num_entities=num_entities, num_relations=num_relations)
    if isinstance(data, (np.ndarray, list, tuple)) or tf.is_tensor(data):
        return TrainQueries.from_triples(
            np.asarray(data), num_relations=base_relation_count(num_relations), num_entities=num_entities
        )
    raise TypeError(f"train queries must be TrainQueries, Queries or id triples [M, 3], not {type(data).__name__}")


def epoch_permutation(size: int, seed: int, epoch: int) -> tf.Tensor:
    """The order of the examples in ``epoch``: a stateless function of (seed, epoch), ``[size]`` int32."""
    keys = tf.random.stateless_uniform([size], seed=tf.constant([seed, epoch], tf.int64), dtype=tf.float32)
    return tf.cast(tf.argsort(keys, stable=True), tf.int32)


class BatchSampler:
    """Builds :class:`QueryBatch` es from example indices with TF ops only (graph- and replica-friendly).

    ``unit="queries"``: an example is a query, the batch carries all its answers.
    ``unit="triples"``: an example is one (query, answer) entry, i.e. a training triple.
    """

    def __init__(self, queries: TrainQueries, unit: str) -> None:
        if unit not in ("queries", "triples"):
            raise ValueError(f"unit must be 'queries' or 'triples', got {unit!r}")
        self.unit = unit
        self.queries = queries
        # int32 throughout: sizes here are far below 2^31 and int32 gathers are the fast path.
        self.heads = tf.constant(queries.heads, tf.int32)
        self.relations = tf.constant(queries.relations, tf.int32)
        self.answers = tf.constant(queries.answers, tf.int32)
        if unit == "queries":
            self.offsets = tf.constant(queries.offsets, tf.int32)
        else:
            self.answer_query = tf.constant(queries.answer_query(), tf.int32)

    @property
    def epoch_size(self) -> int:
        return self.queries.num_queries if self.unit == "queries" else self.queries.num_answers

    def batch(self, indices: tf.Tensor) -> QueryBatch:
        """The batch of the examples ``indices [b]``."""
        if self.unit == "triples":
            query = tf.gather(self.answer_query, indices)
            rows = tf.range(tf.shape(indices)[0], dtype=tf.int32)
            return QueryBatch(
                tf.gather(self.heads, query), tf.gather(self.relations, query), rows,
                tf.gather(self.answers, indices),
            )
        starts = tf.gather(self.offsets, indices)
        lengths = tf.gather(self.offsets, indices + 1) - starts
        rows = tf.repeat(tf.range(tf.shape(indices)[0], dtype=tf.int32), lengths)
        # Position of each answer within its query's run: its index minus the run's first index.
        first = tf.cumsum(lengths, exclusive=True)
        within = tf.range(tf.shape(rows)[0], dtype=tf.int32) - tf.gather(first, rows)
        ids = tf.gather(self.answers, tf.gather(starts, rows) + within)
        return QueryBatch(tf.gather(self.heads, indices), tf.gather(self.relations, indices), rows, ids)
