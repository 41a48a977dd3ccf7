"""The trainer: ``fit(model, loss, train_queries, …) -> TrainingResult``.

How a run works:

- Everything that holds variables (model, optimiser) lives in ``strategy.scope()``; the default strategy
  is ``MirroredStrategy`` over the local GPUs when there are several, else the default single-device
  strategy (see :func:`default_strategy`). A model built outside the scope is rebuilt
  inside it from ``get_config()`` with the same weights, and the trained weights are copied back into
  the caller's model at the end, so ``fit`` trains the model it is given.
- The training queries are constant tensors (CSR answers). Epoch e visits the examples in the order of a
  stateless permutation of (seed, e); batch i of the epoch is rows ``i·B … (i+1)·B`` of it. Each replica
  takes its own contiguous slice of the global batch and builds its :class:`QueryBatch` with TF ops inside
  the compiled step; negatives are drawn statelessly from (seed, step). The data position is therefore
  a function of the step alone, and a checkpoint (model, optimiser, step, run state) resumes exactly.
- One ``tf.function`` call runs up to ``steps_per_call`` steps (a ``tf.range`` loop around
  ``strategy.run``). Per step: loss and gradients per replica, loss normalised by the *global* number of
  examples (replica sums of gradients then give the global-batch gradient), a finiteness check of every
  loss term and every gradient, and the optimiser update only when everything is finite; the loop stops
  at the first non-finite step, which is reported by name (loss term, or gradient of which variable).
- Wall-clock budget: only the train calls count (tracing included); validation, checkpoints and summaries
  are timed separately. Validation MRR (``hale_tf.evaluation.evaluate``, filtered, both directions, or
  any ``validation_fn``) drives early stopping; the best weights are kept in shadow variables (part of
  the checkpoint) and restored at the end.
- Checkpoints (``checkpoint_dir``): periodic (``checkpoint_every_s``, but at least every 10 % of a time
  budget, so a run killed early still resumes near where it was), on SIGINT/SIGTERM (the loop stops at the
  next step boundary, checkpoints and returns ``stop_reason="interrupted"``) and at the end. Resuming takes
  the newest checkpoint that reads back whole: a truncated one (a full disk) is skipped with a warning.

Modules: this one holds :func:`fit` and its run object (:class:`_Run`: set-up, the loop, validation, checkpoints,
the end); the rest is in :mod:`~hale_tf.training.results` (result and error types, validation data),
:mod:`~hale_tf.training.strategy`, :mod:`~hale_tf.training.step` (the compiled step),
:mod:`~hale_tf.training.checkpoints` (run state, checkpoints, signals), :mod:`~hale_tf.training.schedules`
(stopping, call sizes, learning-rate decay) and :mod:`~hale_tf.training.summaries` (history, TensorBoard).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hale_tf import losses as losses_lib
from hale_tf.training import multi_worker, schedules
from hale_tf.training.checkpoints import (
    CHECKPOINT_BUDGET_SHARE,
    RunState,
    checkpoint_period,
    restore_newest_readable,
    run_config_text,
    stop_on_signals,
    write_run_config,
)
from hale_tf.training.config import TrainingConfig
from hale_tf.training.progress import Progress, ProgressContext, end_line, format_metrics, phase_end_line
from hale_tf.training.queries import BatchSampler, TrainQueries, as_train_queries, epoch_permutation
from hale_tf.training.results import NonFiniteError, TrainingResult, ValidationData, ValidationFn
from hale_tf.training.step import Stepper, current_lr, find_nonfinite, make_optimizer, variable_value
from hale_tf.training.strategy import clone_model, created_in, default_strategy, mirrored_strategy
from hale_tf.training.summaries import record, weight_histograms, write_train_summaries

__all__ = ["CHECKPOINT_BUDGET_SHARE", "NonFiniteError", "TrainingResult", "ValidationData", "ValidationFn",
           "default_strategy", "fit", "mirrored_strategy"]

log = logging.getLogger(__name__)

# The names other modules, tests and benches import from here.
_Stepper = Stepper
_checkpoint_period = checkpoint_period


def fit(
    model: Any,
    loss: losses_lib.KGELoss | str | Mapping[str, Any],
    train_queries: TrainQueries | Any,
    *,
    config: TrainingConfig | None = None,
    optimizer: keras.optimizers.Optimizer | str | Mapping[str, Any] | None = None,
    validation: ValidationData | None = None,
    validation_fn: ValidationFn | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
    strategy: tf.distribute.Strategy | None = None,
    resume: bool = True,
    summary_offset: tuple[int, float] = (0, 0.0),
    progress_context: ProgressContext | None = None,
    **overrides: Any,
) -> TrainingResult:
    """Train ``model`` with ``loss`` on ``train_queries`` until a budget, a limit or early stopping.

    Args:
        model: a :class:`hale_tf.models.KGEModel` (any Keras model with ``num_entities``,
            ``num_relations`` and the scoring methods the loss uses). Trained in place.
        loss: a loss object or registry name/config (``hale_tf.losses.get``).
        train_queries: :class:`TrainQueries`, ``hale_tf.data.queries.Queries`` (CSR) or id triples ``[M, 3]``
            (reciprocal queries are added).
        config: a :class:`TrainingConfig`; ``overrides`` replace its fields, e.g.
            ``fit(…, batch_size=500, time_budget_s=600, max_epochs=50, patience=5, seed=0)``.
        optimizer: Keras optimiser (instance, name or config); default from ``config.optimizer`` and
            ``config.learning_rate``. Instances are cloned inside the strategy scope.
        validation: data for the default validation (filtered MRR via ``hale_tf.evaluation.evaluate``).
        validation_fn: ``fn(model) -> mrr | {"mrr": …, …}`` used instead of ``validation``.
        checkpoint_dir: checkpoints (``ckpt-*``) and ``run_config.json``; an existing checkpoint there is
            resumed when ``resume`` (model, optimiser, step, run state and best weights).
        log_dir: TensorBoard summaries.
        strategy: a ``tf.distribute`` strategy (default :func:`default_strategy`). Use one strategy
            object per device set and process (see :func:`mirrored_strategy`).
        summary_offset: (steps, training seconds) added to the step and seconds axes of the TensorBoard
            summaries and of the console lines, so that the phases of :func:`fit_phases` count on one axis.
        progress_context: the phase's label and the run's budget for the console lines (``fit_phases``).

    Returns:
        :class:`TrainingResult`; ``result.model`` is ``model`` with the final (best, if restored) weights.

    Raises:
        NonFiniteError: a loss term or gradient became NaN/Inf (with ``raise_on_non_finite``).
    """
    return _Run(model, loss, train_queries, config=config, optimizer=optimizer, validation=validation,
                validation_fn=validation_fn, checkpoint_dir=checkpoint_dir, log_dir=log_dir, strategy=strategy,
                resume=resume, summary_offset=summary_offset, progress_context=progress_context,
                overrides=overrides).run()


class _Run:
    """One call of :func:`fit`: the set-up (``__init__``), the loop (:meth:`run`), and what the loop does
    between calls of the compiled step (:meth:`validate`, :meth:`save_checkpoint`, :meth:`finish`)."""

    def __init__(
        self, model: Any, loss: losses_lib.KGELoss | str | Mapping[str, Any], train_queries: TrainQueries | Any, *,
        config: TrainingConfig | None, optimizer: keras.optimizers.Optimizer | str | Mapping[str, Any] | None,
        validation: ValidationData | None, validation_fn: ValidationFn | None,
        checkpoint_dir: str | os.PathLike | None, log_dir: str | os.PathLike | None,
        strategy: tf.distribute.Strategy | None, resume: bool, summary_offset: tuple[int, float],
        progress_context: ProgressContext | None, overrides: dict[str, Any],
    ) -> None:
        t_setup = time.perf_counter()
        self.model = model
        config = self.config = (config or TrainingConfig()).replace(**overrides)
        if config.time_budget_s is None and config.max_epochs is None and config.max_steps is None:
            raise ValueError("set at least one of time_budget_s, max_epochs, max_steps")
        loss = self.loss = losses_lib.get(loss)
        strategy = self.strategy = strategy or default_strategy()
        replicas = strategy.num_replicas_in_sync
        # Under MultiWorkerMirroredStrategy: this worker's task (the chief writes checkpoints, logs and config).
        task = self.task = multi_worker.strategy_task(strategy)
        chief = task is None or task.is_chief
        if config.batch_size % replicas:
            raise ValueError(f"batch_size {config.batch_size} is not a multiple of the {replicas} replicas")
        queries = as_train_queries(train_queries, num_entities=model.num_entities, num_relations=model.num_relations)
        _check_ids(queries, model)
        loss.prepare(num_entities=model.num_entities, answer_counts=queries.answer_counts())
        if validation_fn is None and validation is not None:
            validation_fn = validation.make_fn()
        self.validation_fn = validation_fn

        with strategy.scope():
            train_model = self.train_model = model if created_in(strategy, model) else clone_model(model)
            opt = self.optimizer = make_optimizer(optimizer, config)
            opt.build(train_model.trainable_variables)
        sampler = self.sampler = BatchSampler(queries, loss.batch_unit)
        batches_per_epoch = self.batches_per_epoch = sampler.epoch_size // config.batch_size
        if batches_per_epoch < 1:
            raise ValueError(f"batch_size {config.batch_size} exceeds the {sampler.epoch_size} training examples")
        max_steps = self.max_steps = schedules.max_steps_of(config, batches_per_epoch)
        lr_schedule = None
        if config.lr_decay != "none":
            # The undecayed rate: a resumed optimiser holds a decayed value, so it is kept in the checkpoint.
            with strategy.scope():
                base_lr = tf.Variable(current_lr(opt), trainable=False, dtype=tf.float32)
            lr_schedule = functools.partial(schedules.scheduled_lr, config, max_steps, base_lr)
        else:
            base_lr = None
        self.stepper = Stepper(train_model, loss, opt, strategy, sampler, config.seed, lr_schedule)

        # Shadow copies of the best weights and the run state live in the checkpoint, next to the weights.
        self.best_weights = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in train_model.weights]
        state_text = self.state_text = tf.Variable("", dtype=tf.string, trainable=False)
        checkpoint = self.checkpoint = tf.train.Checkpoint(model=train_model, optimizer=opt, best=self.best_weights,
                                                           state=state_text)
        if base_lr is not None:
            checkpoint.base_lr = base_lr
        manager = self.save_manager = self.save_dir = None
        state = self.state = RunState()
        if checkpoint_dir is not None:
            ckpt_path = Path(checkpoint_dir)
            ckpt_path.mkdir(parents=True, exist_ok=True)
            manager = tf.train.CheckpointManager(checkpoint, str(ckpt_path), max_to_keep=config.keep_checkpoints)
            if resume:  # every worker restores the chief's checkpoint
                restored_state = restore_newest_readable(checkpoint, manager, ckpt_path, state_text,
                                                         [*train_model.weights, *opt.variables])
                state = self.state = restored_state or state
            if task is not None:
                multi_worker.check_same_start(strategy, task, state.step, ckpt_path)
            self.save_manager, self.save_dir = manager, ckpt_path
            if not chief:  # saving is collective; a non-chief worker writes a throwaway copy
                self.save_dir = multi_worker.worker_checkpoint_dir(ckpt_path, task)
                self.save_manager = tf.train.CheckpointManager(checkpoint, str(self.save_dir), max_to_keep=1)
            if chief:
                write_run_config(ckpt_path, config, loss, train_model)
        writer = self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir is not None and chief else None
        self.step_offset, self.seconds_offset = int(summary_offset[0]), float(summary_offset[1])
        if writer is not None and state.step == 0:
            with writer.as_default():
                tf.summary.text("config", run_config_text(config, loss, train_model), step=self.step_offset)
        if config.validate_every_s and state.next_validation_s is None:
            state.next_validation_s = config.validate_every_s
        self.checkpoint_every_s = checkpoint_period(config) if manager is not None else config.checkpoint_every_s
        if self.checkpoint_every_s:
            due = state.train_seconds + self.checkpoint_every_s
            state.next_checkpoint_s = due if state.next_checkpoint_s is None else min(state.next_checkpoint_s, due)

        # A live line on a terminal, plain lines per validation elsewhere (hale_tf.training.progress).
        self.context = progress_context or ProgressContext()
        self.progress = None
        if config.verbose:
            self.progress = Progress(self.context, budget_s=config.time_budget_s, max_steps=max_steps,
                                     step_offset=self.step_offset, seconds_offset=self.seconds_offset)
        self.loss_name = str(loss.get_config().get("name", type(loss).__name__))
        self.nonfinite: tuple[int, str] | None = None
        state.other_seconds += time.perf_counter() - t_setup

    def validate(self) -> bool:
        """Validate, record, update the best weights; True when patience has run out."""
        state, config, writer, progress = self.state, self.config, self.writer, self.progress
        t0 = time.perf_counter()
        with self.averaged_weights():  # a weight average (use_ema) is what is validated and kept as best
            value = self.validation_fn(self.train_model)
            metrics = ({"mrr": float(value)} if not isinstance(value, Mapping)
                       else {k: float(v) for k, v in value.items()})
            if self.task is not None:  # early stopping and the best weights follow the chief's numbers everywhere
                agreed, _ = multi_worker.agree_with_chief(self.strategy, [metrics[k] for k in sorted(metrics)])
                metrics = dict(zip(sorted(metrics), map(float, agreed), strict=True))
            mrr = metrics["mrr"]
            if mrr > state.best_mrr + config.min_delta or state.best_step is None:
                state.best_mrr, state.best_step, state.bad_validations = mrr, state.step, 0
                for shadow, v in zip(self.best_weights, self.train_model.weights, strict=True):
                    shadow.assign(v)
            else:
                state.bad_validations += 1
        seconds = time.perf_counter() - t0
        state.eval_seconds += seconds
        entry = {"step": state.step, "epoch": state.step / self.batches_per_epoch, "seconds": state.train_seconds,
                 "eval_seconds": seconds, **metrics}
        state.validations.append(entry)
        if writer is not None:
            with writer.as_default():
                for name, v in metrics.items():
                    tf.summary.scalar(f"validation/{name}", v, step=self.step_offset + state.step)
                    tf.summary.scalar(f"validation_by_seconds/{name}", v,
                                      step=int(round(self.seconds_offset + state.train_seconds)))
                weight_histograms(self.train_model, self.step_offset + state.step)
        if progress is not None:
            progress.validation(state.step, state.train_seconds, metrics, best=state.best_step == state.step)
        # The progress line already says it on the console; the log keeps it for runs without one.
        label = self.context.label
        log.log(logging.DEBUG if progress is not None else logging.INFO, "%sstep %d (%.1f s): valid %s",
                f"{label}: " if label else "", self.step_offset + state.step,
                self.seconds_offset + state.train_seconds,
                format_metrics(metrics, ("mrr", "hits@1", "hits@3", "hits@10")))
        return config.patience is not None and state.bad_validations >= config.patience

    def weight_average(self) -> list[tuple[Any, Any]]:
        """(variable, average) pairs of the optimiser's moving weight average (Keras' ``use_ema``), or [] when
        it keeps none (or has not stepped yet: its averages start at the first update)."""
        opt = self.optimizer
        if not getattr(opt, "use_ema", False) or not opt.built or int(variable_value(opt.iterations)) == 0:
            return []
        # Keras keeps the averages in step with the variables it was built on (private names: Keras 3.x).
        return [(v, a) for v, a in zip(opt._trainable_variables, opt._model_variables_moving_average, strict=True)
                if a is not None]

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The weight average in the model for the block, the trained weights back after it."""
        pairs = self.weight_average()
        saved = [np.array(variable_value(v)) for v, _ in pairs]
        for v, a in pairs:
            v.assign(a)
        try:
            yield
        finally:
            for (v, _), value in zip(pairs, saved, strict=True):
                v.assign(value)

    def save_checkpoint(self) -> None:
        """Checkpoint the weights, the optimiser and the run state (nothing without a checkpoint_dir)."""
        if self.save_manager is None:
            return
        t0 = time.perf_counter()
        self.state_text.assign(self.state.to_json())
        self.save_manager.save(checkpoint_number=self.state.step)
        multi_worker.remove_worker_checkpoints(self.save_dir, self.task)
        self.state.other_seconds += time.perf_counter() - t0

    def run(self) -> TrainingResult:
        """Train until a limit, early stopping, a non-finite value or a signal; then :meth:`finish`."""
        state, config, stepper, strategy = self.state, self.config, self.stepper, self.strategy
        batches_per_epoch, max_steps = self.batches_per_epoch, self.max_steps
        validating = self.validation_fn is not None
        perm_epoch, batches = -1, None
        step_seconds: float | None = None  # running estimate, to size the calls
        stop_reason, message = "", ""
        last_validated = state.validations[-1]["step"] if state.validations else None
        stop_signal: list[int] = []  # SIGINT/SIGTERM received: stop at the next step boundary (exact resume)
        restore_handlers = stop_on_signals(stop_signal)
        # With several workers only the signals they agreed on after a call count (all stop at the same step).
        stop_now = stop_signal if self.task is None else []
        try:
            while True:
                stop_reason = schedules.stop_reason(state, config, max_steps)
                if stop_now:
                    stop_reason = "interrupted"
                    message = f"interrupted by signal {stop_now[0]} at step {state.step}; checkpointed to resume"
                if stop_reason:
                    break
                epoch, position = divmod(state.step, batches_per_epoch)
                if epoch != perm_epoch:
                    order = epoch_permutation(self.sampler.epoch_size, config.seed, epoch)
                    batches = tf.reshape(order[: batches_per_epoch * config.batch_size], [batches_per_epoch, -1])
                    perm_epoch = epoch
                count = schedules.call_size(state, config, batches_per_epoch - position, max_steps, step_seconds)
                time_progress, time_rate = schedules.time_progress(state, config, step_seconds)
                t0 = time.perf_counter()
                done, values, bad, rates = stepper.train(
                    batches, tf.constant(position, tf.int32), tf.constant(count, tf.int32),
                    tf.constant(state.step, tf.int64), tf.constant(time_progress, tf.float32),
                    tf.constant(time_rate, tf.float32),
                )
                done, values, bad, rates = int(done), values.numpy(), bad.numpy(), rates.numpy()
                elapsed = time.perf_counter() - t0
                if self.task is not None:  # the same clock and signals on every worker, so they decide alike
                    (elapsed,), (signalled,) = multi_worker.agree_with_chief(strategy, [elapsed], [bool(stop_signal)])
                    if signalled:
                        stop_now.append(stop_signal[0] if stop_signal else signal.SIGTERM)
                state.train_seconds += elapsed
                if done:
                    step_seconds = elapsed / done if step_seconds is None else 0.5 * (step_seconds + elapsed / done)
                self.nonfinite = find_nonfinite(values, bad, stepper, state.step)
                good = done - (self.nonfinite is not None)
                self._record_call(values, rates, elapsed, good)
                if self.nonfinite is not None:
                    bad_step, tensor = self.nonfinite
                    message = (f"non-finite value at step {bad_step} (epoch {bad_step // batches_per_epoch}, batch "
                               f"{bad_step % batches_per_epoch}): {tensor}; the update of that step was not applied")
                    stop_reason = "non_finite"
                    log.error(message)
                    break
                if validating and schedules.validation_due(state, config):
                    last_validated = state.step
                    if config.validate_every_s:
                        while state.next_validation_s <= state.train_seconds:
                            state.next_validation_s += config.validate_every_s
                    if self.validate():
                        stop_reason = "early_stopping"
                        break
                if schedules.checkpoint_due(state, config):
                    if self.checkpoint_every_s:
                        while state.next_checkpoint_s <= state.train_seconds:
                            state.next_checkpoint_s += self.checkpoint_every_s
                    self.save_checkpoint()
        except KeyboardInterrupt:
            stop_reason, message = "interrupted", "interrupted by the user (KeyboardInterrupt)"
        finally:
            restore_handlers()

        if (validating and config.validate_at_end and last_validated != state.step
                and stop_reason not in ("non_finite", "interrupted")):
            self.validate()
        return self.finish(stop_reason, message)

    def _record_call(self, values: np.ndarray, rates: np.ndarray, elapsed: float, good: int) -> None:
        """A call's ``good`` (finite) steps into the history, TensorBoard and the progress line."""
        state = self.state
        record(state, self.stepper.term_names, values[:good], rates[:good], elapsed, good)
        t_log = time.perf_counter()
        if self.writer is not None:
            write_train_summaries(self.writer, state, self.stepper.term_names, values[:good],
                                  self.config.log_every_steps,
                                  float(rates[good - 1]) if good else current_lr(self.optimizer),
                                  (self.step_offset, self.seconds_offset), self.loss_name)
        state.step += good
        if self.progress is not None and good:
            self.progress.update(state.step, state.train_seconds, float(values[good - 1, 0]))
        state.other_seconds += time.perf_counter() - t_log

    def finish(self, stop_reason: str, message: str) -> TrainingResult:
        """The last checkpoint, the best weights back, the caller's model updated, the result and end line."""
        state, config, progress, context = self.state, self.config, self.progress, self.context
        # Checkpoint the *last* weights (the best ones are in the shadow copies), so that resuming with a
        # larger budget continues the same run rather than restarting from the best point. An interrupted run
        # checkpoints at once and skips the final validation: it is about to exit and will resume.
        self.save_checkpoint()
        restored = False
        averaged = self.weight_average()
        # With a weight average the best weights are averages: restore them even from the last step.
        if config.restore_best and state.best_step is not None and (state.best_step != state.step or averaged):
            for shadow, v in zip(self.best_weights, self.train_model.weights, strict=True):
                v.assign(shadow)
            restored = True
        elif averaged:  # no best to restore: the model ends with the average
            self.optimizer.finalize_variable_values(self.train_model.trainable_variables)
        if self.writer is not None:
            self.writer.flush()
        if self.train_model is not self.model:
            self.model.set_weights(self.train_model.get_weights())
        if not message:
            message = schedules.stop_message(stop_reason, state, config)
        result = TrainingResult(
            history=state.history, validations=state.validations, best_step=state.best_step,
            best_mrr=state.best_mrr if state.best_step is not None else math.nan,
            train_seconds=state.train_seconds, eval_seconds=state.eval_seconds, other_seconds=state.other_seconds,
            steps=state.step, epochs=state.step / self.batches_per_epoch, stop_reason=stop_reason, message=message,
            restored_best=restored, config=config.to_dict(), model=self.model,
        )
        if progress is not None:
            if context.label:
                line = phase_end_line(context.label, stop_reason, steps=self.step_offset + state.step,
                                      phase_seconds=state.train_seconds, last=context.last)
            elif stop_reason in ("non_finite", "interrupted"):
                line = message
            else:
                best = next((v for v in state.validations if v["step"] == state.best_step), None)
                line = end_line(stop_reason, steps=state.step, train_seconds=state.train_seconds,
                                eval_seconds=state.eval_seconds, budget_s=config.time_budget_s,
                                best_step=state.best_step, best_metrics=best)
            progress.close(line)
        if stop_reason == "non_finite" and config.raise_on_non_finite:
            assert self.nonfinite is not None
            raise NonFiniteError(message, step=self.nonfinite[0], tensor=self.nonfinite[1], result=result)
        return result


def _check_ids(queries: TrainQueries, model: Any) -> None:
    if queries.num_queries == 0:
        raise ValueError("no training queries")
    if max(queries.heads.max(), queries.answers.max()) >= model.num_entities:
        raise ValueError(f"entity id out of range for a model with {model.num_entities} entities")
    if queries.relations.max() >= model.num_relations:
        raise ValueError(f"relation id {queries.relations.max()} out of range for a model with "
                         f"{model.num_relations} relation ids (reciprocals need 2R)")
