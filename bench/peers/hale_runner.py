"""hale-tf side of the peer benchmark: one system (or the evaluator-only timing) in its own process.

Runs in the project's environment. A small adapter around the library: it trains what
``python -m pipelines.run --dataset=DATASET`` trains (the loss, training settings and phases of
``pipelines/configs``; only the budget, the validation schedule and the quiet/no-checkpoint switches are
set here) with ``training.fit_phases`` (``training.fit`` when there are no phases), then
``evaluation.evaluate`` on the test split outside the budget.

Usage (``run.py`` does this)::

    python hale_runner.py SPEC.json RESULT.json

``SPEC.json``: ``mode`` (``train`` | ``evalbench``), the data directory with the shared id mapping, the
entity/relation counts, and ``hale`` = ``{"model": NAME, "model_kwargs": {...}, "loss": NAME | config,
"phases": [...], "fit": {...}}``; ``loss`` and ``phases`` default to the pipeline's, and ``fit`` entries
override the pipeline's training settings.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for hale_tf

import numpy as np  # noqa: E402
import peers_common as common  # noqa: E402

from hale_tf.reciprocal import relation_ids

TIE_RULES = ("pessimistic", "realistic", "optimistic")


def load(spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The splits (ids) and ``curve``: the validation triples of the periodic validation (maybe a subset)."""
    data_dir = Path(spec["data_dir"])
    files = {"train": "train.tsv", "valid": "valid.tsv", "test": "test.tsv",
             "curve": spec.get("valid_file", "valid.tsv")}
    return {name: common.read_id_triples(data_dir / file) for name, file in files.items()}


def metrics_of(result: Any) -> dict[str, dict[str, float]]:
    """``{tie_rule: {mrr, mr, hits@k}}`` of both sides from a hale-tf ``EvaluationResult``."""
    side = result.headline_side
    return {rule: {k: float(v) for k, v in result.metrics[side][rule].items()} for rule in TIE_RULES
            if rule in result.metrics[side]}


