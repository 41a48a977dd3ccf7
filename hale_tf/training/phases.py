"""Phased training: one run, several (loss, optimiser) stages on the same model.

Why: HaLE (in-batch contrastive queries) reaches a good MRR within a minute but then memorises the training
graph; negative sampling starts slowly from a random model but generalises better over ten minutes. Starting
with HaLE and continuing with negative sampling on the same weights reached validation MRR 0.40 in 4 minutes
instead of 6 and 0.451 at 10 minutes on WN18RR (docs/training.md, "Phased training").

A phase is ``Phase(until, loss, training)``: it trains until ``until`` (a share in (0, 1]) of the run's
limits has been used (time budget, steps; a share of ``max_epochs`` of its own examples), with its own loss
(``None``: the run's loss) and :class:`TrainingConfig` changes (``learning_rate``, ``optimizer``,
``batch_size`` …). Each phase builds a fresh optimiser. Limits are cumulative: a phase that overshoots its
share shortens the next one, so the run as a whole keeps its budget.

Checkpoints go to ``checkpoint_dir/phase-<i>``; resuming a killed run re-enters the finished phases (each
returns at once from its checkpoint, restoring its best weights) and continues the unfinished one exactly.
TensorBoard summaries of all phases go to one ``log_dir`` on one step/seconds axis.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hale_tf import losses as losses_lib
from hale_tf.training.config import TrainingConfig
from hale_tf.training.progress import ProgressContext, end_line
from hale_tf.training.trainer import TrainingResult, ValidationData, ValidationFn, fit

__all__ = ["Phase", "fit_phases", "parse_phases"]

log = logging.getLogger(__name__)

# A phase's own limits come from its share of the run's; changing them inside a phase would double-count.
_RUN_LIMITS = ("time_budget_s", "max_steps", "max_epochs")


@dataclass(frozen=True)
class Phase:
    """One stage of a phased run (see the module docstring).

    Attributes:
        until: the share of the run's limits at which this phase ends, in (0, 1]; increasing over the
            phases, and 1 for the last.
        loss: a loss registry config (``{"name": "negative_sampling", "num_negatives": 50}``; a bare name
            in :meth:`from_dict`), or None for the run's loss.
        training: :class:`TrainingConfig` fields this phase changes (not the run limits).
    """

    until: float
    loss: Mapping[str, Any] | None = None
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < float(self.until) <= 1.0:
            raise ValueError(f"phase 'until' must be in (0, 1], got {self.until}")
        if self.loss is not None and not (isinstance(self.loss, Mapping) and "name" in self.loss):
            raise ValueError(f"phase 'loss' must be a loss config with a 'name', got {self.loss!r}")
        limits = sorted(set(self.training) & set(_RUN_LIMITS))
        if limits:
            raise ValueError(f"a phase cannot set {limits}: phases share the run's limits through 'until'")
        TrainingConfig().replace(**self.training)  # unknown fields and bad values fail here, not mid-run

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"until": float(self.until)}
        if self.loss is not None:
            out["loss"] = dict(self.loss)
        if self.training:
            out["training"] = dict(self.training)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Phase:
        unknown = sorted(set(values) - {"until", "loss", "training"})
        if unknown:
            raise ValueError(f"unknown phase keys {unknown}; a phase has 'until', 'loss' and 'training'")
        if "until" not in values:
            raise ValueError(f"a phase needs 'until' (a share of the run in (0, 1]), got {dict(values)!r}")
        loss = values.get("loss")
        if isinstance(loss, str):
            loss = {"name": loss}
        return cls(float(values["until"]), copy.deepcopy(dict(loss)) if isinstance(loss, Mapping) else loss,
                   copy.deepcopy(dict(values.get("training", {}))))


def parse_phases(phases: Sequence[Phase | Mapping[str, Any]]) -> list[Phase]:
    """Phases from objects or dicts, checked: ``until`` strictly increasing, the last one 1."""
    out = [p if isinstance(p, Phase) else Phase.from_dict(p) for p in phases]
    if not out:
        raise ValueError("no phases")
    ends = [p.until for p in out]
    if any(b <= a for a, b in zip(ends, ends[1:], strict=False)) or not math.isclose(ends[-1], 1.0):
        raise ValueError(f"phase 'until' values must increase and end at 1, got {ends}")
    return out


def fit_phases(
    model: Any,
    loss: losses_lib.KGELoss | str | Mapping[str, Any],
    train_queries: Any,
    phases: Sequence[Phase | Mapping[str, Any]],
    *,
    config: TrainingConfig | None = None,
    validation: ValidationData | None = None,
    validation_fn: ValidationFn | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
    strategy: Any = None,
    resume: bool = True,
    **overrides: Any,
) -> TrainingResult:
    """Train ``model`` in ``phases`` (see the module docstring); arguments as :func:`fit`.

    ``loss`` is the loss of every phase that names none. Returns one :class:`TrainingResult` for the run:
    histories and validations concatenated on one step/seconds axis (each validation carries its
    ``phase``), times and steps summed, ``epochs`` summed over the phases (each in its own examples), the
    last phase's stop reason, and ``phases`` with each phase's resolved configs and outcome. The weights at
    the end are those of the best validation of the whole run (when ``restore_best``), even when an earlier
    phase holds it.
    """
    phases = parse_phases(phases)
    base = (config or TrainingConfig()).replace(**overrides)
    if base.time_budget_s is None and base.max_epochs is None and base.max_steps is None:
        raise ValueError("set at least one of time_budget_s, max_epochs, max_steps")
    if validation_fn is None and validation is not None:
        validation_fn = validation.make_fn()

    history: dict[str, list[float]] = {}
    validations: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    steps, epochs, train_s, eval_s, other_s = 0, 0.0, 0.0, 0.0, 0.0
    best_mrr, best_step, best_phase, best_weights = -math.inf, None, None, None
    begin, result = 0.0, None
    for i, phase in enumerate(phases):
        phase_config = _phase_config(base, phase, begin, steps, train_s)
        begin = phase.until
        if phase_config is None:
            log.info("phase %d: nothing left of the run's limits; skipped", i)
            continue
        phase_loss = losses_lib.get(copy.deepcopy(dict(phase.loss)) if phase.loss is not None else loss)
        # Every console line of the phase names it and counts the run's steps and seconds.
        context = ProgressContext(label=f"phase {i + 1}/{len(phases)} {phase_loss.get_config().get('name', '')}",
                                  run_seconds=base.time_budget_s, run_steps=base.max_steps,
                                  last=i == len(phases) - 1)
        result = fit(
            model, phase_loss, train_queries, config=phase_config, validation_fn=validation_fn,
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / f"phase-{i}",
            log_dir=log_dir, strategy=strategy, resume=resume, summary_offset=(steps, train_s),
            progress_context=context,
        )
        for name, values in result.history.items():
            shift = train_s if name == "seconds" else 0.0
            # A term only some phases have (HaLE's uniformity, NS's negatives) is NaN-padded to line up.
            column = history.setdefault(name, [math.nan] * steps)
            column.extend(v + shift for v in values)
        for column in history.values():
            column.extend([math.nan] * (steps + result.steps - len(column)))
        validations += [{**v, "step": v["step"] + steps, "seconds": v["seconds"] + train_s, "phase": i}
                        for v in result.validations]
        if result.best_step is not None and result.best_mrr > best_mrr + base.min_delta:
            best_mrr, best_step, best_phase = result.best_mrr, result.best_step + steps, i
            # The model now holds this phase's best weights when it restored them, else its last ones.
            best_weights = model.get_weights() if (result.restored_best or result.best_step == result.steps) else None
        summaries.append({
            "phase": i, "until": phase.until, "loss": phase_loss.get_config(), "training": phase_config.to_dict(),
            "steps": result.steps, "epochs": result.epochs, "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds, "stop_reason": result.stop_reason,
            "best_mrr": result.best_mrr, "best_step": result.best_step,
        })
        steps += result.steps
        epochs += result.epochs
        train_s, eval_s, other_s = (train_s + result.train_seconds, eval_s + result.eval_seconds,
                                    other_s + result.other_seconds)
        if result.stop_reason in ("non_finite", "interrupted"):
            break
    if result is None:
        raise ValueError("no phase ran")
    restored = bool(result.restored_best)
    if base.restore_best and best_phase is not None and best_phase != summaries[-1]["phase"]:
        if best_weights is not None:
            model.set_weights(best_weights)
            restored = True
    # The run's message in the run's steps (a phase's own message counts from the phase's start).
    message = result.message
    if result.stop_reason not in ("non_finite", "interrupted"):
        best = next((v for v in validations if v["step"] == best_step), None)
        message = end_line(result.stop_reason, steps=steps, train_seconds=train_s, eval_seconds=eval_s,
                           budget_s=base.time_budget_s, best_step=best_step, best_metrics=best)
        if base.verbose:
            print(message, flush=True)
    return TrainingResult(
        history=history, validations=validations, best_step=best_step,
        best_mrr=best_mrr if best_step is not None else math.nan,
        train_seconds=train_s, eval_seconds=eval_s, other_seconds=other_s, steps=steps, epochs=epochs,
        stop_reason=result.stop_reason, message=message, restored_best=restored,
        config={**base.to_dict(), "phases": [p.to_dict() for p in phases]}, model=model, phases=summaries,
    )


def _phase_config(base: TrainingConfig, phase: Phase, begin: float, steps: int,
                  train_seconds: float) -> TrainingConfig | None:
    """The phase's TrainingConfig: its changes, and what is left of its cumulative share of the limits
    (None when nothing is)."""
    limits: dict[str, Any] = {}
    if base.time_budget_s is not None:
        limits["time_budget_s"] = phase.until * base.time_budget_s - train_seconds
    if base.max_steps is not None:
        limits["max_steps"] = int(round(phase.until * base.max_steps)) - steps
    if base.max_epochs is not None:
        limits["max_epochs"] = (phase.until - begin) * base.max_epochs
    if any(v <= 0 for v in limits.values()):
        return None
    return base.replace(**phase.training, **limits)
