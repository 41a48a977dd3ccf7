"""Baselines in the same harness: negative sampling (uniform or self-adversarial) and 1-vs-all losses.

Every answer of the batch is a positive triple (h, r, t) (with ``batch_unit="triples"``, the default for
these losses, the trainer samples batches of triples, as in KGEmb). σ is the logistic function.

- :class:`NegativeSamplingLoss`, k negatives per positive, tails corrupted (heads are covered by the
  reciprocal relations), drawn uniformly (KGEmb) or ∝ frequency. ``corrupt="both"`` follows KGEmb's
  ``--double_neg`` (its WN18RR recipes), where every negative replaces the head *and* the tail by random
  entities, so that random queries of the relation, not the positive's own, are pushed from random
  entities: here one random head h' per positive with its k random tails, s⁻_i = s(h', r, t'_i) (each
  negative is a uniform (h', r, t') as in KGEmb; the k of a positive share h'):

  * uniform weighting (KGEmb ``neg_sampling_loss``; the mean over the B(1 + k) logistic terms)::

        ℓ(h, r, t) = −[log σ(γ + s⁺) + Σ_i log σ(−γ − s⁻_i)] / (1 + k)

  * self-adversarial weighting (RotatE, Sun et al. 2019), w = softmax(α s⁻) with no gradient::

        ℓ(h, r, t) = −½ [log σ(γ + s⁺) + Σ_i w_i log σ(−γ − s⁻_i)]

  * shared negatives (``shared_samples = M``): one sample S of M entities for the whole batch, every
    positive contrasted with all of S through the fused kernel (no ``[B, M, d]`` block), the negatives'
    mean counting as k of them, so the balance of the uniform loss is kept with a lower-variance estimate::

        ℓ(h, r, t) = −[log σ(γ + s⁺) + k · mean_{e ∈ S} log σ(−γ − s(h, r, e))] / (1 + k)

- :class:`OneVsAllLoss`, every entity a candidate (one B × N matmul through ``score_all``):

  * ``softmax`` (KGEmb's "full" loss): ℓ(h, r, t) = −s(q, t) + log Σ_e exp s(q, e), per answer;
  * ``bce`` (ConvE-style): per query, the mean over all N entities of the binary cross-entropy of
    σ(s(q, e)) against the multi-hot answer labels (optionally smoothed: y ← (1 − ε) y + ε/N).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf.losses.base import (
    KGELoss,
    LossOutput,
    QueryBatch,
    _check_unit,
    cubed_norms,
    frequency_log_weights,
    register,
    sample_entities,
)

__all__ = ["NegativeSamplingLoss", "OneVsAllLoss"]


@register("negative_sampling")
class NegativeSamplingLoss(KGELoss):
    """Logistic loss on each positive and k sampled negatives (see the module docstring).

    Args:
        num_negatives: k negatives per positive (KGEmb recipe: 50).
        adversarial_temperature: None for uniform weighting (KGEmb); α > 0 for RotatE's self-adversarial
            weights softmax(α s⁻).
        margin: γ added inside the logistic terms (0 by default: the learned biases play its part).
        sampling: ``uniform`` or ``frequency`` (∝ answer count^frequency_power; needs :meth:`prepare`).
        batch_unit: ``triples`` (KGEmb) or ``queries`` (each answer of a sampled query is a positive).
        n3_weight: λ₃ of the N3 regulariser (Lacroix et al. 2018), added per positive triple as
            λ₃ (‖e_h‖₃³ + ‖e_t‖₃³) and logged as the term ``n3``.
        shared_samples: M > 0 contrasts every positive with one shared sample of M entities (fused
            kernel; uniform weighting and a zero margin only), its mean weighted as k negatives; None
            draws k negatives per positive.
        corrupt: ``tail`` (the query's own tail is replaced) or ``both`` (as KGEmb's ``double_neg``: a
            random head per positive and k random tails, from the same distribution; not with
            ``shared_samples``).
    """

    name = "negative_sampling"

    def __init__(
        self,
        num_negatives: int = 50,
        adversarial_temperature: float | None = None,
        margin: float = 0.0,
        *,
        sampling: str = "uniform",
        frequency_power: float = 0.75,
        batch_unit: str = "triples",
        n3_weight: float = 0.0,
        shared_samples: int | None = None,
        corrupt: str = "tail",
    ) -> None:
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if adversarial_temperature is not None and not adversarial_temperature > 0:
            raise ValueError(f"adversarial_temperature must be > 0 or None, got {adversarial_temperature}")
        if sampling not in ("uniform", "frequency"):
            raise ValueError(f"sampling must be 'uniform' or 'frequency', got {sampling!r}")
        if not n3_weight >= 0:
            raise ValueError(f"n3_weight must be >= 0, got {n3_weight}")
        if shared_samples is not None:
            if shared_samples < 1:
                raise ValueError(f"shared_samples must be >= 1 or None, got {shared_samples}")
            if adversarial_temperature is not None or margin:
                raise ValueError("shared_samples needs uniform weighting (adversarial_temperature=None) and margin 0")
        if corrupt not in ("tail", "both"):
            raise ValueError(f"corrupt must be 'tail' or 'both', got {corrupt!r}")
        if corrupt == "both" and shared_samples is not None:
            raise ValueError("corrupt='both' draws a head per negative; it cannot share one sample (shared_samples)")
        self.num_negatives = int(num_negatives)
        self.adversarial_temperature = None if adversarial_temperature is None else float(adversarial_temperature)
        self.margin = float(margin)
        self.sampling = sampling
        self.frequency_power = float(frequency_power)
        self.batch_unit = _check_unit(batch_unit)
        self.n3_weight = float(n3_weight)
        self.shared_samples = None if shared_samples is None else int(shared_samples)
        self.corrupt = corrupt
        self._log_weights: tf.Tensor | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_negatives": self.num_negatives,
            "adversarial_temperature": self.adversarial_temperature,
            "margin": self.margin,
            "sampling": self.sampling,
            "frequency_power": self.frequency_power,
            "n3_weight": self.n3_weight,
            "shared_samples": self.shared_samples,
            "corrupt": self.corrupt,
        }

    def prepare(self, *, num_entities: int, answer_counts: np.ndarray | None = None) -> None:
        if self.sampling == "frequency":
            if answer_counts is None:
                raise ValueError("frequency sampling needs answer_counts")
            self._log_weights = tf.constant(frequency_log_weights(answer_counts, self.frequency_power))

    def compute(self, model: Any, batch: QueryBatch, seed: tf.Tensor) -> LossOutput:
        heads, relations, rows, ids = batch
        if self.sampling == "frequency" and self._log_weights is None:
            raise ValueError("frequency sampling: call loss.prepare(num_entities=…, answer_counts=…) first")
        h, r = tf.gather(heads, rows), tf.gather(relations, rows)
        if self.shared_samples is not None:
            per_example, terms = self._shared(model, batch, h, r, seed)
            return self._with_n3(model, h, ids, per_example, terms)
        shape = tf.stack([tf.shape(ids)[0], self.num_negatives])
        negatives = sample_entities(shape, model.num_entities, seed, self._log_weights)
        if self.corrupt == "both":
            # One random query (h', r) per positive, scored against its k random tails: each negative is
            # still a uniform (h', r, t') as in KGEmb, at the cost of tail corruption (K·k separate
            # queries cost 9× the step on the 2-core CPU, 141 against 15 ms for WN18RR's RotH step).
            heads_seed = tf.random.experimental.stateless_fold_in(seed, 1)
            negative_heads = sample_entities(shape[:1], model.num_entities, heads_seed, self._log_weights)
            positive = model.score(h, r, ids) + self.margin
            negative = model.score_candidates(negative_heads, r, negatives) + self.margin
        else:
            # One call scores the positive (column 0) and its k negatives: [K, 1 + k] (k ≪ N: K·k·d is small).
            scores = model.score_candidates(h, r, tf.concat([ids[:, tf.newaxis], negatives], axis=1))
            positive, negative = scores[:, 0] + self.margin, scores[:, 1:] + self.margin
        positive_term = -tf.math.log_sigmoid(positive)
        negative_terms = -tf.math.log_sigmoid(-negative)  # [K, k]
        if self.adversarial_temperature is None:
            negative_term = tf.reduce_sum(negative_terms, axis=1)
            per_example = (positive_term + negative_term) / (1.0 + self.num_negatives)
        else:
            weights = tf.stop_gradient(tf.nn.softmax(self.adversarial_temperature * negative, axis=1))
            negative_term = tf.reduce_sum(weights * negative_terms, axis=1)
            per_example = 0.5 * (positive_term + negative_term)
        return self._with_n3(model, h, ids, per_example, {"positive": positive_term, "negative": negative_term})

    def shared_sample(self, seed: tf.Tensor, num_entities: int) -> tf.Tensor:
        """The batch's shared negatives ``[M]`` for ``seed`` (``shared_samples`` = M)."""
        return sample_entities([self.shared_samples], num_entities, seed, self._log_weights)

    def _shared(self, model: Any, batch: QueryBatch, h: tf.Tensor, r: tf.Tensor,
                seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        heads, relations, rows, ids = batch
        samples = self.shared_sample(seed, model.num_entities)
        # Σ_{e ∈ S} softplus(s(q, e)) per query row, b_h kept (it is part of every NS logit).
        softplus_sum = model.reduce_all_entities(heads, relations, reduction="softplus", with_head_bias=True,
                                                 entity_ids=samples)[0]
        positive_term = -tf.math.log_sigmoid(model.score(h, r, ids))
        negative_term = self.num_negatives * tf.gather(softplus_sum, rows) / float(self.shared_samples)
        per_example = (positive_term + negative_term) / (1.0 + self.num_negatives)
        return per_example, {"positive": positive_term, "negative": negative_term}

    def _with_n3(self, model: Any, h: tf.Tensor, t: tf.Tensor, per_example: tf.Tensor,
                 terms: dict[str, tf.Tensor]) -> LossOutput:
        if self.n3_weight:
            n3 = self.n3_weight * (cubed_norms(model.entities(h)) + cubed_norms(model.entities(t)))
            per_example = per_example + tf.cast(n3, per_example.dtype)
            terms = {**terms, "n3": n3}
        return LossOutput(per_example, terms)


register(
    "self_adversarial",
    lambda adversarial_temperature=1.0, **config: NegativeSamplingLoss(
        adversarial_temperature=adversarial_temperature, **config
    ),
)


@register("one_vs_all")
class OneVsAllLoss(KGELoss):
    """1-vs-all scoring against every entity: ``softmax`` cross-entropy or multi-label ``bce``.

    Args:
        kind: ``softmax`` (per answer; KGEmb's full loss) or ``bce`` (per query, multi-hot labels).
        label_smoothing: ε for ``bce``.
        fused: use the fused all-entity kernel (:meth:`KGEModel.reduce_all_entities`; no B × N tensor,
            hand-written gradient); False scores the ``[B, N]`` matrix with ``score_all`` (the reference).
        batch_unit: ``triples`` (KGEmb) or ``queries``.
    """

    name = "one_vs_all"

    def __init__(self, kind: str = "softmax", label_smoothing: float = 0.0, *, fused: bool = True,
                 batch_unit: str = "triples") -> None:
        if kind not in ("softmax", "bce"):
            raise ValueError(f"kind must be 'softmax' or 'bce', got {kind!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.kind = kind
        self.label_smoothing = float(label_smoothing)
        self.fused = bool(fused)
        self.batch_unit = _check_unit(batch_unit)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "label_smoothing": self.label_smoothing,
                "fused": self.fused}

    def compute(self, model: Any, batch: QueryBatch, seed: tf.Tensor) -> LossOutput:
        if self.fused:
            return self._compute_fused(model, batch)
        heads, relations, rows, ids = batch
        logits = model.score_all(heads, relations)  # [B, N]
        cells = tf.stack([rows, ids], axis=1)
        if self.kind == "softmax":
            # b_h cancels in the softmax; removing it from the same tensor makes its gradient exactly 0
            # (rather than rounding noise that Adam would amplify into a random walk).
            logits = logits - model.entities.head_biases(heads)[:, tf.newaxis]
            lse = tf.reduce_logsumexp(logits, axis=1)
            per_example = tf.gather(lse, rows) - tf.gather_nd(logits, cells)
            return LossOutput(per_example, {"cross_entropy": per_example})
        labels = tf.scatter_nd(cells, tf.ones_like(ids, logits.dtype), tf.shape(logits, out_type=tf.int32))
        labels = tf.minimum(labels, 1.0)
        if self.label_smoothing:
            labels = (1.0 - self.label_smoothing) * labels + self.label_smoothing / model.num_entities
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        per_example = tf.reduce_mean(bce, axis=1)
        return LossOutput(per_example, {"bce": per_example})


    def _compute_fused(self, model: Any, batch: QueryBatch) -> LossOutput:
        """The same losses from the fused all-entity kernel: answer pairs scored apart, no ``[B, N]``.

        softmax: ℓ = LSE_q − (s(q, t) − b_h). bce: with multi-hot labels y (answers of a query are unique),
        Σ_e [softplus(s_e) − y_e s_e] = Σ_e softplus(s_e) − (1 − ε) Σ_{t ∈ T_q} s_t − (ε/N) Σ_e s_e.
        """
        heads, relations, rows, ids = batch
        num_queries = tf.shape(heads)[0]
        h, r = tf.gather(heads, rows), tf.gather(relations, rows)
        if self.kind == "softmax":
            # b_h is left out of both terms (it cancels), so it gets no gradient rather than rounding noise.
            lse = model.reduce_all_entities(heads, relations)
            per_example = tf.gather(lse, rows) - model.score(h, r, ids, with_head_bias=False)
            return LossOutput(per_example, {"cross_entropy": per_example})
        positive = model.score(h, r, ids)  # [K], with b_h as in the BCE logits
        softplus_sum, logit_sum = tf.unstack(
            model.reduce_all_entities(heads, relations, reduction="softplus", with_head_bias=True))
        eps = self.label_smoothing
        labelled = tf.math.unsorted_segment_sum(positive, rows, num_queries)
        total = softplus_sum - (1.0 - eps) * labelled - (eps / model.num_entities) * logit_sum
        per_example = total / model.num_entities
        return LossOutput(per_example, {"bce": per_example})


register("softmax", lambda **config: OneVsAllLoss(kind="softmax", **config))
register("bce", lambda **config: OneVsAllLoss(kind="bce", **config))
