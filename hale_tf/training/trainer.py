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
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hale_tf import losses as losses_lib
from hale_tf.atomic import atomic_write_text
from hale_tf.training import multi_worker, optimizers
from hale_tf.training.config import TrainingConfig
from hale_tf.training.progress import Progress, ProgressContext, end_line, format_metrics, phase_end_line
from hale_tf.training.queries import BatchSampler, TrainQueries, as_train_queries, epoch_permutation

__all__ = ["NonFiniteError", "TrainingResult", "ValidationData", "default_strategy", "fit", "mirrored_strategy"]

log = logging.getLogger(__name__)

ValidationFn = Callable[[Any], "float | Mapping[str, float]"]
STATE_FORMAT = "hale_tf.training.state/1"


class NonFiniteError(FloatingPointError):
    """A loss term or gradient became NaN/Inf; ``step``, ``tensor`` and the partial ``result`` are attached."""

    def __init__(self, message: str, *, step: int, tensor: str, result: TrainingResult | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.tensor = tensor
        self.result = result


@dataclass
class ValidationData:
    """What the default validation ranks: id triples ``[M, 3]`` (base relations) and the filter.

    ``num_relations`` is R (default: the model's relation ids / 2); ``options`` are passed on to
    :func:`hale_tf.evaluation.evaluate` (e.g. ``memory_budget``, ``sides``).
    """

    triples: np.ndarray
    filter_index: Any = None
    num_relations: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def make_fn(self) -> ValidationFn:
        """The validation function: filtered both-sides metrics from ``hale_tf.evaluation.evaluate``."""
        from hale_tf.evaluation import evaluate  # imported late: the trainer works without it (hooks)

        triples = np.asarray(self.triples)

        def validate(model: Any) -> dict[str, float]:
            relations = self.num_relations or model.num_relations // 2
            setting = "filtered" if self.filter_index is not None else "raw"
            result = evaluate(
                model, triples, num_relations=relations, filter_index=self.filter_index, setting=setting,
                split="valid", **self.options,
            )
            return {k: float(v) for k, v in result.headline.items()}

        return validate


@dataclass
class TrainingResult:
    """What a run did.

    Attributes:
        history: per-step ``loss`` and loss terms (``history[name][i]`` is step ``i``), the training
            ``seconds`` reached after each step, and the ``learning_rate``.
        validations: one dict per validation: ``step``, ``epoch``, ``seconds`` (training seconds),
            ``eval_seconds`` (that validation's own time) and the metrics (``mrr`` …).
        best_step, best_mrr: the best validation (None / NaN without validation).
        train_seconds: training wall-clock (tracing included, validation and checkpoints excluded).
        eval_seconds: total validation time; other_seconds: checkpoints, summaries, setup.
        steps, epochs: steps taken (in total, across resumes) and epochs completed (fractional).
        stop_reason: ``time_budget`` | ``max_steps`` | ``max_epochs`` | ``early_stopping`` |
            ``non_finite`` | ``interrupted``.
        message: human-readable reason (the NaN report for ``non_finite``).
        restored_best: whether the best weights were put back at the end.
        config: the TrainingConfig as a dict (with ``phases`` for a phased run).
        phases: one summary per phase of :func:`hale_tf.training.fit_phases` (empty for a plain run).
    """

    history: dict[str, list[float]]
    validations: list[dict[str, float]]
    best_step: int | None
    best_mrr: float
    train_seconds: float
    eval_seconds: float
    other_seconds: float
    steps: int
    epochs: float
    stop_reason: str
    message: str = ""
    restored_best: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, JSON-ready (NaN/Inf become None so the JSON stays strict)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        return _finite_or_none(json.loads(json.dumps(out, default=float, allow_nan=True)))

    def to_json(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(self.to_dict(), indent=1, allow_nan=False))
        return p


# ----------------------------------------------------------------------------------------- helpers
@functools.cache
def mirrored_strategy(devices: tuple[str, ...] | None = None) -> tf.distribute.MirroredStrategy:
    """The process-wide ``MirroredStrategy`` over ``devices`` (default: all local GPUs, else the CPU).

    Cached on purpose: two MirroredStrategy objects over the same devices in one process reuse the same
    collective instance keys, and the second one's all-reduce then aborts with "Shape mismatch in the
    collective instance …" (reproduced with TF 2.21). Use one strategy object per device set.
    """
    return tf.distribute.MirroredStrategy(list(devices) if devices else None)


def default_strategy() -> tf.distribute.Strategy:
    """``MirroredStrategy`` over the local GPUs when there are two or more, else the default strategy.

    One device gets the default (single-device) strategy on purpose: a one-device MirroredStrategy adds
    ≈ 9 ms per step (Kinship: 52 vs 95 steps/s) and still launches collective ops, whose keys collide
    with those of any other MirroredStrategy in the process (see :func:`mirrored_strategy`).
    """
    if len(tf.config.list_logical_devices("GPU")) >= 2:
        return mirrored_strategy(None)
    return tf.distribute.get_strategy()


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value



def _created_in(strategy: tf.distribute.Strategy, model: Any) -> bool:
    variables = [getattr(v, "value", v) for v in model.variables]
    return all(strategy.extended.variable_created_in_scope(v) for v in variables)


def _make_optimizer(optimizer: Any, config: TrainingConfig) -> keras.optimizers.Optimizer:
    """A fresh optimiser (inside the current strategy scope) from a name, config dict or instance."""
    if optimizer is None or isinstance(optimizer, str):
        return optimizers.get(optimizer or config.optimizer, config.learning_rate, **config.optimizer_params)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        # Keras' TF optimiser remembers the strategy current at construction: clone inside the scope.
        return type(optimizer).from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)


