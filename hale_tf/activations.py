"""Hardness-aware activations ψ applied to the distance part of the score (METHOD.md §2).

A model scores s(q, e) = −ψ(δ(q, e)) + b_h + b_e with δ the squared distance. In a softmax-type loss
the gradient weight on negative e is proportional to exp(s_e/τ); an increasing convex ψ makes that
weight fall faster with distance, so training concentrates on close (hard) negatives without changing τ.

- ``identity``:  ψ(δ) = δ
- ``power``:     ψ(δ) = δ^p, p ≥ 1
- ``exp``:       ψ(δ) = β (exp(min(δ/β, 20)) − 1), β > 0 (δ/β clamped so it cannot overflow)
- ``a_lin``:     ψ(δ) = min(β δ, γ)          (β = 10, γ = 10)  } HaLE's two bounded activations, our
- ``a_non``:     ψ(δ) = γ tanh(β δ / γ)      (β = 3, γ = 10)   } reconstruction (METHOD.md §2.1)

The bounded pair saturates at γ: far (easy) instances all score about −γ and stop pulling gradient, while
β sets the slope, i.e. the temperature, on close (hard) ones. Every ψ also gives ``derivative`` (dψ/dδ),
which the fused all-entity training kernel uses instead of autodiff.

ψ is part of the model's score (a model hyperparameter), so training, evaluation and the exported
SavedModel all rank with the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from hale_tf.registry import Registry

MAX_EXP_ARG = 20.0

__all__ = ["Activation", "available", "get"]


class Activation:
    """A named, configurable ψ: callable on a distance tensor, with ``get_config``."""

    name = "identity"

    def __init__(self, **params: Any) -> None:
        if params:
            raise ValueError(f"activation {self.name!r} takes no parameters, got {sorted(params)}")

    def __call__(self, delta: tf.Tensor) -> tf.Tensor:
        return delta

    def derivative(self, delta: tf.Tensor) -> tf.Tensor:
        """dψ/dδ, element-wise (the all-entity training kernel differentiates by hand)."""
        return tf.ones_like(delta)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    # Equal configs are equal activations (compiled kernels are cached per activation).
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


class PowerActivation(Activation):
    """ψ(δ) = δ^p with p ≥ 1 (p < 1 would have an infinite slope at δ = 0)."""

    name = "power"

    def __init__(self, p: float = 2.0) -> None:
        if not p >= 1.0:
            raise ValueError(f"power activation needs p >= 1, got p={p}")
        self.p = float(p)

    def __call__(self, delta: tf.Tensor) -> tf.Tensor:
        return tf.pow(tf.maximum(delta, 0.0), tf.constant(self.p, delta.dtype))

    def derivative(self, delta: tf.Tensor) -> tf.Tensor:
        p = tf.constant(self.p, delta.dtype)
        return p * tf.pow(tf.maximum(delta, 0.0), p - 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "p": self.p}


class ExpActivation(Activation):
    """ψ(δ) = β (exp(min(δ/β, 20)) − 1): ≈ δ for δ ≪ β, exponentially steeper beyond."""

    name = "exp"

    def __init__(self, beta: float = 1.0) -> None:
        if not beta > 0.0:
            raise ValueError(f"exp activation needs beta > 0, got beta={beta}")
        self.beta = float(beta)

    def __call__(self, delta: tf.Tensor) -> tf.Tensor:
        beta = tf.constant(self.beta, delta.dtype)
        return beta * tf.math.expm1(tf.minimum(delta / beta, MAX_EXP_ARG))

    def derivative(self, delta: tf.Tensor) -> tf.Tensor:
        scaled = delta / tf.constant(self.beta, delta.dtype)
        return tf.where(scaled < MAX_EXP_ARG, tf.exp(tf.minimum(scaled, MAX_EXP_ARG)), tf.zeros_like(delta))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "beta": self.beta}


class BoundedActivation(Activation):
    """Shared parts of HaLE's bounded pair: slope β at δ = 0 and upper bound γ (both > 0)."""

    default_beta = 10.0

    def __init__(self, beta: float | None = None, gamma: float = 10.0) -> None:
        beta = self.default_beta if beta is None else beta
        if not (beta > 0.0 and gamma > 0.0):
            raise ValueError(f"{self.name} needs beta > 0 and gamma > 0, got beta={beta}, gamma={gamma}")
        self.beta, self.gamma = float(beta), float(gamma)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "beta": self.beta, "gamma": self.gamma}


class ClippedLinearActivation(BoundedActivation):
    """a_lin, our reconstruction of HaLE's linear hardness-aware activation: ψ(δ) = min(β δ, γ).

    The slope β scales close distances like a temperature (METHOD.md §2.1: "y = c·x is equivalent to
    using temperature"); above γ the penalty saturates, so distances beyond γ/β score alike and get no
    gradient (easy instances stop pulling). HaLE's figure gives β = 10, γ = 10.
    """

    name = "a_lin"
    default_beta = 10.0

    def __call__(self, delta: tf.Tensor) -> tf.Tensor:
        return tf.minimum(tf.constant(self.beta, delta.dtype) * delta, tf.constant(self.gamma, delta.dtype))

    def derivative(self, delta: tf.Tensor) -> tf.Tensor:
        beta = tf.constant(self.beta, delta.dtype)
        return tf.where(beta * delta < tf.constant(self.gamma, delta.dtype), beta * tf.ones_like(delta),
                        tf.zeros_like(delta))


class SaturatingActivation(BoundedActivation):
    """a_non, our reconstruction of HaLE's non-linear hardness-aware activation: ψ(δ) = γ tanh(β δ/γ).

    Slope β at δ = 0, bounded above by γ and smooth: the gradient on an instance fades as its distance
    grows instead of stopping at a threshold. HaLE's figure gives β = 3, γ = 10.
    """

    name = "a_non"
    default_beta = 3.0

    def __call__(self, delta: tf.Tensor) -> tf.Tensor:
        gamma = tf.constant(self.gamma, delta.dtype)
        return gamma * tf.tanh(tf.constant(self.beta, delta.dtype) * delta / gamma)

    def derivative(self, delta: tf.Tensor) -> tf.Tensor:
        th = tf.tanh(tf.constant(self.beta, delta.dtype) * delta / tf.constant(self.gamma, delta.dtype))
        return tf.constant(self.beta, delta.dtype) * (1.0 - th * th)


#: Every activation by name (``identity`` when none is given).
ACTIVATIONS: Registry[Callable[..., Activation]] = Registry("activation")
ACTIVATIONS.register("identity", Activation)
ACTIVATIONS.register("power", PowerActivation)
ACTIVATIONS.register("exp", ExpActivation)
ACTIVATIONS.register("a_lin", ClippedLinearActivation)
ACTIVATIONS.register("a_non", SaturatingActivation)


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return ACTIVATIONS.available()


def get(name: str | Activation | None = "identity", **params: Any) -> Activation:
    """Return the activation called ``name`` built with ``params`` (an Activation passes through)."""
    if isinstance(name, Activation):
        return name
    return ACTIVATIONS.build(name or "identity", **params)
