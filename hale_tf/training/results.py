"""What a training run returns and takes besides the model: :class:`TrainingResult`, :class:`NonFiniteError`
and the default validation (:class:`ValidationData`)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hale_tf.atomic import atomic_write_text
from hale_tf.reciprocal import base_relation_count

__all__ = ["NonFiniteError", "TrainingResult", "ValidationData", "ValidationFn"]


ValidationFn = Callable[[Any], "float | Mapping[str, float]"]


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
            relations = self.num_relations or base_relation_count(model.num_relations)
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


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value