def _variable_name(variable: Any) -> str:
    return str(getattr(variable, "path", None) or getattr(variable, "name", "?"))


def _current_lr(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate now (a schedule's current value); works for mirrored variables too."""
    value = optimizer.learning_rate
    return float(tf.convert_to_tensor(getattr(value, "value", value)).numpy())


def _count_nonfinite(tensor: Any) -> tf.Tensor:
    values = tensor.values if isinstance(tensor, tf.IndexedSlices) else tensor
    return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(values)), tf.float32))


@dataclass
class _RunState:
    """Everything besides the weights that a resumed run needs (stored in the checkpoint as JSON)."""

    step: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    other_seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    validations: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    best_mrr: float = -math.inf
    bad_validations: int = 0
    next_validation_s: float | None = None
    next_checkpoint_s: float | None = None

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, **dataclasses.asdict(self)}, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> _RunState:
        values = json.loads(text)
        if values.pop("format", None) != STATE_FORMAT:
            raise ValueError("checkpoint holds no hale_tf training state")
        return cls(**values)


# -------------------------------------------------------------------------------------- train step
class _Stepper:
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
            count = tf.cast(tf.size(out.per_example), tf.float32)
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
        return grads, sums / global_count, bad

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


# ---------------------------------------------------------------------------------------------- fit
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
        train_queries: :class:`TrainQueries`, a data ``QuerySet`` (CSR) or id triples ``[M, 3]``
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
    t_setup = time.perf_counter()
    config = (config or TrainingConfig()).replace(**overrides)
    if config.time_budget_s is None and config.max_epochs is None and config.max_steps is None:
        raise ValueError("set at least one of time_budget_s, max_epochs, max_steps")
    loss = losses_lib.get(loss)
    strategy = strategy or default_strategy()
    replicas = strategy.num_replicas_in_sync
    # Under MultiWorkerMirroredStrategy: this worker's task (the chief writes checkpoints, logs and config).
    task = multi_worker.strategy_task(strategy)
    chief = task is None or task.is_chief
    if config.batch_size % replicas:
        raise ValueError(f"batch_size {config.batch_size} is not a multiple of the {replicas} replicas")
    queries = as_train_queries(train_queries, num_entities=model.num_entities, num_relations=model.num_relations)
    _check_ids(queries, model)
    loss.prepare(num_entities=model.num_entities, answer_counts=queries.answer_counts())
    if validation_fn is None and validation is not None:
        validation_fn = validation.make_fn()
    validating = validation_fn is not None

    with strategy.scope():
        train_model = model if _created_in(strategy, model) else _clone(model)
        opt = _make_optimizer(optimizer, config)
        opt.build(train_model.trainable_variables)
    sampler = BatchSampler(queries, loss.batch_unit)
    batches_per_epoch = sampler.epoch_size // config.batch_size
    if batches_per_epoch < 1:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {sampler.epoch_size} training examples")
    max_steps = _max_steps(config, batches_per_epoch)
    lr_schedule = None
    if config.lr_decay != "none":
        # The undecayed rate: a resumed optimiser holds a decayed value, so it is kept in the checkpoint.
        with strategy.scope():
            base_lr = tf.Variable(_current_lr(opt), trainable=False, dtype=tf.float32)
        lr_schedule = functools.partial(_scheduled_lr, config, max_steps, base_lr)
    else:
        base_lr = None
    stepper = _Stepper(train_model, loss, opt, strategy, sampler, config.seed, lr_schedule)

    # Shadow copies of the best weights and the run state live in the checkpoint, next to the weights.
    best_weights = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in train_model.weights]
    state_text = tf.Variable("", dtype=tf.string, trainable=False)
    checkpoint = tf.train.Checkpoint(model=train_model, optimizer=opt, best=best_weights, state=state_text)
    if base_lr is not None:
        checkpoint.base_lr = base_lr
    manager = save_manager = save_dir = None
    state = _RunState()
    if checkpoint_dir is not None:
        ckpt_path = Path(checkpoint_dir)
        ckpt_path.mkdir(parents=True, exist_ok=True)
        manager = tf.train.CheckpointManager(checkpoint, str(ckpt_path), max_to_keep=config.keep_checkpoints)
        if resume:  # every worker restores the chief's checkpoint
            restored_state = _restore_newest_readable(checkpoint, manager, ckpt_path, state_text,
                                                      [*train_model.weights, *opt.variables])
            state = restored_state or state
        if task is not None:
            multi_worker.check_same_start(strategy, task, state.step, ckpt_path)
        save_manager, save_dir = manager, ckpt_path
        if not chief:  # saving is collective; a non-chief worker writes a throwaway copy
            save_dir = multi_worker.worker_checkpoint_dir(ckpt_path, task)
            save_manager = tf.train.CheckpointManager(checkpoint, str(save_dir), max_to_keep=1)
        if chief:
            _write_run_config(ckpt_path, config, loss, train_model)
    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir is not None and chief else None
    step_offset, seconds_offset = int(summary_offset[0]), float(summary_offset[1])
    if writer is not None and state.step == 0:
        with writer.as_default():
            tf.summary.text("config", _run_config_text(config, loss, train_model), step=step_offset)
    if config.validate_every_s and state.next_validation_s is None:
        state.next_validation_s = config.validate_every_s
    checkpoint_every_s = _checkpoint_period(config) if manager is not None else config.checkpoint_every_s
    if checkpoint_every_s:
        due = state.train_seconds + checkpoint_every_s
        state.next_checkpoint_s = due if state.next_checkpoint_s is None else min(state.next_checkpoint_s, due)

    # A live line on a terminal, plain lines per validation elsewhere (hale_tf.training.progress).
    context = progress_context or ProgressContext()
    progress = None
    if config.verbose:
        progress = Progress(context, budget_s=config.time_budget_s, max_steps=max_steps,
                            step_offset=step_offset, seconds_offset=seconds_offset)
    loss_name = str(loss.get_config().get("name", type(loss).__name__))

    perm_epoch, batches = -1, None
    step_seconds: float | None = None  # running estimate, to size the calls
    stop_reason, message, nonfinite = "", "", None
    state.other_seconds += time.perf_counter() - t_setup

    def do_validation() -> bool:
        """Validate, record, update the best weights; True when patience has run out."""
        t0 = time.perf_counter()
        value = validation_fn(train_model)
        metrics = {"mrr": float(value)} if not isinstance(value, Mapping) else {k: float(v) for k, v in value.items()}
        if task is not None:  # early stopping and the best weights follow the chief's numbers everywhere
            agreed, _ = multi_worker.agree_with_chief(strategy, [metrics[k] for k in sorted(metrics)])
            metrics = dict(zip(sorted(metrics), map(float, agreed), strict=True))
        seconds = time.perf_counter() - t0
        state.eval_seconds += seconds
        record = {"step": state.step, "epoch": state.step / batches_per_epoch, "seconds": state.train_seconds,
                  "eval_seconds": seconds, **metrics}
        state.validations.append(record)
        mrr = metrics["mrr"]
        if mrr > state.best_mrr + config.min_delta or state.best_step is None:
            state.best_mrr, state.best_step, state.bad_validations = mrr, state.step, 0
            for shadow, v in zip(best_weights, train_model.weights, strict=True):
                shadow.assign(v)
        else:
            state.bad_validations += 1
        if writer is not None:
            with writer.as_default():
                for name, v in metrics.items():
                    tf.summary.scalar(f"validation/{name}", v, step=step_offset + state.step)
                    tf.summary.scalar(f"validation_by_seconds/{name}", v,
                                      step=int(round(seconds_offset + state.train_seconds)))
                _weight_histograms(train_model, step_offset + state.step)
        if progress is not None:
            progress.validation(state.step, state.train_seconds, metrics, best=state.best_step == state.step)
        # The progress line already says it on the console; the log keeps it for runs without one.
        log.log(logging.DEBUG if progress is not None else logging.INFO, "%sstep %d (%.1f s): valid %s",
                f"{context.label}: " if context.label else "", step_offset + state.step,
                seconds_offset + state.train_seconds, format_metrics(metrics, ("mrr", "hits@1", "hits@3", "hits@10")))
        return config.patience is not None and state.bad_validations >= config.patience

    def save_checkpoint() -> None:
        if save_manager is None:
            return
        t0 = time.perf_counter()
        state_text.assign(state.to_json())
        save_manager.save(checkpoint_number=state.step)
        multi_worker.remove_worker_checkpoints(save_dir, task)
        state.other_seconds += time.perf_counter() - t0

    last_validated = state.validations[-1]["step"] if state.validations else None
    stop_signal: list[int] = []  # SIGINT/SIGTERM received: stop at the next step boundary (exact resume)
    restore_handlers = _stop_on_signals(stop_signal)
    # With several workers only the signals they agreed on after a call count (all stop at the same step).
    stop_now = stop_signal if task is None else []
    try:
        while True:
            stop_reason = _stop_reason(state, config, max_steps)
            if stop_now:
                stop_reason = "interrupted"
                message = f"interrupted by signal {stop_now[0]} at step {state.step}; checkpointed to resume"
            if stop_reason:
                break
            epoch, position = divmod(state.step, batches_per_epoch)
            if epoch != perm_epoch:
                order = epoch_permutation(sampler.epoch_size, config.seed, epoch)
                batches = tf.reshape(order[: batches_per_epoch * config.batch_size], [batches_per_epoch, -1])
                perm_epoch = epoch
            count = _call_size(state, config, batches_per_epoch - position, max_steps, step_seconds)
            time_progress, time_rate = _time_progress(state, config, step_seconds)
            t0 = time.perf_counter()
            done, values, bad, rates = stepper.train(
                batches, tf.constant(position, tf.int32), tf.constant(count, tf.int32),
                tf.constant(state.step, tf.int64), tf.constant(time_progress, tf.float32),
                tf.constant(time_rate, tf.float32),
            )
            done, values, bad, rates = int(done), values.numpy(), bad.numpy(), rates.numpy()
            elapsed = time.perf_counter() - t0
            if task is not None:  # the same clock and signals on every worker, so they decide alike
                (elapsed,), (signalled,) = multi_worker.agree_with_chief(strategy, [elapsed], [bool(stop_signal)])
                if signalled:
                    stop_now.append(stop_signal[0] if stop_signal else signal.SIGTERM)
            state.train_seconds += elapsed
            if done:
                step_seconds = elapsed / done if step_seconds is None else 0.5 * (step_seconds + elapsed / done)
            nonfinite = _find_nonfinite(values, bad, stepper, state.step)
            good = done - (nonfinite is not None)
            _record(state, stepper.term_names, values[:good], rates[:good], elapsed, good)
            t_log = time.perf_counter()
            if writer is not None:
                _write_train_summaries(writer, state, stepper.term_names, values[:good], config.log_every_steps,
                                       float(rates[good - 1]) if good else _current_lr(opt),
                                       (step_offset, seconds_offset), loss_name)
            state.step += good
            if progress is not None and good:
                progress.update(state.step, state.train_seconds, float(values[good - 1, 0]))
            state.other_seconds += time.perf_counter() - t_log
            if nonfinite is not None:
                bad_step, tensor = nonfinite
                message = (f"non-finite value at step {bad_step} (epoch {bad_step // batches_per_epoch}, batch "
                           f"{bad_step % batches_per_epoch}): {tensor}; the update of that step was not applied")
                stop_reason = "non_finite"
                log.error(message)
                break
            if validating and _validation_due(state, config):
                last_validated = state.step
                if config.validate_every_s:
                    while state.next_validation_s <= state.train_seconds:
                        state.next_validation_s += config.validate_every_s
                if do_validation():
                    stop_reason = "early_stopping"
                    break
            if _checkpoint_due(state, config):
                if checkpoint_every_s:
                    while state.next_checkpoint_s <= state.train_seconds:
                        state.next_checkpoint_s += checkpoint_every_s
                save_checkpoint()
    except KeyboardInterrupt:
        stop_reason, message = "interrupted", "interrupted by the user (KeyboardInterrupt)"
    finally:
        restore_handlers()

    if (validating and config.validate_at_end and last_validated != state.step
            and stop_reason not in ("non_finite", "interrupted")):
        do_validation()
    # Checkpoint the *last* weights (the best ones are in the shadow copies), so that resuming with a
    # larger budget continues the same run rather than restarting from the best point. An interrupted run
    # checkpoints at once and skips the final validation: it is about to exit and will resume.
    save_checkpoint()
    restored = False
    if config.restore_best and state.best_step is not None and state.best_step != state.step:
        for shadow, v in zip(best_weights, train_model.weights, strict=True):
            v.assign(shadow)
        restored = True
    if writer is not None:
        writer.flush()
    if train_model is not model:
        model.set_weights(train_model.get_weights())
    if not message:
        message = _stop_message(stop_reason, state, config)
    result = TrainingResult(
        history=state.history, validations=state.validations, best_step=state.best_step,
        best_mrr=state.best_mrr if state.best_step is not None else math.nan,
        train_seconds=state.train_seconds, eval_seconds=state.eval_seconds, other_seconds=state.other_seconds,
        steps=state.step, epochs=state.step / batches_per_epoch, stop_reason=stop_reason, message=message,
        restored_best=restored, config=config.to_dict(), model=model,
    )
    if progress is not None:
        if context.label:
            line = phase_end_line(context.label, stop_reason, steps=step_offset + state.step,
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
        raise NonFiniteError(message, step=nonfinite[0], tensor=nonfinite[1], result=result)
    return result


# ------------------------------------------------------------------------------------ fit helpers
#: A time-budgeted run checkpoints at least this often (share of its budget), whatever
#: ``checkpoint_every_s`` says, so a run killed early resumes close to where it was.
CHECKPOINT_BUDGET_SHARE = 0.1


def _checkpoint_period(config: TrainingConfig) -> float | None:
    """Training seconds between time-based checkpoints: ``checkpoint_every_s`` or
    :data:`CHECKPOINT_BUDGET_SHARE` of ``time_budget_s``, whichever is smaller (None: no time-based ones)."""
    periods = [p for p in (config.checkpoint_every_s,
                           CHECKPOINT_BUDGET_SHARE * config.time_budget_s if config.time_budget_s else None) if p]
    return min(periods) if periods else None


def _stop_on_signals(received: list[int]) -> Callable[[], None]:
    """Until the returned function is called, SIGINT and SIGTERM append their number to ``received``
    (the loop then checkpoints and stops at the next step boundary) instead of killing the process; a second
    signal raises ``KeyboardInterrupt`` at once. Only in the main thread (elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        log.warning("received signal %d: checkpointing and stopping after the current steps", signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


def _checkpoint_candidates(manager: tf.train.CheckpointManager, directory: Path) -> list[str]:
    """Checkpoint prefixes to try, newest first: the manager's list, then any other ``ckpt-N`` on disk."""
    listed = list(reversed(manager.checkpoints))
    on_disk = sorted(directory.glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1])
                     if p.stem.split("-")[1].isdigit() else -1, reverse=True)
    extra = [str(p.with_suffix("")) for p in on_disk if str(p.with_suffix("")) not in listed]
    return listed + extra