def configure_threads(threads: int | None) -> None:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def run_train(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with hale-tf defaults for the budget, validating periodically; evaluate the test split after."""
    from hale_tf import losses, models, training
    from hale_tf.evaluation import FilterIndex, evaluate

    cfg = spec["hale"]
    n, r = int(spec["num_entities"]), int(spec["num_relations"])
    splits = load(spec)
    filter_index = FilterIndex.from_triples({k: splits[k] for k in ("train", "valid", "test")},
                                            num_relations=r, num_entities=n)
    queries = training.TrainQueries.from_triples(splits["train"], num_relations=r, num_entities=n)
    model = models.get(cfg["model"], num_entities=n, num_relations=relation_ids(r), **(cfg.get("model_kwargs") or {}))
    from pipelines.config import training_recipe

    recipe = training_recipe(spec["dataset"])
    loss = losses.get(cfg.get("loss", recipe["loss"]))
    phases = cfg.get("phases", recipe["phases"])
    curve_test = bool(spec.get("curve_test", False))

    def validate(trained: Any) -> dict[str, float]:
        res = evaluate(trained, splits["curve"], num_relations=r, filter_index=filter_index, split="valid")
        out = {k: float(v) for k, v in res.headline.items()}
        out["realistic_mrr"] = float(res.get("mrr", tie_rule="realistic"))
        if curve_test:
            test = evaluate(trained, splits["test"], num_relations=r, filter_index=filter_index, split="test")
            out["test_mrr"] = float(test.mrr)
        print(f"[{spec['system']}] valid MRR {out['mrr']:.4f}", flush=True)
        return out

    fit_kwargs: dict[str, Any] = {**recipe["training"], "time_budget_s": float(spec["budget_s"]), "verbose": 0,
                                  "validate_every_s": spec.get("validate_every_s"), **(cfg.get("fit") or {})}
    wall0 = time.perf_counter()
    if phases:
        result = training.fit_phases(model, loss, queries, phases, validation_fn=validate, checkpoint_dir=None,
                                     log_dir=None, **fit_kwargs)
    else:
        result = training.fit(model, loss, queries, validation_fn=validate, checkpoint_dir=None, log_dir=None,
                              **fit_kwargs)
    peak_train = common.peak_rss_bytes()
    trained = result.model or model
    t0 = time.perf_counter()
    test = evaluate(trained, splits["test"], num_relations=r, filter_index=filter_index, split="test")
    test_seconds = time.perf_counter() - t0
    # Examples are queries in HaLE phases and triples in negative-sampling phases.
    parts = result.phases or [{"steps": result.steps, "training": result.config}]
    examples = sum(p["steps"] * int(p["training"]["batch_size"]) for p in parts)
    return {
        "stop_reason": result.stop_reason, "train_seconds": result.train_seconds, "steps": result.steps,
        "examples_seen": examples, "examples_per_epoch": examples / result.epochs if result.epochs else None,
        "epochs": result.epochs,
        **common.throughput(result.epochs, len(splits["train"]), result.train_seconds),
        "examples_per_s": examples / result.train_seconds if result.train_seconds else math.nan,
        "validations": result.validations, "validation_eval_seconds": result.eval_seconds,
        "other_seconds": result.other_seconds,
        "best_step": result.best_step, "best_valid_mrr": result.best_mrr, "restored_best": result.restored_best,
        "test": metrics_of(test), "test_eval_seconds": test_seconds, "test_protocol": _plain(test.protocol),
        "peak_rss_bytes_train": peak_train, "wall_seconds": time.perf_counter() - wall0,
        "num_parameters": int(sum(int(np.prod(v.shape)) for v in trained.weights)),
        "real_floats_per_entity": int(getattr(trained, "dim", 0)) or None,
        "settings": {"model": {"name": cfg["model"], "config": _plain(trained.get_config())},
                     "loss": _plain(loss.get_config()), "fit": result.config, "phases": _plain(result.phases)},
    }


def run_evalbench(spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluator-only timing: randomly initialised models of the given size on the test split."""
    from hale_tf import models
    from hale_tf.evaluation import FilterIndex, evaluate

    n, r = int(spec["num_entities"]), int(spec["num_relations"])
    splits = load(spec)
    filter_index = FilterIndex.from_triples({k: splits[k] for k in ("train", "valid", "test")},
                                            num_relations=r, num_entities=n)
    rows = []
    for entry in spec["models"]:
        model = models.get(
            entry["model"], num_entities=n, num_relations=relation_ids(r), **(entry.get("model_kwargs") or {})
        )
        times, res = [], None
        for _ in range(int(spec.get("repeats", 2))):
            t0 = time.perf_counter()
            res = evaluate(model, splits["test"], num_relations=r, filter_index=filter_index, split="test")
            times.append(time.perf_counter() - t0)
        rows.append({"name": entry["name"], "model": entry["model"], "model_kwargs": entry.get("model_kwargs"),
                     "batch_size": (res.protocol.get("execution", {}).get("query_chunk_size") if res else None),
                     "execution": res.protocol.get("execution") if res else None,
                     "cold_seconds": times[0], "warm_seconds": min(times[1:] or times), "seconds": times,
                     "mrr": float(res.mrr) if res else None})
        print(f"[evalbench hale] {entry['name']}: {times}", flush=True)
    return {"rows": rows}


def _plain(obj: Any) -> Any:
    """JSON-friendly copy of a Keras config (dtype policies etc. become strings)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def versions() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {"hale_tf": _git_revision(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")], **common.environment()}


def _git_revision() -> str | None:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "hale_tf"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("result", type=Path)
    args = parser.parse_args(argv)
    spec = common.read_json(args.spec)
    configure_threads(spec.get("threads"))
    start = time.perf_counter()
    out = run_train(spec) if spec["mode"] == "train" else run_evalbench(spec)
    out.update(format=common.RESULT_FORMAT, library="hale_tf", system=spec["system"], dataset=spec["dataset"],
               mode=spec["mode"], spec=spec, versions=versions(), peak_rss_bytes=common.peak_rss_bytes(),
               process_seconds=time.perf_counter() - start)
    common.write_json(args.result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
