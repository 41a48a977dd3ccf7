"""A run's state besides its weights, and its checkpoints: periodic, on SIGINT/SIGTERM, and resumed from the
newest one that reads back whole."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tensorflow as tf

from hale_tf import losses as losses_lib
from hale_tf.atomic import atomic_write_text
from hale_tf.training.config import TrainingConfig

__all__ = ["CHECKPOINT_BUDGET_SHARE", "RunState", "checkpoint_period", "restore_newest_readable", "run_config_text",
           "stop_on_signals", "write_run_config"]

# The trainer's log: a run's messages (resumed, unreadable checkpoint, signal) come from one logger.
log = logging.getLogger("hale_tf.training.trainer")


STATE_FORMAT = "hale_tf.training.state/1"


@dataclass
class RunState:
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
    def from_json(cls, text: str) -> RunState:
        values = json.loads(text)
        if values.pop("format", None) != STATE_FORMAT:
            raise ValueError("checkpoint holds no hale_tf training state")
        return cls(**values)


#: A time-budgeted run checkpoints at least this often (share of its budget), whatever
#: ``checkpoint_every_s`` says, so a run killed early resumes close to where it was.
CHECKPOINT_BUDGET_SHARE = 0.1


def checkpoint_period(config: TrainingConfig) -> float | None:
    """Training seconds between time-based checkpoints: ``checkpoint_every_s`` or
    :data:`CHECKPOINT_BUDGET_SHARE` of ``time_budget_s``, whichever is smaller (None: no time-based ones)."""
    periods = [p for p in (config.checkpoint_every_s,
                           CHECKPOINT_BUDGET_SHARE * config.time_budget_s if config.time_budget_s else None) if p]
    return min(periods) if periods else None


def stop_on_signals(received: list[int]) -> Callable[[], None]:
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


def restore_newest_readable(
    checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager, directory: Path,
    state_text: tf.Variable, variables: list[Any],
) -> RunState | None:
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
            state = RunState.from_json(state_text.numpy().decode())
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


def run_config_text(config: TrainingConfig, loss: losses_lib.KGELoss, model: Any) -> str:
    return json.dumps(
        {"training": config.to_dict(), "loss": loss.get_config(),
         "model": {"class": type(model).__name__, "config": model.get_config()}},
        indent=2, sort_keys=True, default=str,
    )


def write_run_config(directory: Path, config: TrainingConfig, loss: losses_lib.KGELoss, model: Any) -> None:
    atomic_write_text(directory / "run_config.json", run_config_text(config, loss, model) + "\n")
