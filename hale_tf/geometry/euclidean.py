"""Euclidean distances: per pair and from a batch of queries to all entities via one matmul."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["squared_distance", "squared_distance_to_all"]


def squared_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """‖x − y‖², shape ``[..., 1]``."""
    return tf.reduce_sum(tf.square(x - y), axis=-1, keepdims=True)


def squared_distance_to_all(x: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """‖x_b − v_e‖² for all pairs, ``[B, N]``, as ‖x‖² + ‖v‖² − 2 x vᵀ (clamped at 0 against rounding)."""
    x2 = tf.reduce_sum(x * x, axis=-1, keepdims=True)
    v2 = tf.reduce_sum(v * v, axis=-1)[tf.newaxis, :]
    return tf.maximum(x2 + v2 - 2.0 * tf.matmul(x, v, transpose_b=True), 0.0)


def squared_distance_from_dot(a: tf.Tensor, x2: tf.Tensor, v2: tf.Tensor) -> tf.Tensor:
    """δ = max(‖x‖² + ‖v‖² − 2a, 0) from the dot product a = ⟨x, v⟩ (the all-entity training kernel)."""
    return tf.maximum(x2 + v2 - 2.0 * a, 0.0)


def squared_distance_from_dot_grad(
    d_delta: tf.Tensor, a: tf.Tensor, x2: tf.Tensor, v2: tf.Tensor
) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
    """Gradient of :func:`squared_distance_from_dot`: (∂a ``[B, C]``, [∂‖x‖² ``[B]``], [∂‖v‖² ``[C]``])."""
    d = tf.where(x2 + v2 - 2.0 * a > 0.0, d_delta, tf.zeros_like(d_delta))
    return -2.0 * d, [tf.reduce_sum(d, axis=1)], [tf.reduce_sum(d, axis=0)]
