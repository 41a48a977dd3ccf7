"""When a run stops, validates and checkpoints, how many steps one call takes, and the learning-rate decay:
pure functions of the run state and its :class:`TrainingConfig`."""

from __future__ import annotations

import math

import tensorflow as tf

from hale_tf.training.checkpoints import RunState
from hale_tf.training.config import TrainingConfig

__all__ = ["call_size", "checkpoint_due", "max_steps_of", "scheduled_lr", "stop_message", "stop_reason",
           "time_progress", "validation_due"]


def max_steps_of(config: TrainingConfig, batches_per_epoch: int) -> int | None:
    limits = []
    if config.max_steps is not None:
        limits.append(int(config.max_steps))
    if config.max_epochs is not None:
        limits.append(max(1, int(round(config.max_epochs * batches_per_epoch))))
    return min(limits) if limits else None


def stop_reason(state: RunState, config: TrainingConfig, max_steps: int | None) -> str:
    if config.time_budget_s is not None and state.train_seconds >= config.time_budget_s:
        return "time_budget"
    if max_steps is not None and state.step >= max_steps:
        return "max_steps" if config.max_steps is not None and state.step >= config.max_steps else "max_epochs"
    return ""


def stop_message(reason: str, state: RunState, config: TrainingConfig) -> str:
    best = (f"; best validation MRR {state.best_mrr:.4f} at step {state.best_step}"
            if state.best_step is not None else "")
    return (f"stopped ({reason}) after {state.step} steps, {state.train_seconds:.1f} s training, "
            f"{state.eval_seconds:.1f} s validation{best}")


def call_size(
    state: RunState, config: TrainingConfig, left_in_epoch: int, max_steps: int | None, step_seconds: float | None
) -> int:
    """Steps for the next call: never past the epoch end, a step limit or a step-based event; and,
    from the measured step time, not much past the time budget or a time-based validation/checkpoint."""
    n = min(config.steps_per_call, left_in_epoch)
    if step_seconds is None:
        return 1  # the first call traces; keep it short so the step time is known early
    if max_steps is not None:
        n = min(n, max_steps - state.step)
    for every in (config.validate_every_steps, config.checkpoint_every_steps):
        if every:
            n = min(n, every - state.step % every)
    for deadline in (config.time_budget_s, state.next_validation_s, state.next_checkpoint_s):
        if deadline is not None:
            n = min(n, max(1, math.ceil((deadline - state.train_seconds) / max(step_seconds, 1e-6))))
    return max(1, n)


def time_progress(state: RunState, config: TrainingConfig, step_seconds: float | None) -> tuple[float, float]:
    """Share of the time budget used so far, and the share one step uses (0, 0 without a budget)."""
    if not config.time_budget_s:
        return 0.0, 0.0
    return state.train_seconds / config.time_budget_s, (step_seconds or 0.0) / config.time_budget_s


def scheduled_lr(
    config: TrainingConfig, max_steps: int | None, base_lr: tf.Variable, step: tf.Tensor, time_progress: tf.Tensor
) -> tf.Tensor:
    """The decayed learning rate at ``step``: progress is the larger of step/max_steps and time used.

    A function of the step alone for step/epoch limits, so a resumed run repeats the schedule exactly.
    """
    progress = time_progress
    if max_steps:
        progress = tf.maximum(progress, tf.cast(step, tf.float32) / float(max_steps))
    return base_lr * config.lr_factor(progress)


def validation_due(state: RunState, config: TrainingConfig) -> bool:
    if config.validate_every_steps and state.step % config.validate_every_steps == 0:
        return True
    return state.next_validation_s is not None and state.train_seconds >= state.next_validation_s


def checkpoint_due(state: RunState, config: TrainingConfig) -> bool:
    if config.checkpoint_every_steps and state.step % config.checkpoint_every_steps == 0:
        return True
    return state.next_checkpoint_s is not None and state.train_seconds >= state.next_checkpoint_s
