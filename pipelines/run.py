"""python -m pipelines.run --dataset=NAME: the whole pipeline from raw triples to a SavedModel.

Examples:
  python -m pipelines.run --dataset=synthetic --time_budget=20s        (offline, a generated graph)
  python -m pipelines.run --dataset=kinship --time_budget=60s          (needs the dataset, see README)
  python -m pipelines.run --dataset=wn18rr --model=attH --dim=32 --time_budget=10m
  python -m pipelines.run --dataset=synthetic --synthetic=preset=yago3-10 --time_budget=30m
  python -m pipelines.run --dataset=fb15k-237 --runner=FlinkRunner --beam_options=--flink_master=host:8081
  python -m pipelines.run --dataset=wn18rr --set=loss.negatives=in_batch --set=training.batch_size=1000
  python -m pipelines.run --dataset=wn18rr --set='phases=[]'     (HaLE alone, no negative-sampling phase)
  python -m pipelines.run --dataset=kinship --print_config       (the resolved configuration, as JSON)
  python -m pipelines.run --dataset=kinship --workers=2 --negatives=all --set='phases=[]'  (2 MWMS workers)
  python -m pipelines.run --dataset=kinship --runner=DaskRunner --beam_options=--dask_client_address=tcp://h:8786

Defaults: pipelines/configs/defaults.json, then pipelines/configs/<dataset>.json (shown per flag below);
--set section.key=value reaches any field. The console is quiet: one line per component and per
validation; -v 1 (--verbosity=1) adds the libraries' logs, -v -1 keeps warnings only.
Errors (bad flags, bad data, a configuration that cannot fit in memory) print one line and exit non-zero:
the whole configuration is validated before any component runs (exit 2), and filesystem errors (a full
or read-only disk, a path that is a file) name the path (exit 1). A second run on the same
--pipeline_root waits a few seconds for the first, then names the process that holds it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from pipelines.console import configure_logging, quiet_native_stderr, set_quiet_environment, silence_broken_pipe

set_quiet_environment()  # before TensorFlow is imported anywhere

from absl import app, flags  # noqa: E402

from pipelines.config import CONFIG_DIR, FLAG_PATHS, SINGLE_RUN_FLAGS, ConfigError, load_defaults  # noqa: E402
from pipelines.run_config import load_run_config  # noqa: E402
from pipelines.validate import check_multi_worker_losses, check_runner  # noqa: E402

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
flags.DEFINE_integer("workers", 1, "training worker processes on this machine: starts this command N times with "
                     "--strategy=multi_worker and the TF_CONFIG of a loopback cluster (docs/scale.md)", lower_bound=1)
flags.DEFINE_multi_string("synthetic", [], "synthetic graph parameter key=value (preset=yago3-10, num_entities=…)")
flags.DEFINE_multi_string("set", [], "config override section.key=value (JSON values)")
flags.DEFINE_bool("force", False, "rerun every component even when cached")
flags.DEFINE_bool("download", True, "allow downloading a dataset that is not found locally")
flags.DEFINE_string("serving_dir", None, "also copy the blessed SavedModel to <serving_dir>/<version>/")
flags.DEFINE_bool("print_config", False, "print the resolved, validated configuration (and the run options) as "
                  "JSON, as run_config.json will hold it, and exit")
# TFX's names for the same things, for users who come from TFX.
flags.DEFINE_alias("beam_pipeline_args", "beam_options")
flags.DEFINE_alias("serving_model_dir", "serving_dir")


def _show_default(path: tuple[str, ...], value: Any) -> str:
    if path == ("training", "time_budget_s") or path == ("training", "validate_every_s"):
        return f"{value:g}s"
    return json.dumps(value)


def _lookup(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _add_effective_defaults() -> None:
    """Append each config flag's effective default to its help: defaults.json, then the datasets whose
    own config differs (the flags themselves default to None, meaning "from the config")."""
    base = load_defaults("defaults")  # defaults.json alone
    datasets = sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem != "defaults")
    for flag, path in FLAG_PATHS.items():
        value = _lookup(base, path)
        differs = []
        for name in datasets:
            other = _lookup(load_defaults(name), path)
            if other is not None and other != value:
                differs.append(f"{name} {_show_default(path, other)}")
        text = (f"default {_show_default(path, value)}" if value is not None
                else "default: the model's or trainer's own")
        if differs:
            text += "; " + ", ".join(differs)
        if flag in SINGLE_RUN_FLAGS and base.get("phases"):
            text += "; given, it replaces the default phases with this one loss"
        FLAGS[flag].help += f" ({text})"


_add_effective_defaults()


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


def _check_paths(root: Path, serving_dir: str | None) -> None:
    """The pipeline root can be a directory (created here) and ``--serving_dir`` is not a file."""
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--pipeline_root: {parent} is a file, not a directory; choose another --pipeline_root")
    if serving_dir is not None:
        serving = Path(serving_dir).expanduser()
        for parent in [serving, *serving.parents]:
            if parent.exists() and not parent.is_dir():
                raise ConfigError(f"--serving_dir: {parent} is a file, not a directory")


def _os_error_line(err: OSError, root: Path | None) -> str:
    """One line for a filesystem error: the path (else the pipeline root it happened under), what went
    wrong, what to do."""
    path = err.filename if err.filename is not None else f"a file under {root}" if root is not None else "?"
    if err.filename2 is not None:
        path = f"{path} -> {err.filename2}"
    reason = err.strerror or str(err)
    hint = {
        errno.ENOSPC: "free some space (or use another --pipeline_root) and rerun; completed components are cached",
        errno.EDQUOT: "free some space (or use another --pipeline_root) and rerun; completed components are cached",
        errno.EROFS: "use a writable --pipeline_root",
        errno.EACCES: "check the permissions or use another --pipeline_root",
        errno.EPERM: "check the permissions or use another --pipeline_root",
        errno.ENOTDIR: "a path component is a file, not a directory",
        errno.EEXIST: "remove it or choose another path",
    }.get(err.errno or 0, "")
    return f"{path}: {reason}" + (f"; {hint}" if hint else "")


# TensorFlow errors that its file system layer raises (a full disk is ResourceExhaustedError).
_TF_IO_ERRORS = ("ResourceExhaustedError", "PermissionDeniedError", "NotFoundError", "FailedPreconditionError",
                 "DataLossError", "AlreadyExistsError", "UnknownError")


def _tf_io_error_line(err: Exception) -> str | None:
    """One line for a TensorFlow I/O error (its message names the path), None for any other exception."""
    kind = type(err)
    if not kind.__module__.startswith("tensorflow") or kind.__name__ not in _TF_IO_ERRORS:
        return None
    message = str(getattr(err, "message", err))
    message = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", message).strip().splitlines()[0]
    message = re.sub(r"\s*\[Op:\w+\]$", "", message)
    return f"{message} ({kind.__name__}); fix the cause and rerun, completed components are cached"


def verbosity() -> int:
    """Our reading of absl's --verbosity/-v: 0 (quiet) unless given (see pipelines.console)."""
    return int(FLAGS.verbosity) if FLAGS["verbosity"].present else 0


