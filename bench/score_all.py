"""Throughput of ``score_all`` for every model against a plain matmul of the same shape (the floor).

B = 1,000 queries against N = 123,182 entities at d = 32 (YAGO3-10's size). For every model: queries per
second of ``score_all`` compiled with ``tf.function`` (graph) and with XLA (``jit_compile=True``), and the
ratio of its time to ``tf.matmul([B, d], [d, N])``. Repeats are interleaved so load on the machine hits
every variant alike; medians are reported.

    python bench/score_all.py [--queries 1000] [--entities 123182] [--dim 32] [--repeats 5] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS_DIR, environment, median, print_table, time_call, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--entities", type=int, default=123_182)
    parser.add_argument("--relations", type=int, default=74, help="relation ids (2 × 37 for YAGO3-10)")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--out", default=str(RESULTS_DIR / "score_all.json"))
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from hale_tf import models

    names = models.available() if args.models == "all" else args.models.split(",")
    rng = np.random.default_rng(0)
    h = tf.constant(rng.integers(0, args.entities, args.queries), tf.int32)
    r = tf.constant(rng.integers(0, args.relations, args.queries), tf.int32)
    q = tf.constant(rng.normal(size=(args.queries, args.dim)), tf.float32)
    e = tf.constant(rng.normal(size=(args.entities, args.dim)), tf.float32)
    matmul = tf.function(lambda: tf.matmul(q, e, transpose_b=True))

    variants = {}
    for name in names:
        # init_scale 0.1 so entities spread over the ball like a trained model's (timing only).
        model = models.get(
            name, num_entities=args.entities, num_relations=args.relations, dim=args.dim, init_scale=0.1
        )
        variants[(name, "graph")] = tf.function(lambda m=model: m.score_all(h, r))
        variants[(name, "xla")] = tf.function(lambda m=model: m.score_all(h, r), jit_compile=True)
        # XLA fuses the element-wise work, so entity chunks (sized for graph mode's temporaries) only
        # add concatenation; one chunk shows what a fused kernel costs.
        variants[(name, "xla, 1 chunk")] = tf.function(
            lambda m=model: m.score_all(h, r, entity_chunk_size=args.entities), jit_compile=True
        )
    times = {key: [] for key in variants}
    matmul_times = []
    for _ in range(args.repeats):  # interleaved: every variant sees the same machine load
        matmul_times += time_call(lambda: matmul().numpy(), 1)
        for key, fn in variants.items():
            times[key] += time_call(lambda fn=fn: fn().numpy(), 1, warmup=0 if times[key] else 1)
    floor = median(matmul_times)
    rows = [
        {
            "model": "tf.matmul (floor)",
            "mode": "graph",
            "seconds": floor,
            "queries_per_s": args.queries / floor,
            "ratio_to_matmul": 1.0,
        }
    ]
    for (name, mode), ts in times.items():
        sec = median(ts)
        rows.append(
            {
                "model": name,
                "mode": mode,
                "seconds": sec,
                "queries_per_s": args.queries / sec,
                "ratio_to_matmul": sec / floor,
            }
        )
    print(
        f"score_all: B={args.queries} queries × N={args.entities} entities, d={args.dim}, "
        f"median of {args.repeats} interleaved repeats"
    )
    print_table(rows, ["model", "mode", "seconds", "queries_per_s", "ratio_to_matmul"])
    payload = {"benchmark": "score_all", "config": vars(args), "environment": environment(), "rows": rows}
    print(f"wrote {write_json(args.out, payload)}")
    return payload


if __name__ == "__main__":
    main()
