"""Time to accuracy: HaLE vs negative sampling vs 1-vs-all cross-entropy under one wall-clock budget.

Each (model, method) pair trains for the same budget of *training* seconds (validation excluded and
reported separately), one after another, at d = 32. Prints the validation MRR reached at 1, 2, 5 and 10
minutes and the final test MRR / Hits@1/3/10 (filtered, both directions, pessimistic ties; the standard
protocol of METHOD.md §4) of the best-validation weights; writes a JSON file and a PNG plot of
validation MRR against training seconds. SIGINT/SIGTERM stops the current run at the next step (its
row covers the seconds it trained), starts no further run, and the files are named ``…-interrupted``
with ``"complete": false``, so a cut-short report never passes for a finished one.

    python bench/time_to_accuracy.py --budget 10m --models rotH,attH,rotE --methods hale,ns,softmax
    python bench/time_to_accuracy.py --budget 60s --models rotH --methods hale \\
        --set hale.loss.temperature=0.5 --set hale.lr=0.005 --tag tau0.5

Methods (``--methods``; ``--set METHOD.KEY=VALUE`` overrides any field, e.g. ``hale.batch_size=1000``,
``hale.loss.negatives=all``, ``hale.model.activation=power``, ``hale.model.activation_params={"p": 1.5}``,
any other TrainingConfig field as ``hale.training.FIELD``, e.g. ``hale.training.lr_decay=cosine``):

- ``hale``: HaLE loss with the defaults chosen in docs/training.md (N3 0.01, AdamW weight decay 0.05);
- ``hale-plain``: the same without N3 and weight decay (the first round's defaults);
- ``ns``: KGEmb recipe: 50 uniform negatives per positive, Adam 1e-3, batch 500 triples;
- ``sa``: the same with RotatE self-adversarial weighting (α = 1);
- ``hale+ns``: ``hale-plain`` for the first 20 % of the budget, then ``ns`` on the same model (phases:
  ``--set 'hale+ns.phases=[["hale", 0.3], ["ns", 1.0]]'``);
- ``default``: what ``python -m pipelines.run --dataset=DATASET`` trains (pipelines/configs: loss,
  training and phases; the model is the bench's);
- ``softmax``: 1-vs-all cross-entropy (KGEmb "full"), Adam 1e-3, batch 500 triples;
- ``hale-all``: HaLE against every entity (fused all-entity kernel), τ = 1, filtered, Adam 5e-3 with a
  cosine decay, batch 500 queries (the activation: ``--set hale-all.model.activation=a_non``);
- ``bce``: 1-vs-all binary cross-entropy over queries.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

from hale_tf import data, models, training  # noqa: E402
from hale_tf.atomic import atomic_open, atomic_write_text  # noqa: E402
from hale_tf.evaluation import FilterIndex, evaluate  # noqa: E402
from hale_tf.reciprocal import relation_ids

# One dict per method: loss (registry config), model (extra model config), optimiser and batch.
METHODS: dict[str, dict[str, Any]] = {
    "hale": {
        "loss": {"name": "hale", "negatives": "in_batch", "temperature": 2.0, "filtered": True, "n3_weight": 0.01},
        "model": {},
        "optimizer": "adamw", "lr": 1e-2, "batch_size": 500,
        "training": {"optimizer_params": {"weight_decay": 0.05}},
    },
    # The defaults of the first round (no N3, Adam without weight decay), for comparison.
    "hale-plain": {
        "loss": {"name": "hale", "negatives": "in_batch", "temperature": 2.0, "filtered": True},
        "model": {},
        "optimizer": "adam", "lr": 1e-2, "batch_size": 500,
    },
    "ns": {
        "loss": {"name": "negative_sampling", "num_negatives": 50},
        "model": {}, "optimizer": "adam", "lr": 1e-3, "batch_size": 500,
    },
    "sa": {
        "loss": {"name": "self_adversarial", "num_negatives": 50, "adversarial_temperature": 1.0},
        "model": {}, "optimizer": "adam", "lr": 1e-3, "batch_size": 500,
    },
    # HaLE's fast start, then negative sampling's better generalisation (docs/training.md, second round):
    # phases are (method, end as a share of the budget).
    "hale+ns": {"phases": [["hale-plain", 0.2], ["ns", 1.0]]},
    "softmax": {"loss": {"name": "softmax"}, "model": {}, "optimizer": "adam", "lr": 1e-3, "batch_size": 500},
    # HaLE contrasting each query with every entity (the fused all-entity kernel), filtered; Adam annealed
    # by a cosine like the pipeline's NS phase.
    "hale-all": {
        "loss": {"name": "hale", "negatives": "all", "temperature": 1.0, "filtered": True},
        "model": {}, "optimizer": "adam", "lr": 5e-3, "batch_size": 500, "training": {"lr_decay": "cosine"},
    },
    # HaLE against a shared uniform sample of 4,096 entities per step (fused kernel over the gathered subset),
    # filtered: ≈ 12× the steps of hale-all in the same time (bench/all_entity_step.py).
    "hale-sampled": {
        "loss": {"name": "hale", "negatives": "sampled", "num_samples": 4096, "temperature": 1.0,
                 "filtered": True},
        "model": {}, "optimizer": "adam", "lr": 5e-3, "batch_size": 500, "training": {"lr_decay": "cosine"},
    },
    "bce": {
        "loss": {"name": "bce", "batch_unit": "queries"}, "model": {}, "optimizer": "adam", "lr": 1e-3,
        "batch_size": 500,
    },
}
MARKS_S = (60, 120, 300, 600)


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` → seconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def apply_override(methods: dict[str, dict[str, Any]], assignment: str) -> None:
    """``METHOD.KEY[.SUBKEY]=VALUE`` with VALUE parsed as JSON when it parses (else a string)."""
    path, _, raw = assignment.partition("=")
    keys = path.split(".")
    if len(keys) < 2 or keys[0] not in methods or not _:
        raise SystemExit(f"bad --set {assignment!r}; expected METHOD.KEY=VALUE with METHOD in {list(methods)}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    node = methods[keys[0]]
    for key in keys[1:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def mrr_at(validations: list[dict[str, float]], seconds: float, trained: float) -> float | None:
    """Validation MRR of the last validation done by ``seconds`` of training (None if the run was
    shorter than that, or had no validation by then). 2 % + 1 s of slack: the trainer validates at the
    end of the train call that crosses the time."""
    if seconds > trained * 1.02 + 1.0:
        return None
    done = [v for v in validations if v["seconds"] <= seconds * 1.02 + 1.0]
    return done[-1]["mrr"] if done else None


def pipeline_method(dataset: str) -> dict[str, Any]:
    """The ``default`` method: the pipeline's configuration for ``dataset`` as bench methods."""
    from pipelines.config import training_recipe

    recipe = training_recipe(dataset)
    train = recipe["training"]
    base = {"loss": recipe["loss"], "model": {k: v for k, v in recipe["model_config"].items() if k != "dim"},
            "optimizer": train.pop("optimizer", "adam"), "lr": train.pop("learning_rate", 1e-2),
            "batch_size": train.pop("batch_size", 500), "training": train}
    if not recipe["phases"]:
        return {"default": base}
    out: dict[str, Any] = {"default": {"phases": []}}
    for i, phase in enumerate(recipe["phases"]):
        changes = dict(phase.get("training", {}))
        part = {**copy.deepcopy(base), "loss": phase.get("loss", base["loss"])}
        part["optimizer"] = changes.pop("optimizer", part["optimizer"])
        part["lr"] = changes.pop("learning_rate", part["lr"])
        part["batch_size"] = changes.pop("batch_size", part["batch_size"])
        part["training"] = {**part["training"], **changes}
        out[f"default-phase-{i}"] = part
        out["default"]["phases"].append([f"default-phase-{i}", phase["until"]])
    return out