def _restore_newest_readable(
    checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager, directory: Path,
    state_text: tf.Variable, variables: list[Any],
) -> _RunState | None:
    """Restore the newest checkpoint that reads back whole and return its run state (None: none did).

    A truncated or corrupt newest checkpoint (a full disk, a kill during the write) is skipped with a
    warning in favour of the next older one; when none is readable the variables keep their initial values.
    """
    candidates = _checkpoint_candidates(manager, directory)
    if not candidates:
        return None
    initial = [v.numpy() for v in variables]
    for path in candidates:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
            state = _RunState.from_json(state_text.numpy().decode())
        except Exception as err:  # noqa: BLE001 (tf.errors.*, IndexError "Read less bytes", ValueError …)
            log.warning("checkpoint %s is unreadable (%s: %s); trying an older one", path, type(err).__name__,
                        str(err).splitlines()[0] if str(err) else "")
            continue
        if path != candidates[0]:
            log.warning("resuming from %s: the newer checkpoint(s) could not be read", path)
        log.info("resumed %s at step %d", path, state.step)
        return state
    log.warning("no readable checkpoint in %s; training from the start", directory)
    for v, value in zip(variables, initial, strict=True):
        v.assign(value)
    state_text.assign("")
    return None


def _check_ids(queries: TrainQueries, model: Any) -> None:
    if queries.num_queries == 0:
        raise ValueError("no training queries")
    if max(queries.heads.max(), queries.answers.max()) >= model.num_entities:
        raise ValueError(f"entity id out of range for a model with {model.num_entities} entities")
    if queries.relations.max() >= model.num_relations:
        raise ValueError(f"relation id {queries.relations.max()} out of range for a model with "
                         f"{model.num_relations} relation ids (reciprocals need 2R)")


