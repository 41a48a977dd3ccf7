"""Hardness-aware activations ψ applied to the distance part of the score (METHOD.md §2).

A model scores s(q, e) = −ψ(δ(q, e)) + b_h + b_e with δ the squared distance. In a softmax-type loss
the gradient weight on negative e is proportional to exp(s_e/τ); an increasing convex ψ makes that
weight fall faster with distance, so training concentrates on close (hard) negatives without changing τ.

- ``identity``:  ψ(δ) = δ
- ``power``:     ψ(δ) = δ^p, p ≥ 1
- ``exp``:       ψ(δ) = β (exp(min(δ/β, 20)) − 1), β > 0 (δ/β clamped so it cannot overflow)

ψ is part of the model's score (a model hyperparameter), so training, evaluation and the exported
SavedModel all rank with the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

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

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

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
        return tf.pow(tf.maximum(delta, 0.0), tf.cast(self.p, delta.dtype))

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
        beta = tf.cast(self.beta, delta.dtype)
        return beta * tf.math.expm1(tf.minimum(delta / beta, MAX_EXP_ARG))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "beta": self.beta}


_REGISTRY: dict[str, Callable[..., Activation]] = {
    "identity": Activation,
    "power": PowerActivation,
    "exp": ExpActivation,
}


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def get(name: str | Activation | None = "identity", **params: Any) -> Activation:
    """Return the activation called ``name`` built with ``params`` (an Activation passes through)."""
    if isinstance(name, Activation):
        return name
    key = (name or "identity").lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; available: {', '.join(available())}")
    try:
        return _REGISTRY[key](**params)
    except TypeError as err:
        raise ValueError(f"bad parameters for activation {name!r}: {err}") from None
