"""Optimisers for embedding tables: Adam with a fused update, a lazy (row-sparse) Adam, and name
resolution for the trainer (``adam``/``adamw`` resolve to the fused versions).

:class:`FusedAdam` computes Keras' Adam update of a dense gradient in one kernel instead of a dozen
element-wise passes over the table: on WN18RR (RotH, negative-sampling phase, 2-core CPU) the update
went from 6.7 to 1.1 ms of a ≈ 42 ms step (``bench/step_profile.py``).

A training step touches a few thousand of the N entity rows (the batch's heads and candidates). Keras'
Adam updates every row of every table each step (its moments decay everywhere): ≈ 40 % of a small RotE
HaLE step (B = 250) in the first round, 2–10 ms of a 30–45 ms RotH/AttH step at B = 500 on the 2-core
CPU. :class:`LazyAdam` updates only the rows a step touched, with the Adam formula
on those rows and the global step count for bias correction, as PyTorch's ``SparseAdam`` and the
``LazyAdam`` of tensorflow-addons do.

It is *not* the default: on WN18RR (RotE, HaLE defaults, 3,000 equal steps) it reached validation MRR
0.325 against dense Adam's 0.405, although its steps were ≈ 1.5× faster (docs/training.md). Dense Adam
keeps moving a rare entity for a while after it was touched (momentum), and its second moment decays
between visits, so a rare entity's next update is larger; the lazy rule removes both. It remains useful
where the dense update of huge tables dominates the step (YAGO-scale graphs on CPU).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from hale_tf.registry import Registry

__all__ = ["FusedAdam", "FusedAdamW", "LazyAdam", "get"]


def _tf_variable(variable: Any) -> Any:
    """The ``tf.Variable`` under a Keras variable (inside a strategy's update: the one of this device)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _FusedAdamUpdate:
    """Keras' Adam update of a dense gradient as one fused kernel (``ResourceApplyAdam``).

    Keras 3 spells the update as about a dozen element-wise ops, each a pass over the table that
    allocates its result; on an embedding table whose whole update is memory traffic that is most of
    the optimiser's time. TensorFlow's kernel computes the same formula in one pass::

        m ← m + (g − m)(1 − β₁);  v ← v + (g² − v)(1 − β₂);  θ ← θ − α m / (√v + ε),
        α = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)

    with the same slots (so checkpoints are interchangeable with Keras' Adam). Row-sparse gradients and
    ``amsgrad`` take Keras' own path.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_tf_variable(variable).handle,
            m=_tf_variable(self._momentums[index]).handle,
            v=_tf_variable(self._velocities[index]).handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False,
        )


@keras.saving.register_keras_serializable(package="hale_tf")
class FusedAdam(_FusedAdamUpdate, keras.optimizers.Adam):
    """:class:`keras.optimizers.Adam` with the dense update fused into one kernel (same results)."""


@keras.saving.register_keras_serializable(package="hale_tf")
class FusedAdamW(_FusedAdamUpdate, keras.optimizers.AdamW):
    """:class:`keras.optimizers.AdamW` (decoupled weight decay, applied by Keras before the update) with
    the dense Adam update fused into one kernel (same results)."""


@keras.saving.register_keras_serializable(package="hale_tf")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows with a gradient in this step.

    A row is *touched* when the gradient has an entry for it (row-sparse ``tf.IndexedSlices``, deduplicated
    and summed first) or, for a dense gradient, when any of its values is non-zero (for 1-D variables such
    as bias tables, each element is a row). Touched rows get exactly Keras' Adam update; untouched rows
    keep their value *and* their moments. The dense rule makes a run on several replicas (where gradients
    arrive dense from the all-reduce) follow the single-device sparse run.
    """

    supports_sparse_gradients = True

    def __init__(self, learning_rate: Any = 1e-3, **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam does not implement amsgrad")
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, local_step)) / (1 - tf.pow(beta_1, local_step))
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]

        if isinstance(gradient, tf.IndexedSlices):
            rows, position = tf.unique(gradient.indices)
            g = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position, tf.shape(rows)[0])
            # Gather from the variables (ResourceGather): converting them to tensors first copies the whole
            # table each step (0.64 GB at 5M entities × 32).
            m_rows = tf.gather(_tf_variable(m), rows)
            v_rows = tf.gather(_tf_variable(v), rows)
            m_rows = m_rows + (g - m_rows) * (1 - beta_1)
            v_rows = v_rows + (tf.square(g) - v_rows) * (1 - beta_2)
            self.assign(m, tf.IndexedSlices(m_rows, rows))
            self.assign(v, tf.IndexedSlices(v_rows, rows))
            self.assign_sub(variable, tf.IndexedSlices(m_rows * alpha / (tf.sqrt(v_rows) + self.epsilon), rows))
            return

        g = tf.cast(gradient, dtype)
        nonzero = tf.not_equal(g, 0)
        if g.shape.rank > 1:
            nonzero = tf.reduce_any(nonzero, axis=list(range(1, g.shape.rank)), keepdims=True)
        touched = nonzero
        m_old, v_old = tf.convert_to_tensor(m), tf.convert_to_tensor(v)
        m_new = tf.where(touched, m_old + (g - m_old) * (1 - beta_1), m_old)
        v_new = tf.where(touched, v_old + (tf.square(g) - v_old) * (1 - beta_2), v_old)
        self.assign(m, m_new)
        self.assign(v, v_new)
        self.assign_sub(variable, tf.where(touched, m_new * alpha / (tf.sqrt(v_new) + self.epsilon), 0))


#: Ours by name. ``adam`` and ``adamw`` are the fused versions of Keras' own (same formula and slots; a
#: Keras instance passed to the trainer is used as it is). Other names go to Keras (``adagrad``, ``sgd``…).
OPTIMIZERS: Registry[type[keras.optimizers.Optimizer]] = Registry("optimizer")
OPTIMIZERS.register("adam", FusedAdam, aliases=("fused_adam",))
OPTIMIZERS.register("adamw", FusedAdamW, aliases=("fused_adamw",))
OPTIMIZERS.register("lazy_adam", LazyAdam)


def get(name: str, learning_rate: float, **params: Any) -> keras.optimizers.Optimizer:
    """An optimiser by name: ours (``adam``/``adamw`` fused, ``lazy_adam``) or any Keras optimiser
    (``adagrad``, ``sgd``, …)."""
    if name in OPTIMIZERS:
        return OPTIMIZERS.build(name, learning_rate=learning_rate, **params)
    try:
        return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate, **params}})
    except ValueError as error:
        raise ValueError(
            f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS.available())} "
            f"or a Keras optimizer name ({error})"
        ) from None