def _clone(model: Any) -> Any:
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    return clone


def _run_config_text(config: TrainingConfig, loss: losses_lib.KGELoss, model: Any) -> str:
    return json.dumps(
        {"training": config.to_dict(), "loss": loss.get_config(),
         "model": {"class": type(model).__name__, "config": model.get_config()}},
        indent=2, sort_keys=True, default=str,
    )


def _write_run_config(directory: Path, config: TrainingConfig, loss: losses_lib.KGELoss, model: Any) -> None:
    atomic_write_text(directory / "run_config.json", _run_config_text(config, loss, model) + "\n")


def _max_steps(config: TrainingConfig, batches_per_epoch: int) -> int | None:
    limits = []
    if config.max_steps is not None:
        limits.append(int(config.max_steps))
    if config.max_epochs is not None:
        limits.append(max(1, int(round(config.max_epochs * batches_per_epoch))))
    return min(limits) if limits else None


def _stop_reason(state: _RunState, config: TrainingConfig, max_steps: int | None) -> str:
    if config.time_budget_s is not None and state.train_seconds >= config.time_budget_s:
        return "time_budget"
    if max_steps is not None and state.step >= max_steps:
        return "max_steps" if config.max_steps is not None and state.step >= config.max_steps else "max_epochs"
    return ""


