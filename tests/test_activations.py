"""Every registered activation ψ: derivative = autodiff, finite everywhere; the bounded pair a_lin/a_non."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hale_tf import activations

# Squared distances reach ~10³ in the ball (far points, small curvature); 1e6 is a wide margin.
DELTAS = np.concatenate([[0.0, 1e-12, 1e-6], np.logspace(-4, 4, 60), [1e6]]).astype(np.float64)


@pytest.mark.parametrize("name", activations.available())
def test_derivative_equals_autodiff_and_everything_is_finite(name: str) -> None:
    act = activations.get(name)
    for dtype in (tf.float32, tf.float64):
        delta = tf.constant(DELTAS, dtype)
        with tf.GradientTape() as tape:
            tape.watch(delta)
            value = act(delta)
        auto = tape.gradient(value, delta).numpy()
        mine = act.derivative(delta).numpy()
        assert np.all(np.isfinite(value.numpy())) and np.all(np.isfinite(mine)), (name, dtype)
        np.testing.assert_allclose(mine, auto, rtol=1e-5, atol=1e-30, err_msg=f"{name} {dtype.name}")


@pytest.mark.parametrize(("name", "beta"), [("a_lin", 10.0), ("a_non", 3.0)])
def test_bounded_activations_defaults_from_the_paper_figure(name: str, beta: float) -> None:
    act = activations.get(name)
    assert act.get_config() == {"name": name, "beta": beta, "gamma": 10.0}
    assert activations.get(act.get_config()["name"], beta=beta, gamma=10.0) == act  # configs rebuild it


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(["a_lin", "a_non"]), beta=st.floats(0.1, 50.0), gamma=st.floats(0.1, 50.0),
       a=st.floats(0.0, 1e4), b=st.floats(0.0, 1e4))
def test_bounded_monotone_and_slope_beta_at_zero(name: str, beta: float, gamma: float, a: float, b: float) -> None:
    act = activations.get(name, beta=beta, gamma=gamma)
    lo, hi = sorted((a, b))
    values = act(tf.constant([0.0, lo, hi], tf.float64)).numpy()
    assert values[0] == 0.0
    assert values[1] <= values[2] + 1e-12  # monotone non-decreasing
    assert values[2] <= gamma * (1 + 1e-12)  # bounded above by γ
    assert act.derivative(tf.constant([0.0], tf.float64)).numpy()[0] == pytest.approx(beta)


def test_a_lin_stops_the_gradient_above_its_bound_and_a_non_fades() -> None:
    lin, non = activations.get("a_lin"), activations.get("a_non")
    delta = tf.constant([0.5, 0.99, 1.01, 3.0, 100.0], tf.float64)  # a_lin saturates at δ = γ/β = 1
    np.testing.assert_array_equal(lin.derivative(delta).numpy(), [10.0, 10.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(lin(delta).numpy()[2:], [10.0, 10.0, 10.0])
    slopes = non.derivative(delta).numpy()
    assert np.all(np.diff(slopes) < 0) and np.all(slopes[:-1] > 0) and 0.0 <= slopes[-1] < 1e-20
