"""Trainer: trains a KGE model on a Transform artifact with ``hale_tf.training.fit``.

Output artifact (type ``Model``)::

    model/            hale_tf.models.save_model: model.json (registry name + config) + weights
    training.json     hale_tf.training.TrainingResult (history, validations, seconds, stop reason)
    run_config.json   model, loss and training configuration as resolved (and each phase's)

With ``phases`` (e.g. HaLE for the first 5 % of the budget, then negative sampling) the model trains with
``hale_tf.training.fit_phases``; ``loss`` and ``training`` are then what every phase starts from.

Checkpoints and TensorBoard logs live outside the artifact: checkpoints in a stable *run directory*
``<pipeline_root>/Trainer/runs/<key>/checkpoints``, keyed by the inputs and parameters, and the logs in
``log_dir`` (the pipeline names it readably, ``<pipeline_root>/tensorboard/<dataset>-<model>-d<dim>-<time>``;
default ``<run_dir>/logs``). TensorBoard pointed at the pipeline root shows training live (a curve per
loss, validation metrics, an HParams row for the run, the Poincaré-disk picture as an image at the end),
and a run that is killed resumes from its last
checkpoint when the pipeline is run again with the same configuration (``resume=False``, the pipeline's
``--force``, discards them and trains anew). A run interrupted by SIGINT/SIGTERM checkpoints and publishes
nothing, so the rerun resumes.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from components._transformed import TransformedData
from components.base import Artifact, Component, ComponentSpec, Parameter, write_json
from hale_tf.reciprocal import relation_ids
from hale_tf.training import LossSpec, Phase, TrainingConfig

__all__ = ["STRATEGIES", "TRAINER", "TRAINER_SPEC", "make_strategy"]

logger = logging.getLogger(__name__)

STRATEGIES = ("mirrored", "default", "multi_worker")

TRAINER_SPEC = ComponentSpec(
    name="Trainer",
    artifact_type="Model",
    inputs={"transformed": "Transformed"},
    outputs=("model/model.json", "training.json", "run_config.json"),
    parameters={
        "model": Parameter(str, "rotH", "model name in hale_tf.models"),
        "model_config": Parameter(dict, {}, "model keyword arguments (dim, activation, init_scale, …)"),
        "loss": Parameter(LossSpec, LossSpec("hale"), "the loss, by hale_tf.losses name and parameters"),
        "training": Parameter(TrainingConfig, TrainingConfig(), "the run's hale_tf.training.TrainingConfig"),
        "phases": Parameter(tuple, (), "hale_tf.training.Phase objects (until, loss, training); () = one phase",
                            items=Phase),
        "validation_memory_budget": Parameter(str, "1GiB", "evaluator memory budget for validation"),
        "run_dir": Parameter(str, doc="checkpoints and TensorBoard logs (stable across reruns)",
                             affects_output=False),
        "log_dir": Parameter(str, "", "TensorBoard run directory ('' = <run_dir>/logs)", affects_output=False),
        "strategy": Parameter(str, "mirrored", "tf.distribute strategy", choices=STRATEGIES,
                              affects_output=False),
        "export_embeddings": Parameter(bool, True, "write projector embeddings next to the logs"),
        "resume": Parameter(bool, True, "resume from the run directory's checkpoints (False: train anew and "
                            "discard them)", affects_output=False),
    },
    version="2",
)


def make_strategy(name: str):
    """The ``tf.distribute`` strategy by name.

    ``mirrored``: MirroredStrategy over the local GPUs when there are two or more, else the single-device
    strategy (hale_tf.training.default_strategy: a one-device MirroredStrategy is slower and its collective
    keys clash with any other MirroredStrategy in the process).
    """
    import tensorflow as tf

    from hale_tf.training import default_strategy

    if name == "mirrored":
        return default_strategy()
    if name == "multi_worker":  # cluster given by TF_CONFIG (hale_tf.training.multi_worker)
        return _multi_worker_strategy()
    return tf.distribute.get_strategy()


@functools.cache
def _multi_worker_strategy():
    """One MultiWorkerMirroredStrategy per process: it starts this worker's gRPC server (TF_CONFIG's port)."""
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def _execute(inputs: dict[str, Artifact], output_dir: Path, params: dict[str, Any]) -> None:
    from hale_tf import losses, models, training
    from hale_tf.training.multi_worker import cluster_task

    data = TransformedData(inputs["transformed"])
    num_entities, num_relations = data.num_entities, data.num_relations
    run_dir = Path(params["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    task = cluster_task() if params["strategy"] == "multi_worker" else None
    chief = task is None or task.is_chief
    if not params["resume"] and chief and (run_dir / "checkpoints").exists():
        # Train anew (--force): an old run's checkpoints, even its final one, must not be resumed.
        logger.info("Trainer: resume=False: discarding the checkpoints in %s", run_dir / "checkpoints")
        shutil.rmtree(run_dir / "checkpoints")
    config: TrainingConfig = params["training"]
    loss = losses.get(params["loss"].to_dict())

    strategy = make_strategy(params["strategy"])
    with strategy.scope():
        model = models.get(params["model"], num_entities=num_entities, num_relations=relation_ids(num_relations),
                           **params["model_config"])
    queries = _load_queries(data, num_entities, relation_ids(num_relations))
    validation = training.ValidationData(
        data.triples("valid"), data.filter_index(), num_relations,
        options={"memory_budget": params["validation_memory_budget"]},
    )
    log_dir = Path(params["log_dir"]) if params["log_dir"] else run_dir / "logs"
    _write_hparams(log_dir, params, num_entities, num_relations)
    run = dict(config=config, validation=validation, strategy=strategy, checkpoint_dir=run_dir / "checkpoints",
               log_dir=log_dir, resume=chief or params["resume"])  # non-chief: never a stale one
    if params["phases"]:
        result = training.fit_phases(model, loss, queries, list(params["phases"]), **run)
    else:
        result = training.fit(model, loss, queries, **run)
    if result.stop_reason == "interrupted":
        # SIGINT/SIGTERM: the trainer checkpointed; publish nothing, so that a rerun resumes instead of
        # finding a cached, unfinished model.
        raise KeyboardInterrupt(f"training interrupted at step {result.steps}; checkpoint in {run_dir}")
    trained = result.model if result.model is not None else model
    models.save_model(trained, output_dir / "model")
    result.to_json(output_dir / "training.json")
    write_json(output_dir / "run_config.json", {
        "model": params["model"], "model_config": trained.get_config(), "loss": loss.get_config(),
        "training": config.to_dict(), "phases": result.phases, "num_entities": num_entities,
        "num_relations": num_relations,
        "run_dir": str(run_dir),
    })
    if params["export_embeddings"] and chief:
        from hale_tf.export import export_embeddings

        written = export_embeddings(trained, data.entity_vocab, data.relation_vocab, log_dir,
                                    triples=data.triples("train"))
        if "poincare_disk" in written:
            _image_summary(log_dir, written["poincare_disk"], result.steps)
    best = result.best_step is not None and (result.restored_best or result.best_step == result.steps)
    kept = f"the best weights (step {result.best_step})" if best else f"the last weights (step {result.steps})"
    logger.info("Trainer: stopped (%s) at step %d; keeping %s, valid MRR %.3f", result.stop_reason.replace("_", " "),
                result.steps, kept, result.best_mrr)


def _write_hparams(log_dir: Path, params: dict[str, Any], num_entities: int, num_relations: int) -> None:
    """The run's hyperparameters for TensorBoard's HParams tab (one row per run, next to its metrics)."""
    try:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp
    except ImportError:  # TensorBoard is optional at run time
        return
    config: TrainingConfig = params["training"]
    phases: tuple[Phase, ...] = params["phases"]
    run_loss = params["loss"].name
    values: dict[str, Any] = {
        "model": params["model"], "dim": params["model_config"].get("dim", 0),
        "loss": "+".join(str((p.loss or {}).get("name", run_loss)) for p in phases) or run_loss,
        "phases": len(phases) or 1, "entities": num_entities, "relations": num_relations,
    }
    for key in ("batch_size", "learning_rate", "optimizer", "time_budget_s"):
        if getattr(config, key) is not None:
            values[key] = getattr(config, key)
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in values.items()}
    log_dir.mkdir(parents=True, exist_ok=True)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        # The metrics the table shows (without a config it offers every scalar tag, loss terms included).
        hp.hparams_config(hparams=[hp.HParam(name) for name in values], metrics=[
            hp.Metric("validation/mrr", display_name="valid MRR"),
            hp.Metric("validation/hits@10", display_name="valid hits@10")])
        hp.hparams(values, trial_id=log_dir.name)  # the run's readable name, not a hash


def _image_summary(log_dir: Path, png: Path, step: int) -> None:
    """The Poincaré-disk picture as a TensorBoard image (Images tab) at the run's last step."""
    import tensorflow as tf

    image = tf.io.decode_png(tf.io.read_file(str(png)), channels=3)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        tf.summary.image("poincare_disk", image[None], step=step)


def _load_queries(data: TransformedData, num_entities: int, num_relation_ids: int):
    """The Transform's query TFRecords as the trainer's in-memory CSR queries."""
    from hale_tf.data.records import load_query_set
    from hale_tf.training import TrainQueries

    return TrainQueries.from_queries(
        load_query_set(data.query_pattern), num_entities=num_entities, num_relations=num_relation_ids
    )


def read_training_result(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.path("training.json").read_text(encoding="utf-8"))


TRAINER = Component(spec=TRAINER_SPEC, executor=_execute)