def _launch_workers(count: int, root: Path) -> int:
    """Run this command as ``count`` MultiWorkerMirroredStrategy workers on loopback ports; the exit status."""
    from hale_tf.training.multi_worker import launch_local_workers, python_command

    argv, skip_value = [], False
    for arg in sys.argv[1:]:  # drop --workers/--strategy (also as "--workers 2"): the workers get their own
        if skip_value:
            skip_value = False
            continue
        name = re.match(r"--(workers|strategy)(=|$)", arg)
        if name is None:
            argv.append(arg)
        else:
            skip_value = not name.group(2)
    logs = root / "workers"
    print(f"starting {count} training workers (worker 0, the chief, prints here; the others log to "
          f"{logs}/worker-<i>.log)", flush=True)
    return launch_local_workers(python_command("pipelines.run", [*argv, "--strategy=multi_worker"]), count,
                                log_dir=logs)


def _start_worker() -> None:
    """Create the MultiWorkerMirroredStrategy now: it configures collective ops, which TensorFlow allows only
    before its runtime starts (ExampleGen/Transform may start it; "Collective ops must be configured at
    program startup" otherwise). A malformed TF_CONFIG is a one-line error here."""
    from components.trainer import make_strategy
    from hale_tf.training.multi_worker import cluster_task

    cluster_task()
    make_strategy("multi_worker")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; flags look like --name=value")
    if not FLAGS.dataset:
        _fail("--dataset is required (e.g. --dataset=synthetic; see README for the list)")
    level = verbosity()
    configure_logging(level)
    # Beam logs a failed worker step with its traceback; the Transform turns the failure into one line.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    with quiet_native_stderr(level):  # TensorFlow's and CUDA's C++ start-up lines
        import apache_beam  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()
        if FLAGS.strategy != "multi_worker" or FLAGS.workers != 1:
            # Creates the eager context: a GPU machine logs its "Created device" lines here. Not in a
            # multi-worker process, whose strategy must configure collective ops before the runtime starts.
            tf.constant(0)
    from components.base import ComponentError
    from hale_tf.data.errors import HaleDataError
    from pipelines.pipeline import PipelineOptions, run_pipeline, summary_lines

    root: Path | None = None
    try:
        if FLAGS.strategy == "multi_worker" and FLAGS.workers == 1:
            _start_worker()  # before anything else can start TensorFlow's runtime (validation does)
        # Loaded and checked once, before any component runs (one line naming the flag, or the key and the
        # file or --set, exit 2), then passed down as typed objects.
        notices: list[str] = []
        config = load_run_config(FLAGS.dataset, {name: FLAGS[name].value for name in FLAGS}, FLAGS.set,
                                 [name for name in FLAG_PATHS if FLAGS[name].present], notices)
        for notice in notices:
            print(f"note: {notice}", file=sys.stderr)
        check_runner(FLAGS.runner)
        if FLAGS.strategy == "multi_worker" or FLAGS.workers > 1:
            check_multi_worker_losses(config.to_dict())
        root = Path(FLAGS.pipeline_root or Path.home() / "hale_tf_pipelines" / FLAGS.dataset).expanduser()
        _check_paths(root, FLAGS.serving_dir)
        options = PipelineOptions(
            dataset=FLAGS.dataset, pipeline_root=root, data_dir=FLAGS.data_dir,
            synthetic_params=_synthetic_params(FLAGS.synthetic), download=FLAGS.download,
            beam_runner=FLAGS.runner, beam_options=list(FLAGS.beam_options), num_workers=FLAGS.num_workers,
            strategy=FLAGS.strategy, force=FLAGS.force, serving_dir=FLAGS.serving_dir,
        )
        if FLAGS.print_config:  # what run_config.json will hold, then stop
            print(json.dumps({"config": config.to_dict(), "options": options.__dict__}, indent=2, sort_keys=True,
                             default=str))
            return
        if FLAGS.workers > 1 and not os.environ.get("TF_CONFIG"):
            sys.exit(_launch_workers(FLAGS.workers, root))
        summary = run_pipeline(config, options)
        assert root is not None
    except BrokenPipeError:  # stdout closed by its reader (| head): handled, without a traceback, by entrypoint
        raise
    except (ConfigError, HaleDataError, ComponentError) as err:
        _fail(str(err))
    except ValueError as err:  # e.g. a memory budget refusal
        _fail(f"{type(err).__name__}: {err}")
    except OSError as err:  # a read-only or full disk, a path that is a file …: the path, not a traceback
        print(f"error: {_os_error_line(err, root)}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # TensorFlow's own file I/O (checkpoints, SavedModel) raises its OpErrors
        line = _tf_io_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (completed components are cached)", file=sys.stderr)
        sys.exit(130)
    if "role" in summary:  # a non-chief worker of a multi-worker run
        print(f"hale-tf worker finished: {summary['role']}")
        return
    print("\n".join(summary_lines(summary, root)))


_HELP_FLAGS = ("--help", "-?", "--helpshort", "--helpfull", "-help")


def entrypoint() -> None:
    try:
        app.run(main)
    except BrokenPipeError:  # stdout's reader went away (| head): not an error of ours, and no traceback
        silence_broken_pipe()
        sys.exit(0)
    except SystemExit as done:
        # absl exits 1 after printing the help that was asked for; asking for help is not a failure.
        if done.code == 1 and any(arg in _HELP_FLAGS for arg in sys.argv[1:]):
            sys.exit(0)
        raise


if __name__ == "__main__":
    entrypoint()
