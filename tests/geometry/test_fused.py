"""XLA-fused distance blocks: same values and gradients as graph mode, bounded padding and compile count."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf.geometry import fused, poincare


def _inputs(dtype: tf.DType, b: int = 7, m: int = 13, d: int = 6, seed: int = 0) -> list[tf.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, d)) * 0.3
    v = rng.normal(size=(m, d)) * 0.8
    c = rng.uniform(0.2, 2.0, size=(b, 1))
    return [tf.constant(a, dtype) for a in (x, v, c)]


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_fused_value_and_gradients_match_graph_mode(dtype: tf.DType) -> None:
    x, v, c = _inputs(dtype)
    weights = tf.constant(np.random.default_rng(1).normal(size=(7, 13)), dtype)
    kernel = fused.xla_fused(poincare.squared_distance_to_all, num_differentiable=3)

    @tf.function
    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, v, c])
            value = fn(x, v, c)
            objective = tf.reduce_sum(value * weights)
        return value, tape.gradient(objective, [x, v, c])

    ref_value, ref_grads = value_and_grads(poincare.squared_distance_to_all)
    value, grads = value_and_grads(kernel)
    # float32: XLA reorders the arithmetic; measured ≤ 1.4e-5 relative on distances near the boundary.
    tol = 1e-4 if dtype == tf.float32 else 1e-12
    np.testing.assert_allclose(value.numpy(), ref_value.numpy(), rtol=tol)
    for g, ref in zip(grads, ref_grads, strict=True):
        scale = np.abs(ref.numpy()).max()
        np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=10 * tol, atol=10 * tol * scale)


def test_non_differentiable_arguments_get_no_gradient() -> None:
    x, v, c = _inputs(tf.float64)
    curvatures = tf.constant([[0.5], [1.0], [2.0]], tf.float64)
    relation = tf.constant([0, 1, 2, 0, 1, 2, 0])
    c = tf.gather(curvatures, relation)
    kernel = fused.xla_fused(poincare.squared_distance_to_all_by_relation, num_differentiable=4)
    with tf.GradientTape() as tape:
        tape.watch([x, v, curvatures])
        value = kernel(x, v, c, curvatures, relation)
    gx, gv, gcurv = tape.gradient(value, [x, v, curvatures])
    ref = poincare.squared_distance_to_all(x, v, c)
    np.testing.assert_allclose(value.numpy(), ref.numpy(), rtol=1e-12)
    assert all(np.all(np.isfinite(g.numpy())) for g in (gx, gv, gcurv))


def test_bucket_size_bounds_padding_and_bucket_count() -> None:
    sampled = np.arange(1, 20_000, 37)
    buckets = np.array([int(fused.bucket_size(tf.constant(int(s)))) for s in sampled])
    assert np.all(buckets >= sampled)
    large = sampled >= 512
    assert np.all(buckets[large] <= sampled[large] * 1.125 + 1e-9)  # ≤ 12.5 % padding beyond 512 rows
    assert np.all(buckets[~large] - sampled[~large] < fused.MIN_BUCKET)
    # Sizes in one octave (1,024, 2,048] compile at most 8 distinct shapes.
    octave = [int(fused.bucket_size(tf.constant(s))) for s in range(1025, 2049)]
    assert len(set(octave)) <= 8


def test_pad_rows_only_pads_dynamic_shapes() -> None:
    rows = tf.ones([100, 4])
    assert fused.pad_rows_to_bucket(rows).shape == (100, 4)  # static: compiles once, no padding

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def padded(r):
        return tf.shape(fused.pad_rows_to_bucket(r))

    assert padded(rows).numpy().tolist() == [128, 4]
    assert padded(tf.ones([1000, 4])).numpy().tolist() == [1024, 4]
