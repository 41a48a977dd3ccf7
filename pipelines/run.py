"""``python -m pipelines.run --dataset=…``: the whole pipeline from raw triples to a SavedModel.

Examples::

    python -m pipelines.run --dataset=kinship --time_budget=60s
    python -m pipelines.run --dataset=wn18rr --model=attH --dim=32 --time_budget=10m
    python -m pipelines.run --dataset=synthetic --synthetic=preset=yago3-10 --time_budget=30m
    python -m pipelines.run --dataset=fb15k-237 --runner=FlinkRunner --beam_options=--flink_master=host:8081
    python -m pipelines.run --dataset=wn18rr --set=loss.negatives=in_batch --set=training.batch_size=1000
    python -m pipelines.run --dataset=wn18rr --set='phases=[]'          # HaLE alone, no negative-sampling phase

Per-dataset defaults: ``pipelines/configs/<dataset>.json``; ``--set section.key=value`` reaches any field.
Errors (bad flags, bad data, a configuration that cannot fit in memory) print one line and exit non-zero.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags  # noqa: E402

from pipelines.config import ConfigError, resolve_config  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("dataset", None, "dataset name (hale_tf.data registry, 'synthetic', or any name with --data_dir)")
flags.DEFINE_string("data_dir", None, "directory with {train,valid,test}.{txt,tsv}[.gz] (skips mirror/download)")
flags.DEFINE_string("pipeline_root", None, "where artifacts go (default: ~/hale_tf_pipelines/<dataset>)")
flags.DEFINE_string("model", None, "model name (hale_tf.models.available())")
flags.DEFINE_integer("dim", None, "embedding dimension", lower_bound=2)
flags.DEFINE_string("activation", None, "hardness-aware activation: identity, power, exp")
flags.DEFINE_string("time_budget", None, "training wall-clock budget, e.g. 90s, 10m, 1h")
flags.DEFINE_string("validate_every", None, "validation period in training time, e.g. 60s")
flags.DEFINE_string("loss", None, "loss name (hale_tf.losses.available())")
flags.DEFINE_string("negatives", None, "HaLE negatives: all, in_batch, sampled")
flags.DEFINE_float("temperature", None, "HaLE temperature τ", lower_bound=0.0)
flags.DEFINE_integer("batch_size", None, "queries per step", lower_bound=1)
flags.DEFINE_float("learning_rate", None, "learning rate", lower_bound=0.0)
flags.DEFINE_string("optimizer", None, "Keras optimiser name (adam, adagrad, adamw, lion, …)")
flags.DEFINE_float("max_epochs", None, "stop after this many epochs", lower_bound=0.0)
flags.DEFINE_integer("patience", None, "early-stopping patience in validations", lower_bound=1)
flags.DEFINE_integer("seed", None, "random seed")
flags.DEFINE_float("min_mrr", None, "bless (and export) only models with at least this test MRR")
flags.DEFINE_integer("num_shards", None, "query TFRecord shards", lower_bound=1)
flags.DEFINE_enum("unseen_policy", None, ["drop", "error", "keep"], "valid/test triples with unseen entities")
flags.DEFINE_string("runner", "FnApiRunner", "Beam runner (FnApiRunner in process; DirectRunner, FlinkRunner, "
                    "SparkRunner, DataflowRunner …)")
flags.DEFINE_multi_string("beam_options", [], "extra Beam pipeline flags, passed through")
flags.DEFINE_integer("num_workers", 1, "local Beam worker processes", lower_bound=1)
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "default", "multi_worker"], "tf.distribute strategy")
flags.DEFINE_multi_string("synthetic", [], "synthetic graph parameter key=value (preset=yago3-10, num_entities=…)")
flags.DEFINE_multi_string("set", [], "config override section.key=value (JSON values)")
flags.DEFINE_bool("force", False, "rerun every component even when cached")
flags.DEFINE_bool("download", True, "allow downloading a dataset that is not found locally")
flags.DEFINE_string("serving_dir", None, "also copy the blessed SavedModel to <serving_dir>/<version>/")


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _synthetic_params(items: list[str]) -> dict[str, Any] | None:
    if not items:
        return None
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--synthetic: expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def _check_names(config: dict[str, Any]) -> None:
    from hale_tf import activations, losses, models

    try:
        models.get_class(config["model"])
    except ValueError as err:
        raise ConfigError(f"--model: {err}") from None
    if config.get("loss", {}).get("name") not in losses.available():
        raise ConfigError(f"--loss: unknown loss {config.get('loss', {}).get('name')!r}; "
                          f"available: {', '.join(losses.available())}")
    phases = config.get("phases") or []
    if not isinstance(phases, list):
        raise ConfigError(f"phases: expected a list of {{until, loss, training}} objects, got {phases!r}")
    from hale_tf.training import parse_phases

    try:
        parsed = parse_phases(phases) if phases else []
    except (TypeError, ValueError) as err:
        raise ConfigError(f"phases: {err}") from None
    for i, phase in enumerate(parsed):
        if phase.loss is not None and phase.loss["name"] not in losses.available():
            raise ConfigError(f"phases[{i}].loss: unknown loss {phase.loss['name']!r}; "
                              f"available: {', '.join(losses.available())}")
    activation = config.get("model_config", {}).get("activation")
    if activation is not None and activation not in activations.available():
        raise ConfigError(f"--activation: unknown activation {activation!r}; "
                          f"available: {', '.join(activations.available())}")


def _print_summary(summary: dict[str, Any], root: Path) -> None:
    metrics = summary["metrics"]
    headline = metrics.get("headline", {})
    print()
    print(f"hale-tf pipeline finished: {summary['dataset']}")
    print("  test (filtered, pessimistic, both sides): " + ", ".join(
        f"{k}={v:.4f}" for k, v in headline.items() if isinstance(v, float)))
    print(f"  model:        {summary['model_dir']}")
    print(f"  saved_model:  {summary['saved_model'] or 'not exported (model not blessed)'}")
    print(f"  metrics:      {summary['artifacts']['Evaluator']}/metrics.json")
    print(f"  tensorboard:  tensorboard --logdir {root}")
    print(f"  summary:      {root / 'summary.json'}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; flags look like --name=value")
    if not FLAGS.dataset:
        _fail("--dataset is required (e.g. --dataset=wn18rr; see README for the list)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    from components.base import ComponentError
    from hale_tf.data.errors import HaleDataError
    from pipelines.pipeline import PipelineOptions, run_pipeline

    try:
        config = resolve_config(FLAGS.dataset, {name: FLAGS[name].value for name in FLAGS}, FLAGS.set)
        _check_names(config)
        root = Path(FLAGS.pipeline_root or Path.home() / "hale_tf_pipelines" / FLAGS.dataset).expanduser()
        options = PipelineOptions(
            dataset=FLAGS.dataset, pipeline_root=root, data_dir=FLAGS.data_dir,
            synthetic_params=_synthetic_params(FLAGS.synthetic), download=FLAGS.download,
            beam_runner=FLAGS.runner, beam_options=list(FLAGS.beam_options), num_workers=FLAGS.num_workers,
            strategy=FLAGS.strategy, force=FLAGS.force, serving_dir=FLAGS.serving_dir,
        )
        summary = run_pipeline(config, options)
    except (ConfigError, HaleDataError, ComponentError) as err:
        _fail(str(err))
    except (ValueError, FileNotFoundError) as err:  # e.g. a memory budget refusal, a bad config value
        _fail(f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (completed components are cached)", file=sys.stderr)
        sys.exit(130)
    _print_summary(summary, root)


def entrypoint() -> None:
    app.run(main)


if __name__ == "__main__":
    entrypoint()