def _stop_message(reason: str, state: _RunState, config: TrainingConfig) -> str:
    best = (f"; best validation MRR {state.best_mrr:.4f} at step {state.best_step}"
            if state.best_step is not None else "")
    return (f"stopped ({reason}) after {state.step} steps, {state.train_seconds:.1f} s training, "
            f"{state.eval_seconds:.1f} s validation{best}")


def _call_size(
    state: _RunState, config: TrainingConfig, left_in_epoch: int, max_steps: int | None, step_seconds: float | None
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


def _time_progress(state: _RunState, config: TrainingConfig, step_seconds: float | None) -> tuple[float, float]:
    """Share of the time budget used so far, and the share one step uses (0, 0 without a budget)."""
    if not config.time_budget_s:
        return 0.0, 0.0
    return state.train_seconds / config.time_budget_s, (step_seconds or 0.0) / config.time_budget_s


def _scheduled_lr(
    config: TrainingConfig, max_steps: int | None, base_lr: tf.Variable, step: tf.Tensor, time_progress: tf.Tensor
) -> tf.Tensor:
    """The decayed learning rate at ``step``: progress is the larger of step/max_steps and time used.

    A function of the step alone for step/epoch limits, so a resumed run repeats the schedule exactly.
    """
    progress = time_progress
    if max_steps:
        progress = tf.maximum(progress, tf.cast(step, tf.float32) / float(max_steps))
    return base_lr * config.lr_factor(progress)


def _validation_due(state: _RunState, config: TrainingConfig) -> bool:
    if config.validate_every_steps and state.step % config.validate_every_steps == 0:
        return True
    return state.next_validation_s is not None and state.train_seconds >= state.next_validation_s


def _checkpoint_due(state: _RunState, config: TrainingConfig) -> bool:
    if config.checkpoint_every_steps and state.step % config.checkpoint_every_steps == 0:
        return True
    return state.next_checkpoint_s is not None and state.train_seconds >= state.next_checkpoint_s


def _find_nonfinite(values: np.ndarray, bad: np.ndarray, stepper: _Stepper, first_step: int) -> tuple[int, str] | None:
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


def _record(
    state: _RunState, term_names: list[str], values: np.ndarray, learning_rates: np.ndarray, elapsed: float,
    done: int,
) -> None:
    hist = state.history
    for j, name in enumerate(["loss", *term_names]):
        hist.setdefault(name, []).extend(float(v) for v in values[:, j])
    # Training seconds after each step, spread evenly over the call (only the call's total is measured).
    start = state.train_seconds - elapsed
    hist.setdefault("seconds", []).extend(start + elapsed * (i + 1) / max(done, 1) for i in range(done))
    hist.setdefault("learning_rate", []).extend(float(v) for v in learning_rates[:done])


def _write_train_summaries(
    writer: Any, state: _RunState, term_names: list[str], values: np.ndarray, every: int, learning_rate: float,
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


def _weight_histograms(model: Any, step: int) -> None:
    """Entity norms (tangent-space vectors for hyperbolic models) and per-relation curvatures."""
    entities = getattr(model, "entities", None)
    if entities is not None:
        tf.summary.histogram("weights/entity_norms", tf.norm(tf.convert_to_tensor(entities.embeddings), axis=1),
                             step=step)
    curvature = getattr(model, "curvature", None)
    if curvature is not None and hasattr(curvature, "all_curvatures"):
        tf.summary.histogram("weights/curvatures", curvature.all_curvatures(), step=step)
