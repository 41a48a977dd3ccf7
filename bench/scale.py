"""How cost grows with graph size: a sweep of the synthetic generator from 10k to millions of entities.

Each point (entities, training triples) runs in a fresh child process (so its peak memory is its own):

1. ExampleGen (synthetic graph, 37 relations, 5,000 valid and 5,000 test triples; cached in ``--cache_dir``);
2. Transform (Beam, in process): seconds and artifact bytes;
3. training with the default recipe's main phase (rotH d=32, negative sampling with 50 negatives, Adam,
   batch 500) for ``--train_seconds``: steps/s and queries/s after the first (tracing) call;
4. filtered evaluation of the 10,000 test queries (both sides) against every entity: seconds per 10k
   queries (second call: what validation pays; the first, with tracing, is kept too);
5. the saved model's bytes and the process's peak resident memory (VmHWM).

The sweep is resumable (points already in the JSON are skipped) and bounded (``--max_points``,
``--budget``); ``os.getloadavg()`` is recorded per point because the machine may be shared. Output: JSON
(``--out``), a printed table and a log-log plot (``--plot``, PNG).

    nice -n 19 python bench/scale.py                                   # the default grid (hours at the top)
    python bench/scale.py --points 10000:100000,30000:300000 --train_seconds 5 --out /tmp/s.json --plot /tmp/s.png
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench._common import RESULTS_DIR, print_table, write_json  # noqa: E402
from hale_tf.atomic import atomic_open  # noqa: E402
from hale_tf.reciprocal import relation_ids  # noqa: E402

#: (entities, training triples): a triples axis at 100k entities, an entities axis at 1M triples, the
#: diagonal to 1M entities / 10M triples, and the 5M-entity table.
DEFAULT_POINTS = [
    (10_000, 100_000), (30_000, 300_000), (100_000, 1_000_000), (10_000, 1_000_000), (1_000_000, 2_000_000),
    (100_000, 3_000_000), (5_000_000, 6_000_000), (300_000, 3_000_000), (1_000_000, 10_000_000),
]
NUM_RELATIONS = 37
COLUMNS = ["entities", "triples", "transform_s", "steps_per_s", "queries_per_s", "eval_s_per_10k",
           "peak_rss_gb", "transform_bytes", "model_bytes", "load_avg"]


def parse_points(text: str) -> list[tuple[int, int]]:
    """``"10000:100000,30000:300000"`` -> [(10000, 100000), (30000, 300000)] (one line on a bad entry)."""
    points = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        entities, sep, triples = item.partition(":")
        try:
            points.append((int(entities), int(triples)))
        except ValueError:
            raise SystemExit(f"error: --points: expected entities:triples, got {item!r}") from None
        if not sep or points[-1][0] < 2 or points[-1][1] < 1:
            raise SystemExit(f"error: --points: expected entities:triples (positive integers), got {item!r}")
        if points[-1][1] < points[-1][0] + NUM_RELATIONS:  # the generator puts every entity in train
            raise SystemExit(f"error: --points: {item!r} needs at least entities + {NUM_RELATIONS} triples")
    return points


def _key(entities: int, triples: int) -> str:
    return f"{entities}:{triples}"


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ one point
def measure_point(entities: int, triples: int, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one graph size in this process (the parent runs it in a child; see the module docstring)."""
    from components._transformed import TransformedData
    from components.base import run_component
    from components.example_gen import EXAMPLE_GEN
    from components.trainer import _load_queries
    from components.transform import TRANSFORM

    row: dict[str, Any] = {"entities": entities, "triples": triples, "load_avg_start": os.getloadavg()}
    root = Path(args.work_dir) / f"root-{entities}-{triples}"
    synthetic = {"num_entities": entities, "num_train": triples, "num_relations": NUM_RELATIONS, "num_valid": 5000,
                 "num_test": 5000, "seed": 0}
    t0 = time.perf_counter()
    examples = run_component(EXAMPLE_GEN, root, params={"dataset": "synthetic", "synthetic_params": synthetic,
                                                       "cache_dir": args.cache_dir})
    row["example_gen_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    transformed = run_component(TRANSFORM, root, {"examples": examples}, params={"num_shards": 8}, force=True)
    row["transform_s"] = round(time.perf_counter() - t0, 2)
    row["transform_bytes"] = _tree_bytes(Path(transformed.uri))
    row["rss_after_transform_gb"] = round(_peak_rss_bytes() / 2**30, 3)

    import tensorflow as tf

    from hale_tf import losses, models, training
    from hale_tf.evaluation import evaluate

    data = TransformedData(transformed)
    n, r = data.num_entities, data.num_relations
    row["entities_in_vocab"] = n
    queries = _load_queries(data, n, relation_ids(r))
    tf.keras.utils.set_random_seed(0)
    model = models.get("rotH", num_entities=n, num_relations=relation_ids(r), dim=args.dim)
    loss = losses.get("negative_sampling", num_negatives=50)
    # The budget counts the first call's tracing too (tens of seconds on a busy machine); steps/s is taken
    # from the calls after it, over about --train_seconds.
    budget = args.train_seconds + args.trace_allowance
    result = training.fit(model, loss, queries, time_budget_s=budget, batch_size=args.batch_size,
                          optimizer="adam", learning_rate=0.005, verbose=0, strategy=tf.distribute.get_strategy())
    seconds = result.history["seconds"]
    steps = len(seconds)
    row["train_steps"] = steps
    row["first_call_s"] = round(seconds[0], 2)  # one step, tracing included
    if steps > 1 and seconds[-1] > seconds[0]:
        row["steps_per_s"] = round((steps - 1) / (seconds[-1] - seconds[0]), 2)
        row["queries_per_s"] = round(row["steps_per_s"] * args.batch_size)
    row["rss_after_training_gb"] = round(_peak_rss_bytes() / 2**30, 3)

    test, index = data.triples("test")[: args.eval_triples], data.filter_index()
    timings = []
    for _ in range(2):
        t0 = time.perf_counter()
        evaluate(model, test, num_relations=r, filter_index=index, memory_budget=args.eval_memory)
        timings.append(time.perf_counter() - t0)
    num_queries = 2 * len(test)  # head and tail queries
    row["eval_queries"] = num_queries
    row["eval_first_s_per_10k"] = round(timings[0] * 10_000 / num_queries, 2)
    row["eval_s_per_10k"] = round(timings[1] * 10_000 / num_queries, 2)
    model_dir = root / "model"
    models.save_model(model, model_dir)
    row["model_bytes"] = _tree_bytes(model_dir)
    row["peak_rss_gb"] = round(_peak_rss_bytes() / 2**30, 3)
    row["load_avg_end"] = os.getloadavg()
    row["load_avg"] = round(max(row["load_avg_start"][0], row["load_avg_end"][0]), 2)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return row


# ---------------------------------------------------------------------------------------------- sweep
def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"benchmark": "scale", "points": {}}


