"""Trainer: trains a KGE model on a Transform artifact with ``hale_tf.training.fit``.

Output artifact (type ``Model``)::

    model/            hale_tf.models.save_model: model.json (registry name + config) + weights
    training.json     hale_tf.training.TrainingResult (history, validations, seconds, stop reason)
    run_config.json   model, loss and training configuration as resolved (and each phase's)

With ``phases`` (e.g. HaLE for the first 5 % of the budget, then negative sampling) the model trains with
``hale_tf.training.fit_phases``; ``loss`` and ``training`` are then what every phase starts from.

Checkpoints and TensorBoard logs live in a stable *run directory* outside the artifact,
``<pipeline_root>/Trainer/runs/<key>/{checkpoints,logs}``, keyed by the inputs and parameters: TensorBoard
pointed at the pipeline root shows training live, and a run that is killed resumes from its last
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
        "loss": Parameter(dict, {"name": "hale"}, "loss config for hale_tf.losses.get"),
        "training": Parameter(dict, {}, "hale_tf.training.TrainingConfig fields"),
        "phases": Parameter(list, [], "hale_tf.training.Phase dicts (until, loss, training); [] = one phase"),
        "validation_memory_budget": Parameter(str, "1GiB", "evaluator memory budget for validation"),
        "run_dir": Parameter(str, doc="checkpoints and TensorBoard logs (stable across reruns)",
                             affects_output=False),
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
    config = training.TrainingConfig.from_dict(params["training"])
    loss_config = dict(params["loss"])
    loss = losses.get(loss_config.pop("name"), **loss_config)

    strategy = make_strategy(params["strategy"])
    with strategy.scope():
        model = models.get(
            params["model"], num_entities=num_entities, num_relations=2 * num_relations, **params["model_config"]
        )
    queries = _load_queries(data, num_entities, 2 * num_relations)
    validation = training.ValidationData(
        data.triples("valid"), data.filter_index(), num_relations,
        options={"memory_budget": params["validation_memory_budget"]},
    )
    run = dict(config=config, validation=validation, strategy=strategy, checkpoint_dir=run_dir / "checkpoints",
               log_dir=run_dir / "logs", resume=chief or params["resume"])  # non-chief: never a stale one
    if params["phases"]:
        result = training.fit_phases(model, loss, queries, params["phases"], **run)
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

        export_embeddings(trained, data.entity_vocab, data.relation_vocab, run_dir / "logs",
                          triples=data.triples("train"))
    logger.info("Trainer: %s after %d steps (%.0f s training, %.0f s validation), best valid MRR %.4f",
                result.stop_reason, result.steps, result.train_seconds, result.eval_seconds, result.best_mrr)


def _load_queries(data: TransformedData, num_entities: int, num_relation_ids: int):
    """The Transform's query TFRecords as the trainer's in-memory CSR queries."""
    from hale_tf.data.records import load_query_set
    from hale_tf.training import TrainQueries

    arrays = load_query_set(data.query_pattern).numpy()
    return TrainQueries(
        heads=arrays["heads"], relations=arrays["relations"], offsets=arrays["row_splits"].astype("int64"),
        answers=arrays["values"], num_entities=num_entities, num_relations=num_relation_ids,
    )


def read_training_result(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.path("training.json").read_text(encoding="utf-8"))


TRAINER = Component(spec=TRAINER_SPEC, executor=_execute)
