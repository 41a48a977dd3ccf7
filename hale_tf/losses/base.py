"""What every loss shares: the query-batch format, the loss output, the base class and the registry.

Batch format (COO, graph-friendly): a batch of B queries q_b = (h_b, r_b) with all their known answers,

- ``heads [B]``, ``relations [B]`` (relation ids include reciprocals: r + R answers head queries),
- ``answer_rows [K]`` (the query index b of each answer, non-decreasing),
- ``answer_ids [K]`` (the answer entity of each).

A batch of *triples* is the special case of one answer per query (``answer_rows = 0..B-1``), which is how
the triple-based baselines (negative sampling, 1-vs-all softmax) are fed, so that every method runs in one
harness. A loss says which unit it wants to be sampled by with :attr:`KGELoss.batch_unit`.

A loss returns a :class:`LossOutput` of *per-example* values (an example is a query or an answer,
whichever the loss averages over) so that a distributed trainer can normalise by the global number of
examples: loss = Σ_replicas Σ_examples ℓ / Σ_replicas n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np
import tensorflow as tf

from hale_tf.registry import Registry

__all__ = ["KGELoss", "LossOutput", "QueryBatch", "available", "get", "register"]

# Stand-in for −∞ in masked logits: finite, so a fully masked row gives a finite log-sum-exp and zero
# (not NaN) gradients, yet exp(MASK_VALUE − anything reasonable) is exactly 0 in float32.
MASK_VALUE = -1e30

BATCH_UNITS = ("queries", "triples")


class QueryBatch(NamedTuple):
    """A batch of queries with all their answers in COO form (see the module docstring)."""

    heads: tf.Tensor
    relations: tf.Tensor
    answer_rows: tf.Tensor
    answer_ids: tf.Tensor

    @classmethod
    def from_triples(cls, triples: Any) -> QueryBatch:
        """One query per triple ``[B, 3]`` (h, r, t): ``answer_rows = 0..B-1``, ``answer_ids = t``."""
        triples = tf.cast(tf.convert_to_tensor(triples), tf.int32)
        rows = tf.range(tf.shape(triples)[0], dtype=tf.int32)
        return cls(triples[:, 0], triples[:, 1], rows, triples[:, 2])

    @classmethod
    def from_lists(cls, queries: list[tuple[int, int, list[int]]]) -> QueryBatch:
        """Build from Python ``[(h, r, [t1, t2, …]), …]`` (tests and notebooks)."""
        rows = [b for b, (_, _, ts) in enumerate(queries) for _ in ts]
        ids = [t for _, _, ts in queries for t in ts]
        return cls(
            tf.constant([q[0] for q in queries], tf.int32), tf.constant([q[1] for q in queries], tf.int32),
            tf.constant(rows, tf.int32), tf.constant(ids, tf.int32),
        )


class LossOutput(NamedTuple):
    """Per-example loss and unweighted terms (each ``[n]``, the same examples), for logging.

    ``per_example`` is what is minimised (its mean over all examples of the global batch); ``terms``
    maps a name (e.g. ``alignment``, ``uniformity``) to the per-example value of that term.
    """

    per_example: tf.Tensor
    terms: dict[str, tf.Tensor]

    @property
    def loss(self) -> tf.Tensor:
        """Mean loss over the examples of this batch (single-device use)."""
        return tf.reduce_mean(self.per_example)

    def mean_terms(self) -> dict[str, tf.Tensor]:
        return {name: tf.reduce_mean(value) for name, value in self.terms.items()}


class KGELoss:
    """Base class of the loss family: callable ``loss(model, batch, seed=…) -> LossOutput``.

    Subclasses set :attr:`name`, implement :meth:`compute` and :meth:`get_config` (every constructor
    argument, so ``type(loss)(**config)`` rebuilds it). ``seed`` is a shape-[2] int tensor for stateless
    sampling; the trainer derives it from (run seed, step) so a resumed run draws the same negatives.
    """

    name: ClassVar[str] = ""
    #: "queries" (sample query batches, all answers) or "triples" (one answer per query row).
    batch_unit: str = "queries"

    def __call__(self, model: Any, batch: QueryBatch, *, seed: Any = None) -> LossOutput:
        batch = QueryBatch(*(tf.cast(x, tf.int32) for x in batch))
        if seed is None:
            seed = tf.constant([0, 0], tf.int32)
        return self.compute(model, batch, tf.cast(seed, tf.int32))

    def compute(self, model: Any, batch: QueryBatch, seed: tf.Tensor) -> LossOutput:
        raise NotImplementedError

    def prepare(self, *, num_entities: int, answer_counts: np.ndarray | None = None) -> None:
        """Hook called by the trainer before the first step with dataset statistics.

        ``answer_counts[e]`` is how often entity e is an answer in the training queries (used by
        frequency-based negative sampling). The default does nothing.
        """

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "batch_unit": self.batch_unit}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KGELoss:
        config = dict(config)
        config.pop("name", None)
        return cls(**config)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


def _check_unit(unit: str) -> str:
    if unit not in BATCH_UNITS:
        raise ValueError(f"batch_unit must be one of {BATCH_UNITS}, got {unit!r}")
    return unit


# -- registry -----------------------------------------------------------------------------------------
#: Every registered loss (a class or a function returning a loss).
LOSSES: Registry[Callable[..., KGELoss]] = Registry("loss")


def register(name: str, factory: Callable[..., KGELoss] | None = None) -> Any:
    """Register ``factory`` (a class or a function returning a loss) under ``name``; usable as decorator."""
    return LOSSES.register(name, factory)


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return LOSSES.available()


def get(name: str | Mapping[str, Any] | KGELoss, **config: Any) -> KGELoss:
    """Build a loss by registry name with ``config``; a config dict (with ``name``) or a loss passes too.

    ``get(loss.get_config())`` rebuilds an equal loss.
    """
    if isinstance(name, KGELoss):
        if config:
            raise ValueError("pass either a loss object or a name with config, not both")
        return name
    if isinstance(name, Mapping):
        config = {**{k: v for k, v in name.items() if k != "name"}, **config}
        name = name["name"]
    return LOSSES.build(str(name), **config)


# -- helpers shared by the losses -----------------------------------------------------------------------
def segment_mean(values: tf.Tensor, rows: tf.Tensor, num_rows: tf.Tensor) -> tf.Tensor:
    """Mean of ``values [K]`` per row id (rows without entries get 0)."""
    sums = tf.math.unsorted_segment_sum(values, rows, num_rows)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(values), rows, num_rows)
    return sums / tf.maximum(counts, 1.0)


def cubed_norms(vectors: tf.Tensor) -> tf.Tensor:
    """‖e‖₃³ = Σ_i |e_i|³ over the last axis: the N3 regulariser's term (Lacroix et al. 2018)."""
    return tf.reduce_sum(tf.abs(vectors) ** 3, axis=-1)


def logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """log(exp a + exp b), stable: max + log1p(exp(−|a − b|))."""
    return tf.maximum(a, b) + tf.math.softplus(-tf.abs(a - b))


def sample_entities(
    shape: Any, num_entities: int, seed: tf.Tensor, log_weights: tf.Tensor | None = None
) -> tf.Tensor:
    """Stateless entity sample of ``shape``: uniform, or ∝ exp(log_weights) (frequency-based)."""
    if log_weights is None:
        return tf.random.stateless_uniform(shape, seed, minval=0, maxval=num_entities, dtype=tf.int32)
    total = tf.reduce_prod(shape)
    draws = tf.random.stateless_categorical(log_weights[tf.newaxis, :], total, seed, dtype=tf.int32)
    return tf.reshape(draws, shape)


def frequency_log_weights(answer_counts: np.ndarray, power: float) -> np.ndarray:
    """log(count^power), with unseen entities given count 1 so every entity can still be drawn."""
    counts = np.maximum(np.asarray(answer_counts, np.float64), 1.0)
    return (power * np.log(counts)).astype(np.float32)