def phase_training(spec: dict[str, Any]) -> dict[str, Any]:
    """A method's TrainingConfig fields (optimiser, rate, batch and its ``training`` extras)."""
    return {"optimizer": spec["optimizer"], "learning_rate": float(spec["lr"]), "batch_size": int(spec["batch_size"]),
            "optimizer_params": {}, "steps_per_call": int(spec.get("steps_per_call", 20)), **spec.get("training", {})}


def run_one(args: argparse.Namespace, ids: dict[str, np.ndarray], n: int, r: int, index: FilterIndex,
            model_name: str, method: str, methods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Train one (model, method) for the budget; a method with ``phases`` runs other methods one after
    another on the same model (``hale_tf.training.fit_phases``; e.g. HaLE for the first 20 % of the
    budget, then negative sampling)."""
    spec = methods[method]
    parts = [(methods[name], float(end)) for name, end in spec["phases"]] if "phases" in spec else [(spec, 1.0)]
    phases = [{"until": end, "loss": copy.deepcopy(part["loss"]), "training": phase_training(part)}
              for part, end in parts]
    tf.keras.utils.set_random_seed(args.seed)
    model = models.get(model_name, num_entities=n, num_relations=relation_ids(r), dim=args.dim, **parts[0][0]["model"])
    eval_options = {"memory_budget": args.eval_memory}
    config = training.TrainingConfig(
        time_budget_s=args.budget, max_steps=args.max_steps, validate_every_s=args.eval_every,
        patience=args.patience, seed=args.seed, checkpoint_every_s=None, verbose=args.verbose,
    )
    wall = time.perf_counter()
    result = training.fit_phases(
        model, phases[0]["loss"], ids["train"], phases, config=config,
        validation=training.ValidationData(ids["valid"], index, options=eval_options),
        log_dir=(Path(args.out) / "logs" / f"{args.tag}{model_name}-{method}") if args.logs else None,
    )
    validations, steps, train_seconds = result.validations, result.steps, result.train_seconds
    first_call = result.history["seconds"][0] if result.steps else None
    best = max(validations, key=lambda v: v["mrr"]) if validations else None
    t0 = time.perf_counter()
    test = evaluate(model, ids["test"], num_relations=r, filter_index=index, split="test", **eval_options)
    test_seconds = time.perf_counter() - t0
    row = {
        "model": model_name, "method": method, "spec": spec, "phases": result.phases,
        "steps": steps, "epochs": result.epochs,
        "train_seconds": train_seconds, "eval_seconds": result.eval_seconds, "first_call_seconds": first_call,
        "steps_per_second": steps / max(train_seconds, 1e-9),
        "stop_reason": result.stop_reason, "best_step": best and best["step"],
        "best_valid_mrr": best["mrr"] if best else float("nan"),
        "valid_mrr_at": {str(m): mrr_at(validations, m, train_seconds) for m in MARKS_S},
        "validations": validations, "test": test.headline, "test_seconds": test_seconds,
        "wall_seconds": time.perf_counter() - wall, "load_average": os.getloadavg(),
        "final_loss": result.history["loss"][-1] if result.steps else None,
    }
    marks = " ".join(f"{m // 60}m={'-' if v is None else f'{v:.3f}'}" for m, v in
                     ((m, row["valid_mrr_at"][str(m)]) for m in MARKS_S))
    print(
        f"{model_name:6s} {method:8s} steps {steps:6d} ({row['steps_per_second']:.1f}/s, first call "
        f"{first_call or 0.0:.1f} s)  valid MRR@{marks}"
        f"  best {row['best_valid_mrr']:.4f}  test MRR {test.mrr:.4f} H@1 {test.hits(1):.4f} H@3 {test.hits(3):.4f} "
        f"H@10 {test.hits(10):.4f}  (train {train_seconds:.0f} s, eval {result.eval_seconds:.0f} s, "
        f"load {row['load_average'][0]:.1f})",
        flush=True,
    )
    return row


def is_complete(rows: list[dict[str, Any]], planned: int) -> bool:
    """Every planned run ran, and none was stopped by a signal before its budget."""
    return len(rows) == planned and all(row["stop_reason"] != "interrupted" for row in rows)


def report_stem(tag: str, dataset: str, budget_s: float, complete: bool) -> str:
    """The output files' name: ``<tag><dataset>-<budget>s``, with ``-interrupted`` when a signal cut the
    runs short (see :func:`is_complete`), so a partial report never passes for a finished one (nor
    overwrites it)."""
    stem = f"{tag}{dataset}-{int(budget_s)}s"
    return stem if complete else f"{stem}-interrupted"


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        xs = [v["seconds"] for v in row["validations"]]
        ys = [v["mrr"] for v in row["validations"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{row['model']} {row['method']}")
    ax.set_xlabel("training seconds (validation excluded)")
    ax.set_ylabel("validation MRR (filtered, both sides)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:  # a stopped run leaves the old plot whole, not half a new one
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="wn18rr")
    parser.add_argument("--models", default="rotH,attH,rotE")
    parser.add_argument("--methods", default="hale,ns,softmax")
    parser.add_argument("--budget", type=parse_seconds, default=parse_seconds("10m"),
                        help="training seconds per run, e.g. 60s, 10m")
    parser.add_argument("--eval-every", type=parse_seconds, default=None,
                        help="validation interval in training seconds (default: budget/10, at most 60 s)")
    parser.add_argument("--patience", type=int, default=None, help="early stopping (default: off)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="also stop after this many steps (compare settings at equal work on a noisy machine)")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD.KEY=VALUE")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--tag", default="", help="prefix of the output file names")
    parser.add_argument("--eval-memory", default="1GiB")
    parser.add_argument("--logs", action="store_true", help="write TensorBoard logs under OUT/logs")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    if args.eval_every is None:
        args.eval_every = min(60.0, args.budget / 10)
    methods = {**copy.deepcopy(METHODS), **pipeline_method(args.dataset)}
    for assignment in args.overrides:
        apply_override(methods, assignment)
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in methods]
    if unknown:
        parser.error(f"unknown methods {unknown}; available: {sorted(methods)}")
    model_names = [m.strip() for m in args.models.split(",") if m.strip()]

    splits = data.load_id_splits(args.dataset)
    ids, n, r = splits.triples, splits.num_entities, splits.num_relations
    index = FilterIndex.from_triples(ids, num_relations=r, num_entities=n)
    print(f"{args.dataset}: {n} entities, {r} relations, {len(ids['train'])} train triples; budget "
          f"{args.budget:.0f} s per run, validation every {args.eval_every:.0f} s; d = {args.dim}", flush=True)
    rows: list[dict[str, Any]] = []
    planned = [(m, meth) for m in model_names for meth in chosen]
    for m, meth in planned:
        rows.append(run_one(args, ids, n, r, index, m, meth, methods))
        if rows[-1]["stop_reason"] == "interrupted":  # SIGINT/SIGTERM: report what ran, start nothing new
            skipped = [f"{sm} {smeth}" for sm, smeth in planned[len(rows):]]
            print(f"interrupted during {m} {meth}: its row covers {rows[-1]['train_seconds']:.0f} of "
                  f"{args.budget:.0f} training seconds" + (f"; not run: {', '.join(skipped)}" if skipped else ""),
                  flush=True)
            break

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    complete = is_complete(rows, len(planned))
    stem = report_stem(args.tag, args.dataset, args.budget, complete)
    report = {
        "dataset": args.dataset, "budget_s": args.budget, "dim": args.dim, "seed": args.seed,
        "argv": sys.argv[1:] if argv is None else argv, "protocol": "filtered, both directions, pessimistic ties",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__},
        "complete": complete, "runs": rows,
    }
    atomic_write_text(out / f"{stem}.json", json.dumps(report, indent=1, default=float) + "\n")
    plot(rows, out / f"{stem}.png", f"{args.dataset}, d={args.dim}, budget {args.budget:.0f} s")
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
