"""Benchmark the Transform component on a synthetic graph of YAGO3-10's size.

Runs ExampleGen once (generating the synthetic graph into a cache if needed), then Transform with the
default in-process runner and with local worker processes (``--direct_running_mode=multi_processing``),
each forced to rerun, and reports wall seconds and training triples per second. It also checks that
every configuration wrote byte-identical query files, vocabularies and id triples.

Usage::

    python bench/transform.py           # YAGO3-10 size: 123,182 entities, 37 relations, 1,079,040 train
    python bench/transform.py --preset small --workers 1 --out /tmp/t.json

Writes a table to stdout and JSON to ``bench/results/transform.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from components.base import Artifact, library_versions, run_component  # noqa: E402
from components.example_gen import EXAMPLE_GEN  # noqa: E402
from components.transform import TRANSFORM  # noqa: E402

TARGET_SECONDS = 60.0


def _digest(artifact: Artifact) -> str:
    """Hash of the deterministic payload (everything except metadata and the filter index layout)."""
    digest = hashlib.sha256()
    for sub in ("vocab", "queries", "triples"):
        for path in sorted(artifact.path(sub).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(artifact.uri).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = round(os.getloadavg()[0], 2)  # the machine may be shared: record how busy it was
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="hale-bench-transform-"))
    synthetic = {"preset": args.preset, "seed": args.seed}
    start = time.perf_counter()
    examples = run_component(
        EXAMPLE_GEN,
        root,
        params={"dataset": "synthetic", "synthetic_params": synthetic, "cache_dir": args.cache_dir},
    )
    example_gen_s = time.perf_counter() - start
    stats = json.loads(examples.path("stats.json").read_text())
    num_train = stats["splits"]["train"]["triples"]
    print(
        f"graph: {stats['entities']:,} entities, {stats['relations']} relations, "
        f"{num_train:,}/{stats['splits']['valid']['triples']:,}/{stats['splits']['test']['triples']:,} "
        f"triples (ExampleGen incl. generation/cache: {example_gen_s:.1f} s)",
        flush=True,
    )

    rows = []
    for workers in args.workers:
        for repeat in range(args.repeats):
            start = time.perf_counter()
            out = run_component(
                TRANSFORM,
                root,
                {"examples": examples},
                params={"num_workers": workers, "num_shards": args.num_shards},
                force=True,
            )
            seconds = time.perf_counter() - start
            tstats = json.loads(out.path("stats.json").read_text())
            row = {
                "runner": "FnApiRunner in process" if workers == 1 else f"FnApiRunner {workers} processes",
                "num_workers": workers,
                "repeat": repeat,
                "seconds": round(seconds, 2),
                "train_triples_per_second": round(num_train / seconds),
                "num_queries": tstats["queries"]["num_queries"],
                "payload_digest": _digest(out),
            }
            rows.append(row)
            print(
                f"  workers={workers} repeat={repeat}: {seconds:6.1f} s, "
                f"{row['train_triples_per_second']:,} triples/s",
                flush=True,
            )
    digests = {r["payload_digest"] for r in rows}
    return {
        "benchmark": "transform",
        "graph": {
            "synthetic_params": synthetic,
            "entities": stats["entities"],
            "relations": stats["relations"],
            "train": num_train,
            "valid": stats["splits"]["valid"]["triples"],
            "test": stats["splits"]["test"]["triples"],
        },
        "num_shards": args.num_shards,
        "results": rows,
        "outputs_identical_across_runs": len(digests) == 1,
        "target_seconds": TARGET_SECONDS,
        "meets_target": all(r["seconds"] < TARGET_SECONDS for r in rows),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "versions": library_versions(uses_beam=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="yago3-10", help="synthetic size preset (hale_tf.data.synthetic)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic graph seed")
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2], help="e.g. 1,2"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--num_shards", type=int, default=8)
    parser.add_argument("--root", default=None, help="pipeline root (default: a new temporary directory)")
    parser.add_argument("--cache_dir", default=None, help="dataset cache for the synthetic graph")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "transform.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    result = run(args)
    print()
    print(f"{'runner':<28} {'seconds':>8} {'triples/s':>12}")
    for row in result["results"]:
        print(f"{row['runner']:<28} {row['seconds']:>8.1f} {row['train_triples_per_second']:>12,}")
    print(
        f"outputs identical across runs: {result['outputs_identical_across_runs']}; "
        f"target < {TARGET_SECONDS:.0f} s met: {result['meets_target']}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
