"""Euclidean models: δ(Q, e) = ‖Q − e‖² (METHOD.md §3)."""

from __future__ import annotations

import tensorflow as tf

from hale_tf.geometry import givens_reflection, givens_rotation
from hale_tf.layers import RelationAttention
from hale_tf.models.base import KGEModel, Query
from hale_tf.models.registry import register

__all__ = ["AttE", "MuRE", "RefE", "RotE", "TransE"]


@register("transE")
class TransE(KGEModel):
    """Q = e_h + r."""

    def build_relations(self) -> None:
        self.translation = self.relation_table("translation")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        return Query(self.entities(h) + self.translation(r), None)


@register("muRE")
class MuRE(KGEModel):
    """Q = diag(ρ_r) e_h + r (ρ initialised U(−1, 1))."""

    def build_relations(self) -> None:
        self.translation = self.relation_table("translation")
        self.scaling = self.relation_table("scaling", initializer="uniform_pm1")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        return Query(self.scaling(r) * self.entities(h) + self.translation(r), None)


@register("rotE")
class RotE(KGEModel):
    """Q = Rot(θ_r) e_h + r."""

    def build_relations(self) -> None:
        self.translation = self.relation_table("translation")
        self.rotation = self.relation_table("rotation", initializer="uniform_pm1")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        return Query(givens_rotation(self.rotation(r), self.entities(h)) + self.translation(r), None)


@register("refE")
class RefE(KGEModel):
    """Q = Ref(φ_r) e_h + r."""

    def build_relations(self) -> None:
        self.translation = self.relation_table("translation")
        self.reflection = self.relation_table("reflection", initializer="uniform_pm1")

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        return Query(givens_reflection(self.reflection(r), self.entities(h)) + self.translation(r), None)


@register("attE")
class AttE(KGEModel):
    """Q = α_ref·Ref(φ_r) e_h + α_rot·Rot(θ_r) e_h + r, α = softmax over {ref, rot} of ⟨a_r, q_k⟩/√d."""

    def build_relations(self) -> None:
        self.translation = self.relation_table("translation")
        self.attention = RelationAttention(
            self.num_relations, self.dim, self.init_scale, name="attention", dtype=self.dtype_policy
        )

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        return Query(self.attention(self.entities(h), r) + self.translation(r), None)
