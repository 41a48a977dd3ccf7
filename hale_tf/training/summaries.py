"""A run's history and its TensorBoard summaries (per-loss curves, validation metrics, weight histograms)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf.training.checkpoints import RunState

__all__ = ["record", "weight_histograms", "write_train_summaries"]


def record(
    state: RunState, term_names: list[str], values: np.ndarray, learning_rates: np.ndarray, elapsed: float,
    done: int,
) -> None:
    """Append a call's per-step values, training seconds and learning rates to the run's history."""
    hist = state.history
    for j, name in enumerate(["loss", *term_names]):
        hist.setdefault(name, []).extend(float(v) for v in values[:, j])
    # Training seconds after each step, spread evenly over the call (only the call's total is measured).
    start = state.train_seconds - elapsed
    hist.setdefault("seconds", []).extend(start + elapsed * (i + 1) / max(done, 1) for i in range(done))
    hist.setdefault("learning_rate", []).extend(float(v) for v in learning_rates[:done])


def write_train_summaries(
    writer: Any, state: RunState, term_names: list[str], values: np.ndarray, every: int, learning_rate: float,
    offset: tuple[int, float] = (0, 0.0), loss_name: str = "loss",
) -> None:
    """Per-loss tags (``loss/hale``, ``hale/alignment``; ``loss/negative_sampling``): the phases of a run
    use losses of different scales, which one shared curve would show as a cliff."""
    with writer.as_default():
        for i in range(len(values)):
            step = state.step + i
            if step % every:
                continue
            at = offset[0] + step
            tf.summary.scalar(f"loss/{loss_name}", values[i, 0], step=at)
            for j, name in enumerate(term_names):
                tf.summary.scalar(f"{loss_name}/{name}", values[i, j + 1], step=at)
            tf.summary.scalar("train/learning_rate", learning_rate, step=at)
            tf.summary.scalar("train/seconds", offset[1] + state.history["seconds"][step], step=at)


def weight_histograms(model: Any, step: int) -> None:
    """Entity norms (tangent-space vectors for hyperbolic models) and per-relation curvatures."""
    entities = getattr(model, "entities", None)
    if entities is not None:
        tf.summary.histogram("weights/entity_norms", tf.norm(tf.convert_to_tensor(entities.embeddings), axis=1),
                             step=step)
    curvature = getattr(model, "curvature", None)
    if curvature is not None and hasattr(curvature, "all_curvatures"):
        tf.summary.histogram("weights/curvatures", curvature.all_curvatures(), step=step)
