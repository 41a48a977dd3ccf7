"""The HaLE query-sampling contrastive loss: alignment + uniformity (METHOD.md §2, a reconstruction).

For a batch of queries q = (h, r) with known answers T_q, model scores s(q, e) (the model's hardness-aware
activation ψ is already inside s), temperature τ and weights λ_a, λ_u::

    L_align(q) = −(1/|T_q|) Σ_{t ∈ T_q} s(q, t)/τ
    L_unif(q)  =  log Σ_{e ∈ C(q)} exp(s(q, e)/τ)                            (unfiltered)
    L_unif(q)  =  (1/|T_q|) Σ_{t ∈ T_q} log[ exp(s(q, t)/τ) + Σ_{e ∈ C(q) \\ T_q} exp(s(q, e)/τ) ]   (filtered)
    L          =  mean_q [ λ_a L_align(q) + λ_u L_unif(q) ]

C(q), the candidate set, always contains the query's own answers (for ``all`` and ``in_batch`` they are
among the candidates already; for ``sampled`` alone they are added), so the loss is bounded below and with
λ_a = λ_u = 1, τ = 1, ψ = identity, one answer and ``all`` negatives it *is* softmax cross-entropy over
all entities. The filtered form removes the query's *other* answers (false negatives): each answer is
contrasted with the true negatives plus itself, and with one answer per query it equals the unfiltered form.

Negatives (``negatives=``):

- ``all``: every entity; by default through the fused all-entity kernel (positives scored on the answer
  pairs, the log-sum-exp over all N entities computed in cached chunks with an analytic gradient, the
  query's answers excluded when filtered), else one B × N score matrix from ``score_all``;
- ``in_batch``: the answers of every query of the global batch — under a distribution strategy they are
  gathered from all replicas with ``ReplicaContext.all_gather``, so the result equals the single-device
  computation on the whole batch; scored with ``score_entities`` (B × K, one matmul);
- ``sampled``: ``num_samples`` entities drawn uniformly or ∝ count^power (frequency), shared by the whole
  batch (one matmul), optionally plus the in-batch answers (``add_in_batch``).

Duplicated candidates (an entity that answers two queries of the batch) count with their multiplicity,
as in in-batch contrastive learning; filtering removes every copy of the query's own answers.

The head bias b_h is left out of s here (it is a constant per query, so rankings ignore it): the loss is
unchanged for λ_a = λ_u and b_h gets an exactly zero gradient. Note that λ_a ≠ λ_u makes the loss
unbounded below (a common shift c of all tail biases changes it by (λ_u − λ_a)·c/τ; for λ_u > λ_a, moving
everything apart lowers it without end), so unequal weights only make sense for short, budgeted runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf import activations
from hale_tf.losses.base import (
    MASK_VALUE,
    KGELoss,
    LossOutput,
    QueryBatch,
    cubed_norms,
    frequency_log_weights,
    logaddexp,
    register,
    sample_entities,
    segment_mean,
)

__all__ = ["HaLELoss"]

NEGATIVES = ("all", "in_batch", "sampled")
SAMPLING = ("uniform", "frequency")


@register("hale")
class HaLELoss(KGELoss):
    """Query-sampling alignment + uniformity loss (see the module docstring for the formulas).

    Defaults (``in_batch``, τ = 2, filtered) are the best of the WN18RR sweep in docs/training.md.

    Args:
        negatives: ``all``, ``in_batch`` or ``sampled``.
        temperature: τ > 0; smaller τ concentrates the uniformity gradient on hard (high-scoring) negatives.
        alignment_weight, uniformity_weight: λ_a, λ_u.
        filtered: remove the query's other known answers from its negatives.
        num_samples: k, entities sampled per batch for ``negatives="sampled"``.
        sampling: ``uniform`` or ``frequency`` (∝ answer count^frequency_power, needs :meth:`prepare`).
        frequency_power: exponent of the frequency distribution (0.75 as in word2vec).
        add_in_batch: with ``sampled``, also use the in-batch answers as negatives.
        cross_replica: gather in-batch answers across replicas (else each replica uses its own).
        n3_weight: λ₃ of the N3 regulariser (Lacroix et al. 2018) on the entity vectors of the batch,
            added per query as λ₃ (‖e_h‖₃³ + mean_{t ∈ T_q} ‖e_t‖₃³) and logged as the term ``n3``.
        answer_weight_power: weight each query's loss by |T_q|^power: 0 counts queries equally (HaLE's
            query sampling), 1 counts every training triple equally (as triple-based losses and the
            triple-weighted evaluation do).
        fused: with ``negatives="all"`` (or ``sampled`` without ``add_in_batch``), take the log-sum-exp
            from the fused kernel (:meth:`KGEModel.reduce_all_entities`: no B × M tensor, hand-written
            gradient); False scores the ``[B, M]`` matrix with autodiff (the reference).
        activation, activation_params: a hardness-aware ψ applied to δ in *this loss's logits only*,
            ℓ = (−ψ(δ) + b_e)/τ, while the model ranks by its own score (METHOD.md §2.1: the
            activation shapes what the softmax sees). ``identity`` (default) leaves the logits as the
            model scores them; a non-identity loss ψ needs a model whose own ψ is the identity.
    """

    name = "hale"
    batch_unit = "queries"

    def __init__(
        self,
        negatives: str = "in_batch",
        temperature: float = 2.0,
        alignment_weight: float = 1.0,
        uniformity_weight: float = 1.0,
        *,
        filtered: bool = True,
        num_samples: int = 0,
        sampling: str = "uniform",
        frequency_power: float = 0.75,
        add_in_batch: bool = False,
        cross_replica: bool = True,
        answer_weight_power: float = 0.0,
        n3_weight: float = 0.0,
        fused: bool = True,
        activation: str = "identity",
        activation_params: dict[str, float] | None = None,
        batch_unit: str = "queries",
    ) -> None:
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
        if negatives == "sampled" and num_samples < 1:
            raise ValueError("negatives='sampled' needs num_samples >= 1")
        if batch_unit != "queries":
            # Alignment averages over *all* answers of a query and filtering needs them: query batches only.
            raise ValueError("HaLELoss samples query batches (batch_unit='queries')")
        self.negatives = negatives
        self.temperature = float(temperature)
        self.alignment_weight = float(alignment_weight)
        self.uniformity_weight = float(uniformity_weight)
        self.filtered = bool(filtered)
        self.num_samples = int(num_samples)
        self.sampling = sampling
        self.frequency_power = float(frequency_power)
        self.add_in_batch = bool(add_in_batch)
        self.cross_replica = bool(cross_replica)
        self.answer_weight_power = float(answer_weight_power)
        if n3_weight < 0:
            raise ValueError(f"n3_weight must be >= 0, got {n3_weight}")
        self.n3_weight = float(n3_weight)
        self.fused = bool(fused)
        self.activation_name = str(activation)
        self.activation_params = dict(activation_params or {})
        psi = activations.get(self.activation_name, **self.activation_params)
        # None: the logits are the model's own scores (whatever ψ the model has).
        self._psi = None if psi.name == "identity" else psi
        self._log_weights: tf.Tensor | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "negatives": self.negatives,
            "temperature": self.temperature,
            "alignment_weight": self.alignment_weight,
            "uniformity_weight": self.uniformity_weight,
            "filtered": self.filtered,
            "num_samples": self.num_samples,
            "sampling": self.sampling,
            "frequency_power": self.frequency_power,
            "add_in_batch": self.add_in_batch,
            "cross_replica": self.cross_replica,
            "answer_weight_power": self.answer_weight_power,
            "n3_weight": self.n3_weight,
            "fused": self.fused,
            "activation": self.activation_name,
            "activation_params": dict(self.activation_params),
        }

    def prepare(self, *, num_entities: int, answer_counts: np.ndarray | None = None) -> None:
        if self.negatives == "sampled" and self.sampling == "frequency":
            if answer_counts is None:
                raise ValueError("frequency sampling needs answer_counts")
            self._log_weights = tf.constant(frequency_log_weights(answer_counts, self.frequency_power))

    # -- candidates --------------------------------------------------------------------------------------
    def _in_batch(self, answer_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The global batch's answers and the column of each local answer among them."""
        k = tf.shape(answer_ids)[0]
        ctx = tf.distribute.get_replica_context()
        if not self.cross_replica or ctx is None or ctx.num_replicas_in_sync == 1:
            return answer_ids, tf.range(k)
        # Replicas hold different numbers of answers; all_gather concatenates them in replica order, so
        # this replica's answers start after the answers of the replicas before it.
        gathered = ctx.all_gather(answer_ids, axis=0)
        sizes = ctx.all_gather(tf.reshape(k, [1]), axis=0)
        replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        offset = tf.reduce_sum(sizes[:replica])
        return gathered, offset + tf.range(k)

    def _candidates(
        self, batch: QueryBatch, seed: tf.Tensor, num_entities: int
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Shared candidate ids ``[M]`` and the column of each answer among them (None if absent)."""
        if self.negatives == "in_batch":
            return self._in_batch(batch.answer_ids)
        if self.sampling == "frequency" and self._log_weights is None:
            raise ValueError("frequency sampling: call loss.prepare(num_entities=…, answer_counts=…) first")
        samples = sample_entities([self.num_samples], num_entities, seed, self._log_weights)
        if not self.add_in_batch:
            return samples, None
        in_batch, columns = self._in_batch(batch.answer_ids)
        return tf.concat([in_batch, samples], axis=0), columns

    # -- logits ------------------------------------------------------------------------------------------
    def _check_model(self, model: Any) -> None:
        if self._psi is not None and model.activation.name != "identity":
            raise ValueError(
                f"HaLE loss activation {self.activation_name!r} needs a model with the identity activation "
                f"(the model has {model.activation_name!r}); set one of the two"
            )

    def _pair_logits(self, model: Any, heads: tf.Tensor, relations: tf.Tensor, rows: tf.Tensor, t: tf.Tensor,
                     inv_tau: float) -> tf.Tensor:
        """(s(q, t) − b_h)/τ for the answer pairs ``[K]`` (query ``rows``), with the loss's ψ when it has one."""
        h, r = tf.gather(heads, rows), tf.gather(relations, rows)
        if self._psi is None:
            return model.score(h, r, t, with_head_bias=False) * inv_tau
        delta = model.squared_distance_pairs(model.query(h, r), model.entities(t))
        return (model.entities.tail_biases(t) - self._psi(delta)) * inv_tau

    def _shared_logits(self, model: Any, heads: tf.Tensor, relations: tf.Tensor,
                       candidates: tf.Tensor | None, inv_tau: float) -> tf.Tensor:
        """(s(q, e) − b_h)/τ against a shared candidate set ``[M]`` (None: all entities), ``[B, M]``."""
        if self._psi is None:
            if candidates is None:
                scores = model.score_all(heads, relations)
            else:
                scores = model.score_entities(heads, relations, candidates)
            # b_h subtracted from the same tensor: its gradient is exactly zero (see compute).
            return (scores - model.entities.head_biases(heads)[:, tf.newaxis]) * inv_tau
        query = model.query(tf.cast(heads, tf.int32), tf.cast(relations, tf.int32))
        if candidates is None:
            vectors, bias = model.entities.embeddings, model.entities.tail_biases()
        else:
            vectors, bias = model.entities(candidates), model.entities.tail_biases(candidates)
        delta = model.squared_distance_to_entities(query, tf.convert_to_tensor(vectors))
        return (bias[tf.newaxis, :] - self._psi(delta)) * inv_tau

    # -- the loss ----------------------------------------------------------------------------------------
    def compute(self, model: Any, batch: QueryBatch, seed: tf.Tensor) -> LossOutput:
        self._check_model(model)
        heads, relations, rows, ids = batch
        num_queries = tf.shape(heads)[0]
        inv_tau = 1.0 / self.temperature
        # The head bias b_h is one constant per query: it changes no ranking and cancels between the two
        # terms when λ_a = λ_u, yet its float-rounding residue would be amplified into a random walk by
        # Adam (and with λ_a ≠ λ_u it would make the loss unbounded). It is left out of every logit, so its
        # gradient is exactly zero.
        answers_in_candidates = True
        fused = self.fused and (self.negatives == "all" or (self.negatives == "sampled" and not self.add_in_batch))
        if fused:
            # Positives on the K answer pairs; the log-sum-exp over all N entities (or the M shared samples)
            # from the fused kernel (filtered: the query's own answers excluded), so no [B, M] tensor exists.
            positive = self._pair_logits(model, heads, relations, rows, ids, inv_tau)
            candidates = None
            excluded = (rows, ids) if self.filtered else None
            if self.negatives == "sampled":
                candidates, _ = self._candidates(batch, seed, model.num_entities)
                answers_in_candidates = False
                if self.filtered:
                    cells = _answer_cells(rows, ids, candidates)
                    excluded = (cells[:, 0], cells[:, 1])
            lse = model.reduce_all_entities(heads, relations, temperature=self.temperature, excluded=excluded,
                                            entity_ids=candidates, activation=self._psi)
            if self.filtered:
                negative_lse = lse
        else:
            candidates, columns = (None, None) if self.negatives == "all" else self._candidates(
                batch, seed, model.num_entities)
            logits = self._shared_logits(model, heads, relations, candidates, inv_tau)  # [B, M]
            if self.negatives == "all":
                columns = ids
            if columns is not None:
                positive = tf.gather_nd(logits, tf.stack([rows, columns], axis=1))
            else:
                answers_in_candidates = False
                positive = self._pair_logits(model, heads, relations, rows, ids, inv_tau)
            if self.filtered:
                cells = (tf.stack([rows, ids], axis=1) if candidates is None
                         else _answer_cells(rows, ids, candidates))
                # Overwrite the query's answers in its row; the rest of the row are the true negatives.
                negative_logits = tf.tensor_scatter_nd_update(
                    logits, cells, tf.fill(tf.shape(cells)[:1], tf.cast(MASK_VALUE, logits.dtype))
                )

        alignment = segment_mean(-positive, rows, num_queries)
        if self.filtered:
            if not fused:
                negative_lse = tf.reduce_logsumexp(negative_logits, axis=1)  # [B]
            uniformity = segment_mean(logaddexp(positive, tf.gather(negative_lse, rows)), rows, num_queries)
        else:
            uniformity = lse if fused else tf.reduce_logsumexp(logits, axis=1)
            if not answers_in_candidates:
                uniformity = logaddexp(uniformity, _segment_logsumexp(positive, rows, num_queries))
        per_query = self.alignment_weight * alignment + self.uniformity_weight * uniformity
        terms = {"alignment": alignment, "uniformity": uniformity}
        if self.n3_weight:
            # Entity vectors only (every model has them; relation parameters differ by model).
            n3 = self.n3_weight * (cubed_norms(model.entities(heads))
                                   + segment_mean(cubed_norms(model.entities(ids)), rows, num_queries))
            per_query = per_query + tf.cast(n3, per_query.dtype)
            terms["n3"] = n3
        if self.answer_weight_power:
            answers = tf.math.unsorted_segment_sum(tf.ones_like(positive), rows, num_queries)
            per_query = per_query * tf.pow(answers, self.answer_weight_power)
        return LossOutput(per_query, terms)


def _answer_cells(rows: tf.Tensor, ids: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
    """Every (query row, candidate column) where the candidate is one of that query's answers, ``[P, 2]``.

    One sort of the candidates and two binary searches per answer, O((K + M) log M + P), instead of the
    K × M equality matrix (7 M compares per step with 8,000 sampled negatives).
    """
    order = tf.argsort(candidates, stable=True)
    sorted_candidates = tf.gather(candidates, order)[tf.newaxis, :]
    first = tf.searchsorted(sorted_candidates, ids[tf.newaxis, :], side="left")[0]
    last = tf.searchsorted(sorted_candidates, ids[tf.newaxis, :], side="right")[0]
    positions = tf.ragged.range(first, last).flat_values
    return tf.stack([tf.repeat(rows, last - first), tf.gather(order, positions)], axis=1)


def _segment_logsumexp(values: tf.Tensor, rows: tf.Tensor, num_rows: tf.Tensor) -> tf.Tensor:
    """log Σ exp(values) per row id (stable)."""
    row_max = tf.stop_gradient(tf.math.unsorted_segment_max(values, rows, num_rows))
    row_max = tf.where(tf.math.is_finite(row_max), row_max, tf.zeros_like(row_max))
    sums = tf.math.unsorted_segment_sum(tf.exp(values - tf.gather(row_max, rows)), rows, num_rows)
    return tf.math.log(sums) + row_max
