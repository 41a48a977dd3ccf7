"""How temperature and the hardness-aware activations ψ shift the gradient towards close negatives.

For one query with a positive at distance δ⁺ and negatives at distances δ_j, the HaLE loss with all
candidates is L = −s⁺/τ + log Σ_e exp(s_e/τ) with s = −ψ(δ). Its gradient with respect to a negative's
distance is ∂L/∂δ_j = −softmax_j(s/τ) · ψ'(δ_j)/τ ≤ 0: gradient descent pushes every negative away, with
a weight −∂L/∂δ_j that falls with distance. "Hardness-aware" means that weight falls *faster*, i.e. a
larger share of the total push goes to the closest negatives.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import activations

# Squared distances in the range trained low-dimensional hyperbolic models produce (order 1-10).
POSITIVE = 0.5
NEGATIVES = np.array([1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0], np.float32)
CLOSE = 2  # the two nearest negatives are the "hard" ones


def _negative_gradients(activation: activations.Activation, tau: float = 1.0) -> np.ndarray:
    """The push −∂L/∂δ_j on each negative, through the real activation object and the HaLE loss form."""
    delta = tf.Variable(np.r_[POSITIVE, NEGATIVES].astype(np.float32))
    with tf.GradientTape() as tape:
        logits = -activation(delta) / tau
        loss = -logits[0] + tf.reduce_logsumexp(logits)  # alignment + uniformity over all candidates
    return -tape.gradient(loss, delta).numpy()[1:]


def _close_share(grads: np.ndarray) -> float:
    return float(grads[:CLOSE].sum() / grads.sum())


def test_gradient_pushes_every_negative_away_and_decreases_with_distance() -> None:
    for act in (activations.get("identity"), activations.get("power", p=2.0), activations.get("exp", beta=2.0)):
        grads = _negative_gradients(act)
        assert np.all(grads > 0), act
        assert np.all(np.diff(grads) < 0), f"{act}: weight should fall with distance: {grads}"


@pytest.mark.parametrize(
    "act", [activations.get("power", p=1.5), activations.get("power", p=2.0), activations.get("exp", beta=2.0),
            activations.get("exp", beta=1.0)]
)
def test_convex_activation_concentrates_gradient_on_close_negatives(act: activations.Activation) -> None:
    identity = _close_share(_negative_gradients(activations.get("identity")))
    hard = _close_share(_negative_gradients(act))
    assert hard > identity + 0.05, f"{act}: close-negative share {hard:.3f} vs identity {identity:.3f}"


def test_steeper_activation_is_harder() -> None:
    """Within a family, a steeper ψ (larger p, smaller β) concentrates more."""
    shares_p = [_close_share(_negative_gradients(activations.get("power", p=p))) for p in (1.0, 1.5, 2.0, 3.0)]
    assert np.all(np.diff(shares_p) > 0), shares_p
    shares_b = [_close_share(_negative_gradients(activations.get("exp", beta=b))) for b in (8.0, 4.0, 2.0, 1.0)]
    assert np.all(np.diff(shares_b) > 0), shares_b


def test_lower_temperature_concentrates_like_an_activation() -> None:
    """The other knob: τ < 1 sharpens softmax(s/τ) and also moves weight onto the close negatives."""
    shares = [_close_share(_negative_gradients(activations.get("identity"), tau)) for tau in (2.0, 1.0, 0.5, 0.25)]
    assert np.all(np.diff(shares) > 0), shares
