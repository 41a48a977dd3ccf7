"""Serving latency of ``topk_tails`` through a loaded SavedModel (YAGO3-10 scale, random weights).

    python bench/serving.py                       # RotH and TransE, N = 123,182, d = 32, R = 37
    python bench/serving.py --models=transE --single_reps=50 --out=/tmp/serving.json

For each model the export is written, loaded back with ``tf.saved_model.load`` and timed for one query
and for batches of ``--batch`` queries (k = 10), with and without ``exclude_known`` (1.08M random known
facts, YAGO3-10's training size). A ``bare`` baseline — one ‖q − e‖² matmul with precomputed norms plus
``tf.math.top_k`` on the same table, the least work any scorer over all entities must do — runs in the
same rounds. Variants are interleaved round-robin, so a noisy shared CPU slows them alike and the ratios
to ``bare`` stay meaningful when absolute numbers do not. ``--xla`` adds an export with the dense scoring
XLA-compiled. Results: a table on stdout and JSON at ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hale_tf import models  # noqa: E402
from hale_tf.export import export_saved_model  # noqa: E402
from hale_tf.reciprocal import relation_ids

YAGO3_10 = {"entities": 123_182, "relations": 37, "train": 1_079_040}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="rotH,transE", help="comma-separated registry names")
    parser.add_argument("--entities", type=int, default=YAGO3_10["entities"])
    parser.add_argument("--relations", type=int, default=YAGO3_10["relations"], help="base relations R")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--known", type=int, default=YAGO3_10["train"], help="random known facts")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single_reps", type=int, default=200, help="timed single-query calls per variant")
    parser.add_argument("--batch_reps", type=int, default=5, help="timed batch calls per variant (0: skip)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--xla", action="store_true", help="also time an export with jit_compile=True")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "serving.json"))
    return parser.parse_args(argv)


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "n": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
    }


def interleaved(variants: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, list[float]]:
    """Time each variant ``reps`` times, one call per variant per round (noise hits all variants alike)."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def bare_baseline(table: np.ndarray, k: int) -> Callable[[tf.Tensor], object]:
    """‖q − e‖² = ‖q‖² − 2 q·e + ‖e‖² with ‖e‖² precomputed, then top_k: a floor for any full scorer."""
    entities = tf.constant(table)
    norms = tf.reduce_sum(entities * entities, axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None, table.shape[1]], tf.float32)])
    def topk(queries: tf.Tensor) -> object:
        scores = 2.0 * tf.matmul(queries, entities, transpose_b=True) - norms
        return tf.math.top_k(scores, k=k)

    return topk


def random_model(name: str, args: argparse.Namespace, rng: np.random.Generator) -> object:
    model = models.get(name, num_entities=args.entities, num_relations=relation_ids(args.relations), dim=args.dim)
    # Random weights at a trained-like spread (the default init is ~1e-3, close to the origin).
    for var in model.weights:
        if "curvature" not in var.path:
            var.assign(rng.normal(scale=0.3, size=var.shape).astype(np.float32))
    return model


def bench_model(name: str, args: argparse.Namespace, workdir: Path) -> dict:
    rng = np.random.default_rng(args.seed)
    entities = [f"entity_{i}" for i in range(args.entities)]
    relations = [f"relation_{i}" for i in range(args.relations)]
    known = np.stack(
        [
            rng.integers(0, args.entities, args.known),
            rng.integers(0, args.relations, args.known),
            rng.integers(0, args.entities, args.known),
        ],
        axis=1,
    ).astype(np.int32)
    model = random_model(name, args, rng)
    result: dict = {"model": name, "export_s": {}}
    loaded = {}
    for jit in [False, True] if args.xla else [False]:
        tag = "xla" if jit else "graph"
        start = time.perf_counter()
        path = export_saved_model(
            model, entities, relations, workdir / f"{name}_{tag}", known_triples=known, jit_compile=jit
        )
        result["export_s"][tag] = round(time.perf_counter() - start, 2)
        loaded[tag] = tf.saved_model.load(str(path)).signatures["topk_tails"]
    k = tf.constant(args.k)
    yes, no = tf.constant(True), tf.constant(False)
    single_h = tf.constant([entities[int(rng.integers(args.entities))]])
    single_r = tf.constant([relations[int(rng.integers(args.relations))]])
    batch_h = tf.constant([entities[i] for i in rng.integers(0, args.entities, args.batch)])
    batch_r = tf.constant([relations[i] for i in rng.integers(0, args.relations, args.batch)])
    bare = bare_baseline(model.entities.embeddings.numpy(), args.k)
    single_q = tf.constant(rng.normal(size=(1, args.dim)).astype(np.float32))
    batch_q = tf.constant(rng.normal(size=(args.batch, args.dim)).astype(np.float32))

    def variants(h: tf.Tensor, r: tf.Tensor, q: tf.Tensor) -> dict[str, Callable[[], object]]:
        out: dict[str, Callable[[], object]] = {"bare (matmul + top_k)": lambda: bare(q)}
        for tag, fn in loaded.items():
            for excl, suffix in ((no, ""), (yes, " exclude_known")):
                out[f"savedmodel {tag}{suffix}"] = lambda fn=fn, e=excl: fn(
                    head=h, relation=r, k=k, exclude_known=e
                )
        return out

    single = interleaved(variants(single_h, single_r, single_q), args.single_reps, args.warmup)
    result["single"] = {name: summarize(t) for name, t in single.items()}
    result["batch"] = {}
    if args.batch_reps > 0:
        batch = interleaved(variants(batch_h, batch_r, batch_q), args.batch_reps, min(args.warmup, 1))
        result["batch"] = {name: summarize(t) for name, t in batch.items()}
    for block in (result["single"], result["batch"]):
        base = block["bare (matmul + top_k)"]["p50_ms"]
        for stats in block.values():
            stats["p50_vs_bare"] = round(stats["p50_ms"] / base, 2)
    for stats in result["batch"].values():
        stats["per_query_p50_ms"] = stats["p50_ms"] / args.batch
    return result


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    print(f"\ntopk_tails latency, N={args.entities:,}, d={args.dim}, k={args.k} (ms)")
    header = f"{'model':<8} {'variant':<32} {'query':>10} {'p50':>9} {'p99':>9} {'×bare':>6}"
    print(header)
    print("-" * len(header))
    for result in results:
        for kind, label in (("single", "1"), ("batch", f"batch {args.batch}")):
            for variant, stats in result[kind].items():
                print(
                    f"{result['model']:<8} {variant:<32} {label:>10} {stats['p50_ms']:>9.2f} "
                    f"{stats['p99_ms']:>9.2f} {stats['p50_vs_bare']:>6.2f}"
                )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="hale_tf_bench_") as tmp:
        for name in args.models.split(","):
            results.append(bench_model(name.strip(), args, Path(tmp)))
            print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(results, args)
    report = {
        "benchmark": "serving topk_tails",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": vars(args),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
