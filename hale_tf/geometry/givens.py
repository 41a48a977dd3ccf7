"""Givens rotations and reflections, applied block-wise to d/2 coordinate pairs (METHOD.md §3).

A relation parameter θ ∈ R^d is read as d/2 pairs, each normalised to a unit vector (a_i, b_i).
Rotation of (x0, x1): (a x0 − b x1, b x0 + a x1). Reflection: (a x0 + b x1, b x0 − a x1).
Both are orthogonal, so they preserve norms (and therefore keep ball points inside the ball).
"""

from __future__ import annotations

import tensorflow as tf

from hale_tf.geometry.poincare import safe_norm

__all__ = ["givens_reflection", "givens_rotation"]


def _pairs(theta: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    dim = x.shape[-1]
    if dim is not None and dim % 2:
        raise ValueError(f"Givens operators need an even dimension, got d={dim}")
    pair_shape = tf.concat([tf.shape(x)[:-1], [-1, 2]], axis=0)
    theta = tf.reshape(theta, pair_shape)
    theta = theta / safe_norm(theta)
    x = tf.reshape(x, pair_shape)
    return theta[..., 0], theta[..., 1], x[..., 0], x[..., 1]


def givens_rotation(theta: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Rotate each coordinate pair of ``x`` ([..., d]) by the unit pair of ``theta`` ([..., d])."""
    a, b, x0, x1 = _pairs(theta, x)
    out = tf.stack([a * x0 - b * x1, b * x0 + a * x1], axis=-1)
    return tf.reshape(out, tf.shape(x))


def givens_reflection(theta: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Reflect each coordinate pair of ``x`` ([..., d]) across the line given by ``theta``'s pair."""
    a, b, x0, x1 = _pairs(theta, x)
    out = tf.stack([a * x0 + b * x1, b * x0 - a * x1], axis=-1)
    return tf.reshape(out, tf.shape(x))
