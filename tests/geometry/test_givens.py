"""Givens rotations and reflections: norm preservation, references, inverses."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hale_tf.geometry import givens_reflection, givens_rotation
from tests import reference as ref


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 8), half_d=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_norm_preserved_and_matches_reference(b, half_d, seed):
    rng = np.random.default_rng(seed)
    theta, x = rng.uniform(-1, 1, size=(b, 2 * half_d)), rng.normal(size=(b, 2 * half_d))
    for op, ref_op in ((givens_rotation, ref.rotate), (givens_reflection, ref.reflect)):
        out = op(tf.constant(theta), tf.constant(x)).numpy()
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)
        np.testing.assert_allclose(out, ref_op(theta, x), rtol=1e-12, atol=1e-12)


def test_reflection_is_an_involution_and_rotation_inverts():
    rng = np.random.default_rng(1)
    theta, x = tf.constant(rng.uniform(-1, 1, (5, 8))), tf.constant(rng.normal(size=(5, 8)))
    np.testing.assert_allclose(givens_reflection(theta, givens_reflection(theta, x)).numpy(), x.numpy(), atol=1e-12)
    # Rotating by the conjugate angle (a, −b) undoes the rotation.
    conj = tf.reshape(tf.reshape(theta, (5, 4, 2)) * tf.constant([1.0, -1.0], tf.float64), (5, 8))
    np.testing.assert_allclose(givens_rotation(conj, givens_rotation(theta, x)).numpy(), x.numpy(), atol=1e-12)


def test_works_on_rank3_and_rejects_odd_dimension():
    rng = np.random.default_rng(2)
    theta, x = rng.uniform(-1, 1, (3, 4, 6)), rng.normal(size=(3, 4, 6))
    out = givens_rotation(tf.constant(theta), tf.constant(x)).numpy()
    np.testing.assert_allclose(out, ref.rotate(theta, x), atol=1e-12)
    with pytest.raises(ValueError, match="even dimension"):
        givens_rotation(tf.zeros((2, 3)), tf.zeros((2, 3)))


def test_zero_angle_gives_finite_gradients():
    theta = tf.Variable(tf.zeros((2, 4)))
    x = tf.Variable(tf.ones((2, 4)))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(givens_rotation(theta, x) + givens_reflection(theta, x))
    for grad in tape.gradient(y, [theta, x]):
        assert np.all(np.isfinite(grad.numpy()))
