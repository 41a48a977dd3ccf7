"""Keras layers holding the embedding tables: entities (+ biases) and per-relation parameters."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from hale_tf.geometry import givens_reflection, givens_rotation

__all__ = ["EntityEmbedding", "RelationAttention", "RelationCurvature", "RelationTable"]

_INITIALIZERS = ("normal", "uniform_pm1", "ones", "zeros")


def _initializer(kind: str, scale: float) -> keras.initializers.Initializer:
    if kind == "normal":  # N(0, 1)·scale, KGEmb's init_size
        return keras.initializers.RandomNormal(stddev=scale)
    if kind == "uniform_pm1":  # rotation/reflection parameters: U(−1, 1)
        return keras.initializers.RandomUniform(-1.0, 1.0)
    if kind == "ones":
        return keras.initializers.Ones()
    if kind == "zeros":
        return keras.initializers.Zeros()
    raise ValueError(f"unknown initializer {kind!r}; expected one of {_INITIALIZERS}")


# From this many rows on, lookups read rows sparsely (ResourceGather) instead of reading the whole table.
# Measured: at 5M entities × 32 with LazyAdam, 7.35 → 0.31 s/step under load (after a sparse update,
# TensorFlow copies a variable on every dense read: 0.64 GB per step); on WN18RR's 40,943 entities with the
# dense fused Adam the sparse read was 1.2× slower (HaLE in-batch, 29.2 vs 35.8 steps/s), so small tables
# keep the dense read.
SPARSE_LOOKUP_MIN_ROWS = 1_000_000


def gather_rows(variable: Any, ids: tf.Tensor) -> tf.Tensor:
    """Rows ``ids`` of a (Keras) variable: a sparse ResourceGather for tables of at least
    :data:`SPARSE_LOOKUP_MIN_ROWS` rows, ``tf.gather`` on the read table below that."""
    large = variable.shape[0] is not None and variable.shape[0] >= SPARSE_LOOKUP_MIN_ROWS
    table = variable.value if large and isinstance(variable, keras.Variable) else variable
    return tf.gather(table, tf.cast(ids, tf.int32))


@keras.saving.register_keras_serializable(package="hale_tf")
class EntityEmbedding(keras.layers.Layer):
    """Entity table ``[N, d]`` with head and tail biases ``[N]`` (zero-initialised).

    Vectors are tangent vectors for hyperbolic models (mapped into the ball by exp0 with the query's
    curvature), plain points for Euclidean ones.
    """

    def __init__(
        self, num_entities: int, dim: int, init_scale: float = 1e-3, use_bias: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_entities = int(num_entities)
        self.dim = int(dim)
        self.init_scale = float(init_scale)
        self.use_bias = bool(use_bias)

    def build(self, input_shape: Any = None) -> None:
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_entities, self.dim),
            initializer=_initializer("normal", self.init_scale),
        )
        if self.use_bias:
            self.head_bias = self.add_weight(name="head_bias", shape=(self.num_entities,), initializer="zeros")
            self.tail_bias = self.add_weight(name="tail_bias", shape=(self.num_entities,), initializer="zeros")
        self.built = True

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return gather_rows(self.embeddings, ids)

    def head_biases(self, ids: tf.Tensor) -> tf.Tensor:
        """b_h for the given head ids (zeros when biases are off), shape like ``ids``."""
        if not self.use_bias:
            return tf.zeros(tf.shape(ids), self.embeddings.dtype)
        return gather_rows(self.head_bias, ids)

    def tail_biases(self, ids: tf.Tensor | None = None) -> tf.Tensor:
        """b_t for ``ids`` (all entities when None)."""
        if not self.use_bias:
            n = self.num_entities if ids is None else tf.shape(ids)
            return tf.zeros(n, self.embeddings.dtype)
        if ids is None:
            return tf.convert_to_tensor(self.tail_bias)
        return gather_rows(self.tail_bias, ids)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "num_entities": self.num_entities, "dim": self.dim,
            "init_scale": self.init_scale, "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="hale_tf")
class RelationTable(keras.layers.Layer):
    """A per-relation parameter table ``[R, width]`` (translations, Givens angles, scalings)."""

    def __init__(
        self, num_relations: int, width: int, initializer: str = "normal", init_scale: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _initializer(initializer, init_scale)  # validate early, at construction
        self.num_relations = int(num_relations)
        self.width = int(width)
        self.initializer = initializer
        self.init_scale = float(init_scale)

    def build(self, input_shape: Any = None) -> None:
        self.table = self.add_weight(
            name="table", shape=(self.num_relations, self.width),
            initializer=_initializer(self.initializer, self.init_scale),
        )
        self.built = True

    def call(self, relation_ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.table, tf.cast(relation_ids, tf.int32))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "num_relations": self.num_relations, "width": self.width,
            "initializer": self.initializer, "init_scale": self.init_scale,
        }


@keras.saving.register_keras_serializable(package="hale_tf")
class RelationCurvature(keras.layers.Layer):
    """Per-relation curvature c_r = softplus(c_raw_r), c_raw initialised to ``initial_raw`` (KGEmb: 1).

    With ``trainable=False`` every relation keeps c = softplus(initial_raw).
    """

    def __init__(self, num_relations: int, initial_raw: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_relations = int(num_relations)
        self.initial_raw = float(initial_raw)

    def build(self, input_shape: Any = None) -> None:
        self.raw = self.add_weight(
            name="raw", shape=(self.num_relations, 1),
            initializer=keras.initializers.Constant(self.initial_raw), trainable=self.trainable,
        )
        self.built = True

    def call(self, relation_ids: tf.Tensor) -> tf.Tensor:
        """Curvature per query, ``[B, 1]``."""
        return tf.nn.softplus(tf.gather(self.raw, tf.cast(relation_ids, tf.int32)))

    def all_curvatures(self) -> tf.Tensor:
        return tf.nn.softplus(tf.convert_to_tensor(self.raw))[:, 0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_relations": self.num_relations, "initial_raw": self.initial_raw}


@keras.saving.register_keras_serializable(package="hale_tf")
class RelationAttention(keras.layers.Layer):
    """AttH/AttE operator: attention over the rotated and reflected head (METHOD.md §3).

    q_rot = Rot(θ_r) e_h, q_ref = Ref(φ_r) e_h, α = softmax_k(⟨a_r, q_k⟩/√d), output α_ref q_ref + α_rot q_rot.
    """

    def __init__(self, num_relations: int, dim: int, init_scale: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_relations = int(num_relations)
        self.dim = int(dim)
        self.init_scale = float(init_scale)
        dtype = self.dtype_policy
        self.rotation = RelationTable(num_relations, dim, "uniform_pm1", name="rotation", dtype=dtype)
        self.reflection = RelationTable(num_relations, dim, "uniform_pm1", name="reflection", dtype=dtype)
        self.context = RelationTable(num_relations, dim, "normal", init_scale, name="context", dtype=dtype)

    def build(self, input_shape: Any = None) -> None:
        for layer in (self.rotation, self.reflection, self.context):
            layer.build()
        self.built = True

    def call(self, head: tf.Tensor, relation_ids: tf.Tensor) -> tf.Tensor:
        q_rot = givens_rotation(self.rotation(relation_ids), head)
        q_ref = givens_reflection(self.reflection(relation_ids), head)
        candidates = tf.stack([q_ref, q_rot], axis=1)  # [B, 2, d]
        context = self.context(relation_ids)[:, tf.newaxis, :]  # [B, 1, d]
        logits = tf.reduce_sum(context * candidates, axis=-1, keepdims=True) / tf.sqrt(
            tf.cast(self.dim, head.dtype)
        )
        weights = tf.nn.softmax(logits, axis=1)  # over the two candidates
        return tf.reduce_sum(weights * candidates, axis=1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "num_relations": self.num_relations, "dim": self.dim,
            "init_scale": self.init_scale,
        }
