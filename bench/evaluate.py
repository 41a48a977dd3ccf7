"""Benchmark of the filtered evaluator at YAGO3-10's shape.

10,000 queries (5,000 test triples, head and tail) ranked against 123,182 entities at d = 32, with a filter
index of ~1.09M random train triples (+ valid + test) whose entity popularity is heavy-tailed like a real
KG. Models have random weights (timing only). Each model runs in a fresh child process so its peak memory
(VmHWM from /proc/self/status) is its own.

Reported per model: seconds for the first call (tracing + XLA compilation included) and a second call
(what periodic validation pays), queries per second, peak resident memory of the process and its growth
during evaluation, the evaluator's own estimate, and the ratio to the bare matmuls the scoring needs
([chunk × d] × [d × N] for every chunk).

    python bench/evaluate.py                       # rotH and transE, writes bench/results/evaluate.json
    python bench/evaluate.py --models rotH --jit off --out /tmp/e.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hale_tf.atomic import atomic_write_json  # noqa: E402
from hale_tf.reciprocal import relation_ids  # noqa: E402

YAGO = {
    "num_entities": 123_182,
    "num_relations": 37,
    "num_train": 1_079_040,
    "num_valid": 5_000,
    "num_test": 5_000,
}


def _status_kib(field: str) -> int:
    """A ``VmXXX`` field of /proc/self/status in KiB (0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def random_splits(seed: int, num_entities: int, num_relations: int, sizes: list[int]) -> list:
    """Random triples with Zipf-like entity and relation popularity (many answers for popular queries)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ent_p = 1.0 / (np.arange(num_entities) + 10.0) ** 0.9
    ent_p /= ent_p.sum()
    rel_p = 1.0 / (np.arange(num_relations) + 1.0) ** 1.2
    rel_p /= rel_p.sum()
    perm = rng.permutation(num_entities)  # popular ids spread over the id range
    out = []
    for m in sizes:
        h = perm[rng.choice(num_entities, m, p=ent_p)]
        t = perm[rng.choice(num_entities, m, p=ent_p)]
        r = rng.choice(num_relations, m, p=rel_p)
        out.append(np.stack([h, r, t], axis=1).astype(np.int64))
    return out


def matmul_seconds(num_entities: int, dim: int, chunk: int, num_chunks: int, jit: bool, seed: int) -> float:
    """Time of the bare [chunk × d] × [d × N] matmuls of one evaluation (best of two passes)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    table = tf.constant(rng.standard_normal((num_entities, dim), dtype=np.float32))
    queries = tf.constant(rng.standard_normal((chunk, dim), dtype=np.float32))

    @tf.function(jit_compile=jit)
    def mm(q: tf.Tensor) -> tf.Tensor:
        out = tf.matmul(q, table, transpose_b=True)
        return out[:, :1]  # keep the product live without a reduction XLA could simplify away

    mm(queries).numpy()
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(num_chunks):
            mm(queries).numpy()
        best = min(best, time.perf_counter() - t0)
    return best


def run_child(args: argparse.Namespace) -> dict:
    """Build data and model, evaluate twice, measure; runs inside a fresh process."""
    import numpy as np
    import tensorflow as tf

    from hale_tf import models
    from hale_tf.evaluation import FilterIndex, evaluate

    rss_start = _status_kib("VmRSS")
    train, valid, test = random_splits(
        args.seed, args.num_entities, args.num_relations, [args.num_train, args.num_valid, args.num_test]
    )
    t0 = time.perf_counter()
    index = FilterIndex.from_triples(
        {"train": train, "valid": valid, "test": test}, args.num_relations, num_entities=args.num_entities
    )
    index_seconds = time.perf_counter() - t0
    del train, valid
    model = models.get(
        args.model, num_entities=args.num_entities, num_relations=relation_ids(args.num_relations), dim=args.dim
    )
    # Random weights of a trained-looking scale (the default 1e-3 init makes almost every score tie).
    rng = np.random.default_rng(args.seed + 1)
    for w in model.weights:
        if "float" in str(w.dtype) and "bias" not in w.path:
            w.assign(rng.normal(0.0, 0.3, size=w.shape).astype(str(w.dtype)))
    jit = {"auto": None, "on": True, "off": False}[args.jit]
    common = dict(
        num_relations=args.num_relations,
        filter_index=index,
        memory_budget=args.memory_budget,
        query_chunk_size=args.query_chunk_size,
        jit_compile=jit,
        split="test(random)",
    )
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    hwm_setup = _status_kib("VmHWM")
    t0 = time.perf_counter()
    first = evaluate(model, test, **common)
    first_s = time.perf_counter() - t0
    hwm_first = _status_kib("VmHWM")
    t0, c0 = time.perf_counter(), time.process_time()
    second = evaluate(model, test, **common)
    second_s, second_cpu = time.perf_counter() - t0, time.process_time() - c0
    hwm_second = _status_kib("VmHWM")
    ex = first.protocol["execution"]
    mm_s = matmul_seconds(
        args.num_entities,
        args.dim,
        ex["query_chunk_size"],
        ex["num_chunks"],
        bool(ex["jit_compile"]),
        args.seed,
    )
    nq = first.protocol["num_queries"]
    pairs = (
        index.spans(test[:, 0], test[:, 1])[1].sum()
        + index.spans(test[:, 2], test[:, 1] + args.num_relations)[1].sum()
    )
    return {
        "model": args.model,
        "num_queries": nq,
        "num_entities": args.num_entities,
        "dim": args.dim,
        "filter_pairs_total": index.num_pairs,
        "filter_pairs_of_test_queries": int(pairs),
        "filter_index_build_seconds": index_seconds,
        "seconds_first": first_s,
        "seconds_second": second_s,
        "cpu_seconds_second": second_cpu,
        "queries_per_second_first": nq / first_s,
        "queries_per_second_second": nq / second_s,
        "bare_matmul_seconds": mm_s,
        "ratio_to_matmul_second": second_s / mm_s,
        "peak_rss_mib": max(hwm_first, hwm_second) / 1024,
        "peak_rss_reset_before_eval": reset,
        "rss_before_eval_mib": rss_before / 1024,
        "rss_at_process_start_mib": rss_start / 1024,
        "eval_peak_growth_mib": (max(hwm_first, hwm_second) - (hwm_setup if reset else rss_before)) / 1024,
        "estimated_peak_mib": ex["estimated_peak_bytes"] / 2**20,
        "memory_budget_mib": ex["memory_budget_bytes"] / 2**20,
        "query_chunk_size": ex["query_chunk_size"],
        "num_chunks": ex["num_chunks"],
        "pair_capacity": ex["pair_capacity"],
        "jit_compile": ex["jit_compile"],
        "headline_mrr": first.mrr,
        "same_result_twice": first.metrics == second.metrics,
        "tensorflow": tf.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["rotH", "transE"])
    p.add_argument("--num-entities", type=int, default=YAGO["num_entities"])
    p.add_argument("--num-relations", type=int, default=YAGO["num_relations"])
    p.add_argument("--num-train", type=int, default=YAGO["num_train"])
    p.add_argument("--num-valid", type=int, default=YAGO["num_valid"])
    p.add_argument("--num-test", type=int, default=YAGO["num_test"])
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--memory-budget", default="1GiB")
    p.add_argument("--query-chunk-size", type=int, default=None)
    p.add_argument("--jit", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "evaluate.json"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: model name in a fresh process
    args = p.parse_args(argv)

    if args.child:
        args.model = args.child
        print(json.dumps(run_child(args)))
        return 0

    rows = []
    forwarded = [
        "--num-entities",
        args.num_entities,
        "--num-relations",
        args.num_relations,
        "--num-train",
        args.num_train,
        "--num-valid",
        args.num_valid,
        "--num-test",
        args.num_test,
        "--dim",
        args.dim,
        "--memory-budget",
        args.memory_budget,
        "--jit",
        args.jit,
        "--seed",
        args.seed,
    ]
    if args.query_chunk_size is not None:
        forwarded += ["--query-chunk-size", args.query_chunk_size]
    forwarded = [str(a) for a in forwarded]
    for name in args.models:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, *forwarded], capture_output=True, text=True, cwd=ROOT
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            return proc.returncode
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    head = (
        f"{'model':8} {'queries':>7} {'first s':>8} {'warm s':>7} {'q/s warm':>9} {'matmul s':>9} "
        f"{'ratio':>6} {'cpu s':>6} {'peak MiB':>9} {'eval +MiB':>9} {'est MiB':>8} {'chunk':>6} {'jit':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:8} {r['num_queries']:7d} {r['seconds_first']:8.2f} {r['seconds_second']:7.2f} "
            f"{r['queries_per_second_second']:9.0f} {r['bare_matmul_seconds']:9.2f} "
            f"{r['ratio_to_matmul_second']:6.1f} {r['cpu_seconds_second']:6.1f} {r['peak_rss_mib']:9.0f} "
              f"{r['eval_peak_growth_mib']:9.0f} "
            f"{r['estimated_peak_mib']:8.0f} {r['query_chunk_size']:6d} {str(r['jit_compile']):>5}"
        )
    report = {
        "benchmark": "filtered evaluation, YAGO3-10 shape, random weights and random filter index",
        "config": {k: v for k, v in vars(args).items() if k not in ("child", "out", "models")},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_at_end": os.getloadavg(),
        },
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    print(f"wrote {out}  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
