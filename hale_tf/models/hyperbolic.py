"""Hyperbolic models on the Poincaré ball with per-relation learnable curvature (METHOD.md §3).

Entities are stored as tangent vectors and mapped into the ball by exp0 with the query's curvature c_r;
δ(Q, e) = d_c(Q, exp0_c(e))².
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hale_tf.geometry import expmap0, givens_reflection, givens_rotation, mobius_add, poincare, project
from hale_tf.geometry.fused import pad_rows_to_bucket, xla_fused
from hale_tf.layers import RelationAttention, RelationCurvature
from hale_tf.models.base import KGEModel, Query
from hale_tf.models.registry import register

__all__ = ["AttH", "HyperbolicModel", "RefH", "RotH"]


class HyperbolicModel(KGEModel):
    """Shared parts: the curvature layer (c_r = softplus(c_raw_r)); ``trainable_curvature=False`` fixes c.

    ``fused_distance``: :meth:`score_entities` (the in-batch/sampled negatives of training) computes its
    B × M distance block and that block's gradient as XLA clusters (:mod:`hale_tf.geometry.fused`). The
    block alone runs 2.6× faster on the 2-core CPU, but a whole RotH train step did not get faster (37–40
    ms either way, docs/training.md) and each new candidate-count bucket costs a compilation, so it is off
    by default; an option for accelerators. ``score_all`` (evaluation, export) never uses it, so a
    SavedModel needs no XLA at serving time.
    """

    geometry = "poincare"
    # B × chunk temporaries of the closed-form ball distance (γ, ⟨x,y⟩, c1, numerator, denominator, …).
    _score_temporaries = 10

    def __init__(self, *args: Any, trainable_curvature: bool = True, fused_distance: bool = False,
                 **kwargs: Any) -> None:
        self.trainable_curvature = bool(trainable_curvature)
        self.fused_distance = bool(fused_distance)
        super().__init__(*args, **kwargs)

    def build_relations(self) -> None:
        self.curvature = RelationCurvature(
            self.num_relations, name="curvature", trainable=self.trainable_curvature, dtype=self.dtype_policy
        )
        self.build_operators()

    def build_operators(self) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "trainable_curvature": self.trainable_curvature,
                "fused_distance": self.fused_distance}

    def squared_distance_to_entities(self, query: Query, vectors: tf.Tensor, *, fused: bool = False) -> tf.Tensor:
        """δ from every query to a shared entity set ``[M, d]`` → ``[B, M]``.

        The ball norm of entity e under curvature c, γ = tanh(√c‖v_e‖)/√c, depends on the query only
        through its relation. When a batch has more queries than there are relation ids, γ is computed
        once per relation ([2R, M]) and gathered per query, instead of one tanh per (query, entity).
        ``fused``: run the block as XLA clusters (M padded to a bucket when it is dynamic).
        """
        batch = query.point.shape[0]
        args = [query.point, vectors, query.curvature]
        by_relation = query.relation is not None and batch is not None and batch > self.num_relations
        if by_relation:
            args += [self.curvature.all_curvatures()[:, tf.newaxis], query.relation]
        if not fused:
            distance = poincare.squared_distance_to_all_by_relation if by_relation else poincare.squared_distance_to_all
            return distance(*args)
        args[1] = pad_rows_to_bucket(vectors)
        delta = (_fused_distance_by_relation if by_relation else _fused_distance)(*args)
        return delta[:, :tf.shape(vectors)[0]]

    def score_entities(self, h: tf.Tensor, r: tf.Tensor, entity_ids: tf.Tensor) -> tf.Tensor:
        return self._score_entities(h, r, entity_ids, fused=self.fused_distance)


_fused_distance = xla_fused(poincare.squared_distance_to_all, num_differentiable=3)
_fused_distance_by_relation = xla_fused(poincare.squared_distance_to_all_by_relation, num_differentiable=4)


@register("rotH")
class RotH(HyperbolicModel):
    """Q = Rot(θ_r)(exp0(e_h) ⊕ exp0(r1)) ⊕ exp0(r2) (translations before and after, as in KGEmb)."""

    def build_operators(self) -> None:
        self.translation = self.relation_table("translation", 2 * self.dim)
        self.rotation = self.relation_table("rotation", initializer="uniform_pm1")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        c = self.curvature(r)
        r1, r2 = tf.split(self.translation(r), 2, axis=-1)
        lhs = project(mobius_add(expmap0(self.entities(h), c), expmap0(r1, c), c), c)
        rotated = givens_rotation(self.rotation(r), lhs)
        return Query(project(mobius_add(rotated, expmap0(r2, c), c), c), c, r)


@register("refH")
class RefH(HyperbolicModel):
    """Q = exp0(Ref(φ_r) e_h) ⊕ exp0(r)."""

    def build_operators(self) -> None:
        self.translation = self.relation_table("translation")
        self.reflection = self.relation_table("reflection", initializer="uniform_pm1")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        c = self.curvature(r)
        lhs = expmap0(givens_reflection(self.reflection(r), self.entities(h)), c)
        return Query(project(mobius_add(lhs, expmap0(self.translation(r), c), c), c), c, r)


@register("attH")
class AttH(HyperbolicModel):
    """Q = exp0(α_ref q_ref + α_rot q_rot) ⊕ exp0(r), attention computed in the tangent space."""

    def build_operators(self) -> None:
        self.translation = self.relation_table("translation")
        self.attention = RelationAttention(
            self.num_relations, self.dim, self.init_scale, name="attention", dtype=self.dtype_policy
        )

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        c = self.curvature(r)
        lhs = expmap0(self.attention(self.entities(h), r), c)
        return Query(project(mobius_add(lhs, expmap0(self.translation(r), c), c), c), c, r)
