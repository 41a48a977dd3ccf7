"""Pure tensor geometry (no Keras): the Poincaré ball, Euclidean distances, Givens operators."""

from hale_tf.geometry import euclidean, poincare
from hale_tf.geometry.givens import givens_reflection, givens_rotation
from hale_tf.geometry.poincare import (
    artanh,
    distance,
    expmap0,
    logmap0,
    mobius_add,
    project,
    safe_norm,
    squared_distance,
    squared_distance_to_all,
)

__all__ = [
    "artanh",
    "distance",
    "euclidean",
    "expmap0",
    "givens_reflection",
    "givens_rotation",
    "logmap0",
    "mobius_add",
    "poincare",
    "project",
    "safe_norm",
    "squared_distance",
    "squared_distance_to_all",
]
