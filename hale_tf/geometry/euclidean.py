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