def run_sweep(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    report = _load(out)
    report["settings"] = {k: getattr(args, k) for k in ("dim", "batch_size", "train_seconds", "trace_allowance",
                                                         "eval_memory")}
    started, done = time.monotonic(), 0
    for entities, triples in parse_points(args.points):
        key = _key(entities, triples)
        if key in report["points"]:
            print(f"{key}: already measured, skipped", flush=True)
            continue
        if args.max_points is not None and done >= args.max_points:
            print(f"--max_points={args.max_points} reached", flush=True)
            break
        if args.budget is not None and time.monotonic() - started > args.budget:
            print(f"--budget={args.budget:.0f}s spent", flush=True)
            break
        print(f"{key}: measuring …", flush=True)
        result_file = Path(args.work_dir) / f"point-{entities}-{triples}.json"
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--child", key, "--child_out", str(result_file),
                   *_passthrough(args)]
        t0 = time.perf_counter()
        proc = subprocess.run(command, check=False)
        if proc.returncode != 0 or not result_file.is_file():
            # Kept as a failed point (e.g. killed for memory: -9): the sweep reports where one process ends.
            row = {"entities": entities, "triples": triples, "failed": f"exit status {proc.returncode}",
                   "load_avg": round(os.getloadavg()[0], 2)}
        else:
            row = json.loads(result_file.read_text(encoding="utf-8"))
        row["point_wall_s"] = round(time.perf_counter() - t0, 1)
        report["points"][key] = row
        write_json(out, report)  # after every point: a killed sweep resumes from here
        done += 1
    return report


def _passthrough(args: argparse.Namespace) -> list[str]:
    return [f"--dim={args.dim}", f"--batch_size={args.batch_size}", f"--train_seconds={args.train_seconds}",
            f"--trace_allowance={args.trace_allowance}", f"--eval_memory={args.eval_memory}",
            f"--eval_triples={args.eval_triples}", f"--work_dir={args.work_dir}", f"--cache_dir={args.cache_dir}",
            *(["--keep"] if args.keep else [])]


def plot(report: dict[str, Any], path: Path) -> Path:
    """Log-log panels of every measure against training triples (marker size: entities)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["points"].values() if "failed" not in r]
    panels = [("transform_s", "Transform seconds"), ("eval_s_per_10k", "evaluation s / 10k queries"),
              ("steps_per_s", "training steps/s (batch 500)"), ("peak_rss_gb", "peak RSS (GB)"),
              ("transform_bytes", "Transform artifact bytes"), ("model_bytes", "model bytes")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for entities in sorted({r["entities"] for r in rows}):
            pts = sorted((r["triples"], r[key]) for r in rows if r["entities"] == entities and r.get(key))
            if pts:
                ax.loglog(*zip(*pts, strict=True), "o-", label=f"{entities:,} entities")
        ax.set_title(title)
        ax.set_xlabel("training triples")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("hale-tf cost vs graph size (synthetic, one process, 2 CPU cores)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    return path


def table(report: dict[str, Any]) -> None:
    rows = sorted(report["points"].values(), key=lambda r: (r["triples"], r["entities"]))
    print_table([{**r, "transform_bytes": f"{r.get('transform_bytes', 0) / 2**20:.0f}M",
                  "model_bytes": f"{r.get('model_bytes', 0) / 2**20:.0f}M"} if "failed" not in r else r
                 for r in rows], [*COLUMNS, "failed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default=",".join(_key(*p) for p in DEFAULT_POINTS),
                        help="entities:triples,… (default: the grid in DEFAULT_POINTS)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "scale.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "scale.png"))
    parser.add_argument("--max_points", type=int, default=None, help="measure at most this many new points")
    parser.add_argument("--budget", type=float, default=None, help="start no new point after this many seconds")
    parser.add_argument("--train_seconds", type=float, default=20.0, help="training seconds measured")
    parser.add_argument("--trace_allowance", type=float, default=20.0, help="budget added for the first call")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--eval_memory", default="1GiB")
    parser.add_argument("--eval_triples", type=int, default=5000, help="test triples ranked (2 queries each)")
    parser.add_argument("--work_dir", default="/tmp/hale-bench-scale")
    parser.add_argument("--cache_dir", default="/tmp/hale-bench-scale/cache")
    parser.add_argument("--keep", action="store_true", help="keep each point's pipeline root")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child_out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        ((entities, triples),) = parse_points(args.child)
        write_json(args.child_out, measure_point(entities, triples, args))
        return 0
    report = run_sweep(args)
    table(report)
    if report["points"]:
        print(f"plot: {plot(report, Path(args.plot))}")
    print(f"json: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
