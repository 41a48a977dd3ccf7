"""The compiled train step: up to ``steps_per_call`` steps in one ``tf.function`` call under a strategy,
with the finiteness check that stops before a non-finite update (see :mod:`hale_tf.training.trainer`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hale_tf import losses as losses_lib
from hale_tf.training import optimizers
from hale_tf.training.config import TrainingConfig
from hale_tf.training.queries import BatchSampler

__all__ = ["current_lr", "find_nonfinite", "make_optimizer", "Stepper", "variable_value"]


def make_optimizer(optimizer: Any, config: TrainingConfig) -> keras.optimizers.Optimizer:
    """A fresh optimiser (inside the current strategy scope) from a name, config dict or instance."""
    if optimizer is None or isinstance(optimizer, str):
        return optimizers.get(optimizer or config.optimizer, config.learning_rate, **config.optimizer_params)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        # Keras' TF optimiser remembers the strategy current at construction: clone inside the scope.
        return type(optimizer).from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)


def _variable_name(variable: Any) -> str:
    return str(getattr(variable, "path", None) or getattr(variable, "name", "?"))


def variable_value(variable: Any) -> tf.Tensor:
    """A variable's value as a tensor (Keras or TF variable, mirrored too)."""
    return tf.convert_to_tensor(getattr(variable, "value", variable))


def current_lr(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate now (a schedule's current value); works for mirrored variables too."""
    return float(variable_value(optimizer.learning_rate).numpy())


def _count_nonfinite(tensor: Any) -> tf.Tensor:
    values = tensor.values if isinstance(tensor, tf.IndexedSlices) else tensor
    return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(values)), tf.float32))


class Stepper:
    """Builds the compiled multi-step train function for one (model, loss, optimiser, strategy)."""

    def __init__(
        self, model: Any, loss: losses_lib.KGELoss, optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy, sampler: BatchSampler, seed: int,
        lr_schedule: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
    ) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.lr_schedule = lr_schedule  # (step, time progress) -> learning rate, set before each step
        self.strategy, self.sampler = strategy, sampler
        self.seed = int(seed)
        self.variables = list(model.trainable_variables)
        self.sparse_gradients = bool(getattr(optimizer, "supports_sparse_gradients", False))
        self.term_names: list[str] = []
        self.train = tf.function(self._train_steps)

    def _replica_step(self, global_indices: tf.Tensor, seed: tf.Tensor) -> tuple[list[Any], tf.Tensor, tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync
        indices = global_indices
        if replicas > 1:
            local = tf.shape(global_indices)[0] // replicas
            start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
            indices = global_indices[start:start + local]
        batch = self.sampler.batch(indices)
        with tf.GradientTape() as tape:
            out = self.loss(self.model, batch, seed=seed)
            count = tf.cast(tf.size(out.per_example), out.per_example.dtype)  # float64 models: the loss's dtype
            # Normalise by the *global* example count: the optimiser sums replica gradients, so the
            # update is the gradient of the mean over the whole global batch (as on one device).
            global_count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count) if replicas > 1 else count
            objective = tf.reduce_sum(out.per_example) / global_count
        grads = tape.gradient(objective, self.variables)
        # Densify the embedding gradients (IndexedSlices from tf.gather) unless the optimiser handles them
        # itself on one replica (LazyAdam deduplicates rows). (1) Keras 3 applies IndexedSlices row-wise
        # with scatter_add *without summing duplicate rows first*, so an entity gathered twice in a batch
        # gets a corrupted Adam moment (updates larger than the learning rate; measured). (2) Their row
        # counts differ per replica, which the collective all-reduce cannot gather.
        keep_sparse = self.sparse_gradients and replicas == 1
        grads = [tf.zeros_like(v) if g is None else g if keep_sparse and isinstance(g, tf.IndexedSlices)
                 else tf.convert_to_tensor(g) for g, v in zip(grads, self.variables, strict=True)]
        self.term_names = sorted(out.terms)
        sums = tf.stack([tf.reduce_sum(out.per_example)] + [tf.reduce_sum(out.terms[k]) for k in self.term_names])
        bad = tf.stack([_count_nonfinite(g) for g in grads])
        return grads, tf.cast(sums / global_count, tf.float32), bad  # the logged values are float32

    def _apply(self, grads: list[Any]) -> None:
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))

    def _train_steps(
        self, batches: tf.Tensor, start: tf.Tensor, count: tf.Tensor, first_step: tf.Tensor,
        time_progress: tf.Tensor, time_progress_per_step: tf.Tensor,
    ) -> Any:
        """Run up to ``count`` steps on ``batches[start:start+count]``; stop before a non-finite update.

        ``time_progress`` (+ ``time_progress_per_step`` per step) estimates the time budget used, for the
        learning-rate schedule. Returns (steps done, values [done, 1 + terms], non-finite gradient counts
        [done, variables], learning rate [done]).
        """
        rates = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        values = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        bad_grads = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        done = tf.constant(0, tf.int32)
        for i in tf.range(count):
            step = first_step + tf.cast(i, tf.int64)
            seed = tf.stack([tf.constant(self.seed, tf.int64), step])
            if self.lr_schedule is not None:
                progress = time_progress + tf.cast(i, tf.float32) * time_progress_per_step
                self.optimizer.learning_rate = self.lr_schedule(step, progress)
            rates = rates.write(i, tf.cast(self.optimizer.learning_rate, tf.float32))
            grads, sums, bad = self.strategy.run(self._replica_step, args=(batches[start + i], seed))
            sums = self.strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
            bad = self.strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None)
            values = values.write(i, sums)
            bad_grads = bad_grads.write(i, bad)
            done = i + 1
            finite = tf.logical_and(tf.reduce_all(tf.math.is_finite(sums)), tf.reduce_all(bad == 0.0))
            if finite:
                self.strategy.run(self._apply, args=(grads,))
            else:
                break
        return done, values.stack(), bad_grads.stack(), rates.stack()


def find_nonfinite(values: np.ndarray, bad: np.ndarray, stepper: Stepper, first_step: int) -> tuple[int, str] | None:
    """(step, description) of the first non-finite loss term or gradient in a call's results, or None."""
    names = ["loss"] + [f"loss term {name!r}" for name in stepper.term_names]
    # Terms before the total: a NaN term makes the total NaN too, and the term is the useful name.
    order = list(range(1, len(names))) + [0]
    for i in range(len(values)):
        for j in order:
            if not math.isfinite(values[i, j]):
                return first_step + i, f"{names[j]} = {values[i, j]}"
        for j in np.flatnonzero(bad[i]):
            variable = _variable_name(stepper.variables[j])
            return first_step + i, f"gradient of variable {variable!r} ({int(bad[i, j])} non-finite entries)"
    return None


_Stepper = Stepper  # the name bench/step_profile.py imports from hale_tf.training.trainer
