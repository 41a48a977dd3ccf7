"""Poincaré-ball operations: identities, float64 references, clamps and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hale_tf import geometry as geo
from hale_tf.geometry import poincare
from tests import reference as ref

RNG = np.random.default_rng(0)


def ball_points(n: int, d: int, c: np.ndarray, max_frac: float = 0.9) -> np.ndarray:
    """Random points strictly inside the ball of curvature c (per row)."""
    x = RNG.normal(size=(n, d))
    radius = RNG.uniform(0, max_frac, size=(n, 1)) / np.sqrt(c)
    return x / np.linalg.norm(x, axis=-1, keepdims=True) * radius


def t64(x) -> tf.Tensor:
    return tf.constant(x, tf.float64)


C = RNG.uniform(0.1, 3.0, size=(64, 1))
X = ball_points(64, 8, C)
Y = ball_points(64, 8, C)


def test_mobius_add_matches_reference_float64():
    got = geo.mobius_add(t64(X), t64(Y), t64(C)).numpy()
    np.testing.assert_allclose(got, ref.mobius_add(X, Y, C), rtol=1e-12, atol=1e-12)


def test_mobius_identities():
    zero = np.zeros_like(X)
    np.testing.assert_allclose(geo.mobius_add(t64(X), t64(zero), t64(C)).numpy(), X, atol=1e-12)
    np.testing.assert_allclose(geo.mobius_add(t64(zero), t64(X), t64(C)).numpy(), X, atol=1e-12)
    np.testing.assert_allclose(geo.mobius_add(t64(-X), t64(X), t64(C)).numpy(), zero, atol=1e-12)
    # Left cancellation: (−x) ⊕ (x ⊕ y) = y.
    xy = geo.mobius_add(t64(X), t64(Y), t64(C))
    np.testing.assert_allclose(geo.mobius_add(t64(-X), xy, t64(C)).numpy(), Y, atol=1e-10)


def test_log_exp_roundtrip_float64():
    u = RNG.normal(size=(64, 8)) * 0.5
    back = geo.logmap0(geo.expmap0(t64(u), t64(C)), t64(C)).numpy()
    np.testing.assert_allclose(back, u, rtol=1e-8, atol=1e-10)


def test_exp_log_match_reference_float64():
    u = RNG.normal(size=(64, 8))
    np.testing.assert_allclose(geo.expmap0(t64(u), t64(C)).numpy(), ref.expmap0(u, C, 1e-5), atol=1e-12)
    np.testing.assert_allclose(geo.logmap0(t64(X), t64(C)).numpy(), ref.logmap0(X, C), rtol=1e-10)


def test_distance_reference_zero_and_symmetry():
    d_xy = geo.distance(t64(X), t64(Y), t64(C)).numpy()
    np.testing.assert_allclose(d_xy, ref.hyp_distance(X, Y, C), rtol=1e-10)
    np.testing.assert_allclose(geo.distance(t64(Y), t64(X), t64(C)).numpy(), d_xy, rtol=1e-9)
    np.testing.assert_allclose(geo.distance(t64(X), t64(X), t64(C)).numpy(), 0.0, atol=1e-7)
    d32 = geo.distance(tf.constant(X, tf.float32), tf.constant(X, tf.float32), tf.constant(C, tf.float32))
    np.testing.assert_allclose(d32.numpy(), 0.0, atol=2e-3)


def test_small_curvature_limit_is_twice_euclidean():
    x, y = RNG.normal(size=(16, 8)), RNG.normal(size=(16, 8))
    for c in (1e-4, 1e-6):
        got = geo.distance(t64(x), t64(y), t64(np.full((16, 1), c))).numpy()[:, 0]
        want = 2 * np.linalg.norm(x - y, axis=-1)
        # The correction is O(c·‖x‖²): measured ≈ 0.54·c·max‖x‖², so c·max‖x‖² is a bound that can fail.
        max_sq = max((x * x).sum(-1).max(), (y * y).sum(-1).max())
        np.testing.assert_allclose(got, want, rtol=c * max_sq)


def test_project_keeps_points_inside():
    far = RNG.normal(size=(32, 8)) * 100
    for dtype, eps in ((tf.float32, 4e-3), (tf.float64, 1e-5)):
        c = tf.constant(C[:32], dtype)
        p = geo.project(tf.constant(far, dtype), c).numpy()
        radius = np.linalg.norm(p, axis=-1) * np.sqrt(C[:32, 0])
        np.testing.assert_allclose(radius, 1 - eps, rtol=1e-5)
    inside = ball_points(32, 8, C[:32], 0.5)
    np.testing.assert_array_equal(geo.project(t64(inside), t64(C[:32])).numpy(), inside)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_all_entity_distance_equals_pairwise(dtype):
    c = RNG.uniform(0.2, 2.0, size=(6, 1))
    x = ball_points(6, 8, c, 0.95)
    v = RNG.normal(size=(40, 8)) * RNG.uniform(0.01, 3.0, size=(40, 1))
    got = poincare.squared_distance_to_all(*(tf.constant(a, dtype) for a in (x, v, c)))
    eps = poincare.ball_eps(dtype)
    tails = ref.expmap0(v[None], c[:, None, :], eps)
    want = ref.hyp_distance(x[:, None, :], tails, c[:, None, :])[..., 0] ** 2
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == tf.float64 else dict(rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(got.numpy(), want, **tol)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_candidate_distance_equals_pairwise(dtype):
    """Negative sampling's closed form equals the Möbius form on exp0 of each query's own candidates."""
    c = RNG.uniform(0.2, 2.0, size=(6, 1))
    x = ball_points(6, 8, c, 0.95)
    v = RNG.normal(size=(6, 5, 8)) * RNG.uniform(0.01, 3.0, size=(6, 5, 1))
    got = poincare.squared_distance_to_candidates(*(tf.constant(a, dtype) for a in (x, v, c)))
    assert got.shape == (6, 5)
    tails = ref.expmap0(v, c[:, None, :], poincare.ball_eps(dtype))
    want = ref.hyp_distance(x[:, None, :], tails, c[:, None, :])[..., 0] ** 2
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == tf.float64 else dict(rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(got.numpy(), want, **tol)


def test_candidate_distance_gradient_matches_finite_differences_and_mobius_form():
    c = t64(C[:4])
    x0 = t64(ball_points(4, 6, C[:4], 0.6))
    v0 = t64(RNG.normal(size=(4, 3, 6)) * 0.5)

    def closed(x, v):
        return poincare.squared_distance_to_candidates(x, v, c)

    def mobius(x, v):
        return geo.squared_distance(x[:, None, :], geo.expmap0(v, c[:, None, :]), c[:, None, :])[..., 0]

    theoretical, numerical = tf.test.compute_gradient(closed, [x0, v0])
    for got, want in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    _, grads_closed = _grads(closed, x0, v0)
    _, grads_mobius = _grads(mobius, x0, v0)
    for got, want in zip(grads_closed, grads_mobius, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-8, atol=1e-10)


def _grads(fn, *args):
    args = [tf.Variable(a) for a in args]
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(fn(*args))
    return out, tape.gradient(out, args)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_gradients_finite_near_boundary_and_at_zero(dtype):
    c = tf.constant(np.full((4, 1), 1.0), dtype)
    boundary = tf.constant(ball_points(4, 8, np.ones((4, 1)), 1.0) * 0.0 + np.eye(4, 8) * (1 - 1e-7), dtype)
    zero = tf.zeros((4, 8), dtype)
    big = tf.constant(RNG.normal(size=(4, 8)) * 50, dtype)
    cases = [
        (lambda x: geo.expmap0(x, c), zero), (lambda x: geo.expmap0(x, c), big),
        (lambda x: geo.logmap0(x, c), zero), (lambda x: geo.logmap0(x, c), boundary),
        (lambda x: geo.distance(x, boundary, c), boundary), (lambda x: geo.distance(x, zero, c), zero),
        (lambda x: geo.mobius_add(x, boundary, c), boundary), (lambda x: geo.project(x, c), big),
        (lambda x: poincare.squared_distance_to_all(geo.project(x, c), big, c), boundary),
        (lambda x: poincare.squared_distance_to_all(x, zero, c), zero),
        (lambda x: poincare.squared_distance_to_candidates(geo.project(x, c), big[:, None, :], c), boundary),
        (lambda x: poincare.squared_distance_to_candidates(x, zero[:, None, :], c), zero),
    ]
    for fn, x in cases:
        out, (grad,) = _grads(fn, x)
        assert np.isfinite(out.numpy()), fn
        assert np.all(np.isfinite(grad.numpy())), fn


def test_gradient_matches_finite_differences():
    c = t64(C[:4])
    x0 = ball_points(4, 6, C[:4], 0.6)
    y = t64(ball_points(4, 6, C[:4], 0.6))

    def f(x):
        return geo.squared_distance(x, y, c)

    theoretical, numerical = tf.test.compute_gradient(f, [t64(x0)])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    half_d=st.integers(1, 8),
    c=st.floats(1e-3, 10.0),
    scale=st.floats(1e-4, 5.0),
    seed=st.integers(0, 2**16),
)
def test_property_distance_finite_nonnegative_and_triangle(n, half_d, c, scale, seed):
    rng = np.random.default_rng(seed)
    d = 2 * half_d
    cc = t64(np.full((n, 1), c))
    pts = [geo.expmap0(t64(rng.normal(size=(n, d)) * scale), cc) for _ in range(3)]
    pairs = ((pts[0], pts[1]), (pts[1], pts[2]), (pts[0], pts[2]))
    dxy, dyz, dxz = (geo.distance(a, b, cc).numpy() for a, b in pairs)
    assert np.all(np.isfinite(dxy)) and np.all(dxy >= 0)
    # Triangle inequality (loose: the artanh clamp caps distances near the boundary).
    assert np.all(dxz <= dxy + dyz + 1e-6 * (1 + dxz))
    radius = np.linalg.norm(pts[0].numpy(), axis=-1) * np.sqrt(c)
    assert np.all(radius < 1.0)


@settings(max_examples=30, deadline=None)
@given(
    arrays=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                      elements=st.floats(-3, 3)),
    c=st.floats(0.05, 5.0),
)
def test_property_log_exp_inverse(arrays, c):
    if arrays.shape[-1] % 2:
        arrays = np.concatenate([arrays, arrays[:, :1]], axis=-1)
    cc = t64(np.full((arrays.shape[0], 1), c))
    u = arrays * 0.9 / max(np.sqrt(c), 1.0)
    # exp0 projects to radius (1 − 1e-5)/√c in float64, i.e. √c‖u‖ ≤ artanh(1 − 1e-5) ≈ 6.1: only
    # inside that is log0 an exact inverse.
    assume(np.max(np.linalg.norm(u, axis=-1)) * np.sqrt(c) < 5.5)
    back = geo.logmap0(geo.expmap0(t64(u), cc), cc).numpy()
    np.testing.assert_allclose(back, u, rtol=1e-6, atol=1e-8)
