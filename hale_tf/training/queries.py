"""Training queries in memory (CSR answers) and batch sampling entirely in TensorFlow.

A query is q = (h, r) with r ∈ R ∪ R⁻¹ (reciprocal ids r + R), its answers T_q stored in CSR form:
``answers[offsets[q]:offsets[q + 1]]``. The trainer keeps these arrays as constant tensors and builds each
batch inside the compiled train step from a slice of an epoch permutation, so no Python or tf.data work
happens per step (the data pipeline cannot become the bottleneck) and the data position is a pure
function of (seed, epoch, batch index), which makes resuming exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf.losses.base import QueryBatch

__all__ = ["BatchSampler", "TrainQueries", "as_train_queries", "epoch_permutation"]


@dataclass(frozen=True)
class TrainQueries:
    """Queries and their answers, CSR: query q has answers ``answers[offsets[q]:offsets[q+1]]``.

    ``num_relations`` counts the relation ids the model embeds (2R with reciprocals).
    """

    heads: np.ndarray
    relations: np.ndarray
    offsets: np.ndarray
    answers: np.ndarray
    num_entities: int
    num_relations: int

    def __post_init__(self) -> None:
        q = len(self.heads)
        if len(self.relations) != q or len(self.offsets) != q + 1:
            raise ValueError("heads, relations need one entry per query and offsets one more")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.answers) or np.any(np.diff(self.offsets) < 1):
            raise ValueError("offsets must start at 0, end at len(answers) and give every query an answer")

    @property
    def num_queries(self) -> int:
        return len(self.heads)

    @property
    def num_answers(self) -> int:
        """Number of (query, answer) pairs, i.e. training triples including reciprocals."""
        return len(self.answers)

    def answer_counts(self) -> np.ndarray:
        """How often each entity is an answer (for frequency-based negative sampling)."""
        return np.bincount(self.answers, minlength=self.num_entities)

    def answer_query(self) -> np.ndarray:
        """The query of each answer entry, ``[A]``."""
        return np.repeat(np.arange(self.num_queries, dtype=np.int32), np.diff(self.offsets))

    @classmethod
    def from_triples(
        cls,
        triples: Any,
        *,
        num_relations: int,
        num_entities: int | None = None,
        add_reciprocals: bool = True,
    ) -> TrainQueries:
        """Group id triples ``[M, 3]`` (h, r, t) into queries; with reciprocals (t, r + R, h) added.

        Args:
            num_relations: R, the number of base relations (the model embeds 2R with reciprocals).
            num_entities: |E| (default: 1 + the largest entity id).
        """
        t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        if add_reciprocals:
            t = np.concatenate([t, np.stack([t[:, 2], t[:, 1] + num_relations, t[:, 0]], axis=1)])
        t = np.unique(t, axis=0)  # sorted by (h, r, t): queries come out contiguous, duplicates dropped
        n = int(num_entities if num_entities is not None else t[:, [0, 2]].max() + 1)
        keys = t[:, 0] * (2 * num_relations + 1) + t[:, 1]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        offsets = np.r_[starts, len(t)].astype(np.int64)
        return cls(
            heads=t[starts, 0].astype(np.int32),
            relations=t[starts, 1].astype(np.int32),
            offsets=offsets,
            answers=t[:, 2].astype(np.int32),
            num_entities=n,
            num_relations=(2 if add_reciprocals else 1) * num_relations,
        )


def as_train_queries(data: Any, *, num_entities: int, num_relations: int) -> TrainQueries:
    """Coerce ``data`` to :class:`TrainQueries`.

    Accepts TrainQueries; an id-triple array ``[M, 3]`` (reciprocals added; ``num_relations`` is the
    model's count, 2R); or a query set object with ``heads``, ``relations`` and CSR answers (attributes
    ``answer_offsets``/``offsets``/``indptr`` and ``answer_ids``/``answers``/``indices``).
    """
    if isinstance(data, TrainQueries):
        return data
    if isinstance(data, (np.ndarray, list, tuple)) or tf.is_tensor(data):
        if num_relations % 2:
            raise ValueError("triples need a model with 2R relation ids (reciprocals)")
        return TrainQueries.from_triples(
            np.asarray(data), num_relations=num_relations // 2, num_entities=num_entities
        )

    def pick(*names: str) -> np.ndarray:
        for name in names:
            if hasattr(data, name):
                return np.asarray(getattr(data, name))
        raise TypeError(f"{type(data).__name__} has none of the attributes {names}")

    return TrainQueries(
        heads=pick("heads").astype(np.int32),
        relations=pick("relations").astype(np.int32),
        offsets=pick("answer_offsets", "offsets", "indptr", "answer_splits", "row_splits").astype(np.int64),
        answers=pick("answer_ids", "answers", "indices", "values").astype(np.int32),
        num_entities=num_entities,
        num_relations=num_relations,
    )


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
