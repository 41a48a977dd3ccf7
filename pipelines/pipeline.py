"""The component graph: ExampleGen → Transform → Trainer → Evaluator → Pusher, run locally with caching.

``run_pipeline`` is what ``python -m pipelines.run`` calls; it can be used from Python too. Every
component's output is a cached artifact under ``<pipeline_root>/<Component>/<fingerprint>/``; the run
configuration (a :class:`pipelines.run_config.RunConfig`, passed down to the components as its typed sections) is
saved as ``<pipeline_root>/run_config.json`` and the outcome as ``summary.json``. A training run's checkpoints
live in ``<pipeline_root>/Trainer/runs/<the Trainer's fingerprint>/``, so a killed run resumes exactly when the
Trainer would produce the same artifact.

TensorBoard: each training run logs to ``<pipeline_root>/tensorboard/<dataset>-<model>-d<dim>-<start time>``
(readable run names); the name is kept in the run directory, so a resumed run keeps logging to the same
TensorBoard run, and ``--force`` (training anew) starts a new one.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.base import Artifact, fingerprint_of, root_lock, run_component
from hale_tf.atomic import atomic_write_json, atomic_write_text
from pipelines.run_config import RunConfig

__all__ = ["PipelineOptions", "run_pipeline", "write_json_atomic"]

logger = logging.getLogger(__name__)


@dataclass
class PipelineOptions:
    """Where and how to run (as opposed to *what* to train, which is the config)."""

    dataset: str
    pipeline_root: Path
    data_dir: str | None = None
    synthetic_params: dict[str, Any] | None = None
    download: bool = True
    beam_runner: str = "FnApiRunner"
    beam_options: list[str] = field(default_factory=list)
    num_workers: int = 1
    strategy: str = "mirrored"
    force: bool = False
    serving_dir: str | None = None
    lock_wait_s: float = 5.0


def write_json_atomic(path: Path, payload: Any) -> None:
    """``payload`` as strict, indented JSON, written atomically (:func:`hale_tf.atomic.atomic_write_json`)."""
    atomic_write_json(path, payload)


TENSORBOARD_DIR = "tensorboard"
_RUN_NAME_FILE = "tensorboard_run.txt"


def tensorboard_run_dir(root: Path, run_dir: Path, dataset: str, config: RunConfig, fresh: bool) -> Path:
    """The readable TensorBoard run directory of the training run in ``run_dir`` (its checkpoints stay
    keyed by the fingerprint): ``<root>/tensorboard/<dataset>-<model>-d<dim>-<YYYYmmdd-HHMMSS>``, chosen
    when the run starts and remembered in ``run_dir`` so that a resumed run continues the same curves."""
    remembered = run_dir / _RUN_NAME_FILE
    if not fresh and remembered.is_file():
        name = remembered.read_text(encoding="utf-8").strip()
        if name and "/" not in name and name not in (".", ".."):
            return root / TENSORBOARD_DIR / name
    dim = config.model_config.get("dim")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.@+=-]+", "_", f"{dataset}-{config.model}" + (f"-d{dim}" if dim else ""))
    candidate, n = f"{name}-{stamp}", 1
    while (root / TENSORBOARD_DIR / candidate).exists():  # two runs started in the same second
        n += 1
        candidate = f"{name}-{stamp}-{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(remembered, candidate + "\n")
    return root / TENSORBOARD_DIR / candidate


def run_pipeline(config: RunConfig | Mapping[str, Any], options: PipelineOptions) -> dict[str, Any]:
    """Run (or reuse from cache) every component and return the summary written to ``summary.json``.

    ``config`` is the typed run configuration (the CLI's :func:`pipelines.run_config.load_run_config`); a
    mapping in the config files' format is read with :meth:`RunConfig.from_dict`.

    The pipeline root is locked for the run (:func:`components.base.root_lock`): a second run on the same
    root waits up to ``options.lock_wait_s`` seconds, then fails naming the process that holds it.
    """
    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    root = Path(options.pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    task = _worker_task(options)
    if task is not None and not task.is_chief:
        # A non-chief worker of a multi-worker run: its own artifacts (same fingerprints as the chief's), the
        # chief's checkpoint directory; it trains in lockstep, then stops (the chief evaluates and exports).
        worker_root = root / "workers" / f"worker-{task.index}"
        worker_root.mkdir(parents=True, exist_ok=True)
        with root_lock(worker_root, options.lock_wait_s):
            return _run_locked(config, options, worker_root, shared_root=root, train_only=True)
    with root_lock(root, options.lock_wait_s):
        return _run_locked(config, options, root)


def _worker_task(options: PipelineOptions) -> Any:
    """This process's task under ``--strategy=multi_worker`` (from ``TF_CONFIG``), else None."""
    if options.strategy != "multi_worker":
        return None
    from hale_tf.training.multi_worker import cluster_task

    return cluster_task()


def _run_locked(config: RunConfig, options: PipelineOptions, root: Path, shared_root: Path | None = None,
                train_only: bool = False) -> dict[str, Any]:
    from components.evaluator import EVALUATOR
    from components.example_gen import EXAMPLE_GEN
    from components.pusher import PUSHER, copy_to_serving
    from components.trainer import TRAINER
    from components.transform import TRANSFORM

    write_json_atomic(root / "run_config.json", {"config": config.to_dict(), "options": options.__dict__})
    timings: dict[str, float] = {}
    cached: list[str] = []
    run_started = time.perf_counter()

    def step(component, inputs: dict[str, Artifact] | None, params: dict[str, Any]) -> Artifact:
        started = time.perf_counter()
        component_dir = root / component.name
        before = {p.name for p in component_dir.iterdir()} if component_dir.is_dir() else set()
        artifact = run_component(component, root, inputs, params, force=options.force)
        timings[component.name] = round(time.perf_counter() - started, 3)
        if not options.force and artifact.uri.name in before:
            cached.append(component.name)
        return artifact

    examples = step(EXAMPLE_GEN, None, {
        "dataset": options.dataset, "data_dir": options.data_dir, "download": options.download,
        "synthetic_params": options.synthetic_params,
    })
    transformed = step(TRANSFORM, {"examples": examples}, {
        **config.transform, "beam_runner": options.beam_runner,
        "beam_options": list(options.beam_options), "num_workers": options.num_workers,
    })
    trainer_params = {
        "model": config.model, "model_config": dict(config.model_config), "loss": config.loss,
        "training": config.training, "phases": config.phases, "strategy": options.strategy,
    }
    # Checkpoints and logs outlive a killed run: keyed by the Trainer's fingerprint (what its artifact depends
    # on), so a rerun that would produce the same artifact resumes them. (Under the shared pipeline root:
    # every worker of a multi-worker run restores the chief's checkpoints.)
    run_dir = (shared_root or root) / "Trainer" / "runs" / fingerprint_of(TRAINER, {"transformed": transformed},
                                                                         trainer_params)
    log_dir = tensorboard_run_dir(root, run_dir, options.dataset, config, fresh=options.force)
    # --force trains anew: the Trainer then starts from scratch instead of resuming the run directory.
    model = step(TRAINER, {"transformed": transformed}, {**trainer_params, "run_dir": str(run_dir),
                                                         "log_dir": str(log_dir), "resume": not options.force})
    if train_only:
        summary = {"dataset": options.dataset, "role": "worker (not chief): trained; the chief evaluates and exports",
                   "model_dir": str(model.path("model")), "component_seconds": timings}
        write_json_atomic(root / "summary.json", summary)
        return summary
    # Published: a rerun hits the cache and --force discards checkpoints, so nothing can resume from them
    # any more (on a YAGO-sized graph they were most of the root's bytes). The chief's alone: workers return
    # above, and the chief runs this after the workers' training ended.
    _drop_checkpoints(run_dir / "checkpoints")
    evaluation = step(EVALUATOR, {"model": model, "transformed": transformed}, dict(config.evaluator))
    pushed = step(PUSHER, {"model": model, "transformed": transformed, "evaluation": evaluation}, {
        "serving_dir": options.serving_dir,
    })

    metrics = json.loads(evaluation.path("metrics.json").read_text(encoding="utf-8"))
    push = json.loads(pushed.path("push.json").read_text(encoding="utf-8"))
    if options.serving_dir and push["pushed"]:
        copied = push.get("serving_copy")
        serving_dir = Path(options.serving_dir).expanduser()
        if not (copied and Path(copied).parent == serving_dir and Path(copied).is_dir()):
            # A cached Pusher copied nothing in this run (serving_dir is not part of its fingerprint).
            push["serving_copy"] = str(copy_to_serving(pushed.path("saved_model"), serving_dir))
            logger.info("Pusher: copied the blessed SavedModel to %s", push["serving_copy"])
    training = json.loads(model.path("training.json").read_text(encoding="utf-8"))
    summary = {
        "dataset": options.dataset,
        "saved_model": str(pushed.path("saved_model")) if push["pushed"] else None,
        "serving_copy": push.get("serving_copy"),
        "blessed": push["pushed"],
        "metrics": metrics,
        "model_dir": str(model.path("model")),
        "tensorboard_logdir": str(root / TENSORBOARD_DIR),
        "tensorboard_run": str(log_dir),
        "poincare_disk": str(log_dir / "poincare_disk.png") if (log_dir / "poincare_disk.png").exists() else None,
        "projector_config": (str(log_dir / "projector_config.pbtxt")
                             if (log_dir / "projector_config.pbtxt").exists() else None),
        "training": {**{k: training.get(k) for k in ("stop_reason", "steps", "epochs", "train_seconds",
                                                      "eval_seconds", "best_step", "best_mrr", "restored_best")},
                     "time_budget_s": config.training.time_budget_s},
        "cached": cached,
        "wall_seconds": round(time.perf_counter() - run_started, 3),
        "artifacts": {name: str(a.uri) for name, a in (
            ("ExampleGen", examples), ("Transform", transformed), ("Trainer", model),
            ("Evaluator", evaluation), ("Pusher", pushed))},
        "component_seconds": timings,
        "config": config.to_dict(),
    }
    write_json_atomic(root / "summary.json", summary)
    return summary


def summary_lines(summary: dict[str, Any], root: Path) -> list[str]:
    """The end-of-run report: test metrics, which weights were exported, what was cached, time against
    the budget, and where TensorBoard, the Poincaré picture and the projector files are."""
    from hale_tf.training.progress import format_metrics, format_seconds

    training = summary.get("training", {})
    headline = summary["metrics"].get("headline", {})
    budget = training.get("time_budget_s")
    timing = f"{format_seconds(summary.get('wall_seconds') or 0.0)} wall"
    if training.get("train_seconds") is not None:
        timing += f"; training {format_seconds(training['train_seconds'])}"
        timing += f" of a {format_seconds(budget)} budget" if budget else ""
        timing += f" + {format_seconds(training.get('eval_seconds') or 0.0)} validation"
    cached = summary.get("cached", [])
    every = ["ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"]
    cached_text = ("everything (nothing was rerun; --force reruns)" if cached == every
                   else ", ".join(cached) + " (reused)" if cached else "nothing (every component ran)")
    best_step, steps = training.get("best_step"), training.get("steps")
    if best_step is not None and (training.get("restored_best") or best_step == steps):
        weights = f"the best validation weights, step {best_step} of {steps} (valid mrr={training['best_mrr']:.3f})"
    else:
        weights = f"the last weights, step {steps}"
    lines = [
        "",
        f"hale-tf pipeline finished: {summary['dataset']} ({timing})",
        "  test (filtered, both sides, pessimistic ties): "
        + (format_metrics(headline, ("mrr", "hits@1", "hits@3", "hits@10", "mr")) or "no metrics (no query ranked)"),
        f"  weights:      {weights}",
        f"  saved_model:  {summary['saved_model'] or 'not exported (model not blessed)'}",
        f"  cached:       {cached_text}",
        f"  tensorboard:  tensorboard --logdir {summary.get('tensorboard_logdir', root)}"
        + (f"   (this run: {Path(summary['tensorboard_run']).name})" if summary.get("tensorboard_run") else ""),
    ]
    if summary.get("poincare_disk"):
        lines.append(f"  poincare:     {summary['poincare_disk']} (also TensorBoard's Images tab)")
    if summary.get("projector_config"):
        lines.append(f"  projector:    {Path(summary['projector_config']).parent} (TensorBoard's Projector tab)")
    lines += [f"  metrics:      {summary['artifacts']['Evaluator']}/metrics.json",
              f"  summary:      {root / 'summary.json'}"]
    return lines


def _drop_checkpoints(directory: Path) -> None:
    """Remove a finished run's checkpoints; a failure only costs disk space, so it is logged, not raised."""
    if directory.exists():
        try:
            shutil.rmtree(directory)
            logger.debug("removed the finished run's checkpoints in %s", directory)
        except OSError as err:
            logger.warning("could not remove the finished run's checkpoints in %s: %s", directory, err)
