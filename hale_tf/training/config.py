"""One configuration object per training run, saved as JSON with the run.

:class:`TrainingConfig` is the declared ``training`` section of a run configuration: frozen, and
:meth:`TrainingConfig.from_dict` refuses an unknown field or a value of the wrong type with one line naming the
field, so a typo in a config file or ``--set`` cannot pass silently.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tensorflow as tf

from hale_tf.atomic import atomic_write_text

__all__ = ["LR_DECAYS", "LossSpec", "TrainingConfig", "training_fields"]

LR_DECAYS = ("none", "linear", "cosine")


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters and schedule of :func:`hale_tf.training.fit` (every field is JSON-serialisable).

    Batches and optimiser:
        batch_size: global examples per step (queries for HaLE, triples for the triple baselines); split
            evenly over the replicas, so it must be a multiple of their number. The last incomplete batch
            of an epoch is dropped (each epoch is a fresh permutation, so no example is always dropped).
        optimizer, learning_rate, optimizer_params: an optimiser by name (``adam`` and ``adamw``: the
            fused versions of Keras' own; ``lazy_adam``; any Keras name, ``adagrad``, ``lion`` …;
            :func:`hale_tf.training.optimizers.get`) built inside the strategy scope. Defaults (Adam 1e-2, 500) are the
            HaLE defaults of docs/training.md; the KGEmb baselines use Adam 1e-3.
        seed: seeds the epoch permutations (stateless, from (seed, epoch)) and the negatives (from
            (seed, step)), so a run is a deterministic function of its config and initial weights.

    Learning-rate decay over the run (budgeted training): ``lr_decay`` ``none`` | ``linear`` | ``cosine``
        scales the learning rate by a function of the run's *progress* p ∈ [0, 1], from 1 at p = 0 to
        ``lr_decay_to`` at p = 1: linear 1 − (1 − a)p, cosine a + (1 − a)(1 + cos πp)/2. p is the largest of
        step/max_steps, epochs/max_epochs and training seconds/time_budget_s (the limit that ends the run
        first), so a 10-minute run anneals over its 10 minutes. Set before every step inside the compiled loop (the
        time share of a step is estimated from the measured step time); with step or epoch limits the rate
        is a function of the step, so a resumed run repeats the schedule exactly.

    Stopping (whichever comes first; at least one must be set):
        time_budget_s: wall-clock seconds of *training* (validation and checkpoint time excluded).
        max_epochs, max_steps.
        patience: stop after this many validations without an improvement of the validation MRR by more
            than ``min_delta``; ``restore_best`` then puts back the best weights (also at any other stop).

    Validation (needs validation data or a validation_fn): every ``validate_every_steps`` steps and/or
    every ``validate_every_s`` training seconds, and once at the end (``validate_at_end``).

    Checkpoints (needs a checkpoint_dir): every ``checkpoint_every_steps`` steps and/or
    ``checkpoint_every_s`` training seconds (with a time budget at least every 10 % of it), on SIGINT or
    SIGTERM, and at the end; ``keep_checkpoints`` are kept. Resuming skips an unreadable newest checkpoint
    for the newest readable one.

    Logging: TensorBoard scalars every ``log_every_steps`` steps (needs a log_dir); ``verbose`` 1 shows a
    progress bar, 0 is silent.

    Execution: ``steps_per_call`` steps run inside one ``tf.function`` call (fewer Python round trips);
    the trainer shortens a call so it never overshoots the budget or a validation time by much.
    ``raise_on_non_finite``: a NaN/Inf loss term or gradient stops training with ``NonFiniteError``
    (False: return the result with ``stop_reason="non_finite"`` instead).
    """

    batch_size: int = 500
    optimizer: str = "adam"
    learning_rate: float = 1e-2
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    lr_decay: str = "none"
    lr_decay_to: float = 0.0
    time_budget_s: float | None = None
    max_epochs: float | None = None
    max_steps: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    validate_every_steps: int | None = None
    validate_every_s: float | None = None
    validate_at_end: bool = True
    checkpoint_every_steps: int | None = None
    checkpoint_every_s: float | None = 300.0
    keep_checkpoints: int = 2
    log_every_steps: int = 50
    verbose: int = 1
    steps_per_call: int = 20
    raise_on_non_finite: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("time_budget_s", "max_epochs", "max_steps", "validate_every_steps", "validate_every_s",
                     "checkpoint_every_steps", "checkpoint_every_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {value}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        if not 0.0 <= self.lr_decay_to <= 1.0:
            raise ValueError(f"lr_decay_to must be in [0, 1], got {self.lr_decay_to}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.steps_per_call < 1 or self.log_every_steps < 1 or self.keep_checkpoints < 1:
            raise ValueError("steps_per_call, log_every_steps and keep_checkpoints must be >= 1")

    def lr_factor(self, progress: Any) -> tf.Tensor:
        """The learning-rate multiplier at run progress ``progress`` ∈ [0, 1] (see ``lr_decay``), a tensor."""
        p = tf.clip_by_value(tf.cast(progress, tf.float32), 0.0, 1.0)
        floor = tf.constant(self.lr_decay_to, tf.float32)
        if self.lr_decay == "linear":
            return 1.0 - (1.0 - floor) * p
        if self.lr_decay == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + tf.cos(math.pi * p))
        return tf.ones_like(p)

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with ``changes`` (unknown names are an error, so a typo cannot pass silently)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown TrainingConfig fields: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON data (what :meth:`from_dict` reads back to an equal config)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """The config from ``values`` (missing fields take their defaults). An unknown field or a value of the
        wrong type (``"0.01"`` for ``learning_rate``, ``true`` for ``batch_size``) is a ``TypeError`` whose
        message starts with the field; ranges are checked by the constructor (``ValueError``)."""
        kinds = training_fields()
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise TypeError(f"{unknown[0]}: unknown TrainingConfig field; known: {', '.join(sorted(kinds))}")
        checked = {}
        for name, value in values.items():
            kind, optional = kinds[name]
            checked[name] = _typed(name, value, kind, optional)
        return cls(**checked)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; written to ``path`` as well (atomically) when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> TrainingConfig:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class LossSpec:
    """The ``loss`` section of a run configuration: a loss registry name and its parameters
    (``{"name": "hale", "negatives": "in_batch"}``; the parameters are checked against the loss's own
    ``get_config()`` when the configuration is validated, since each loss declares its own)."""

    name: str = "hale"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name: expected a loss name, got {self.name!r}")
        if not isinstance(self.params, Mapping) or "name" in self.params:
            raise TypeError(f"the parameters of loss {self.name!r} must be an object without 'name'")

    def to_dict(self) -> dict[str, Any]:
        """``{"name": …, **params}``, the form ``hale_tf.losses.get`` and the config files use."""
        return {"name": self.name, **dict(self.params)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LossSpec:
        if not isinstance(values, Mapping) or "name" not in values:
            raise TypeError(f"expected an object with a loss 'name', got {values!r}")
        return cls(values["name"], {k: v for k, v in values.items() if k != "name"})


@functools.cache
def training_fields() -> dict[str, tuple[type, bool]]:
    """(type, optional) of every TrainingConfig field, from its type hints (``float | None`` → (float, True))."""
    kinds: dict[str, tuple[type, bool]] = {}
    for name, hint in typing.get_type_hints(TrainingConfig).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        base = args[0] if optional and args else hint
        kinds[name] = (typing.get_origin(base) or base, optional)
    return kinds


def _typed(name: str, value: Any, kind: type, optional: bool) -> Any:
    """``value`` checked against the field's type: an int is a valid float (and becomes one; Keras refuses an
    integer learning rate), a bool is never a number."""
    if value is None and optional:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is float and number:
        return float(value)
    if (kind is int and number and isinstance(value, int)) or (kind not in (int, float) and isinstance(value, kind)):
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "an object"}
    raise TypeError(f"{name}: expected {expected.get(kind, kind.__name__)}"
                    f"{' or null' if optional else ''}, got {value!r}")
