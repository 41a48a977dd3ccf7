"""Hyperbolic models on the Poincaré ball with per-relation learnable curvature (METHOD.md §3).

Entities are stored as tangent vectors and mapped into the ball by exp0 with the query's curvature c_r;
δ(Q, e) = d_c(Q, exp0_c(e))².
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hale_tf.geometry import expmap0, givens_reflection, givens_rotation, mobius_add, poincare, project
from hale_tf.layers import RelationAttention, RelationCurvature
from hale_tf.models.base import KGEModel, Query
from hale_tf.models.registry import register

__all__ = ["AttH", "HyperbolicModel", "RefH", "RotH"]


class HyperbolicModel(KGEModel):
    """Shared parts: the curvature layer (c_r = softplus(c_raw_r)); ``trainable_curvature=False`` fixes c."""

    geometry = "poincare"
    # B × chunk temporaries of the closed-form ball distance (γ, ⟨x,y⟩, c1, numerator, denominator, …).
    _score_temporaries = 10

    def __init__(self, *args: Any, trainable_curvature: bool = True, **kwargs: Any) -> None:
        self.trainable_curvature = bool(trainable_curvature)
        super().__init__(*args, **kwargs)

    def build_relations(self) -> None:
        self.curvature = RelationCurvature(
            self.num_relations, name="curvature", trainable=self.trainable_curvature, dtype=self.dtype_policy
        )
        self.build_operators()

    def build_operators(self) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "trainable_curvature": self.trainable_curvature}

    def squared_distance_to_entities(self, query: Query, vectors: tf.Tensor) -> tf.Tensor:
        """δ from every query to a shared entity set ``[M, d]`` → ``[B, M]``.

        The ball norm of entity e under curvature c, γ = tanh(√c‖v_e‖)/√c, depends on the query only
        through its relation. When a batch has more queries than there are relation ids, γ is computed
        once per relation ([2R, M]) and gathered per query, instead of one tanh per (query, entity).
        """
        batch = query.point.shape[0]
        if query.relation is None or batch is None or batch <= self.num_relations:
            return super().squared_distance_to_entities(query, vectors)
        c_all = self.curvature.all_curvatures()[:, tf.newaxis]  # [2R, 1]
        gamma_all = poincare.ball_norm_of_expmap0(vectors, c_all)  # [2R, M]
        return poincare.squared_distance_to_all(
            query.point, vectors, query.curvature, ball_norm=tf.gather(gamma_all, query.relation)
        )


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
