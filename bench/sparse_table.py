"""Training step time against the size of the entity table: dense fused Adam vs LazyAdam (row-sparse).

At millions of entities a step touches a tiny share of the table's rows; the dense optimiser still
passes over every row (and its two moment slots), LazyAdam updates only the touched ones. This bench
trains rotH (d = 32, negative sampling with 50 negatives, batch 500, ``steps_per_call`` 5) on a random
graph of N entities and 100 relations for a fixed number of steps per optimiser and reports seconds per
step after the first (tracing) call, side by side in one process.

    python bench/sparse_table.py --entities 100000,1000000,5000000 --optimizers adam,lazy_adam --steps 25
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench._common import RESULTS_DIR, write_json  # noqa: E402


def measure(num_entities: int, optimizer: str, steps: int, triples: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    from hale_tf import losses, models, training
    from hale_tf.reciprocal import relation_ids

    rng = np.random.default_rng(seed)
    num_relations = 100
    ids = np.stack([rng.integers(0, num_entities, triples), rng.integers(0, num_relations, triples),
                    rng.integers(0, num_entities, triples)], axis=1)
    queries = training.TrainQueries.from_triples(ids, num_relations=num_relations, num_entities=num_entities)
    tf.keras.utils.set_random_seed(seed)
    model = models.get("rotH", num_entities=num_entities, num_relations=relation_ids(num_relations), dim=32)
    started = time.perf_counter()
    result = training.fit(model, losses.get("negative_sampling", num_negatives=50), queries, max_steps=steps,
                          batch_size=500, optimizer=optimizer, learning_rate=0.005, steps_per_call=5, verbose=0,
                          strategy=tf.distribute.get_strategy())
    seconds = result.history["seconds"]
    return {
        "entities": num_entities, "optimizer": optimizer, "steps": len(seconds),
        "first_call_s": round(seconds[0], 2),
        "s_per_step": round((seconds[-1] - seconds[0]) / max(1, len(seconds) - 1), 4),
        "final_loss": round(float(result.history["loss"][-1]), 5),
        "wall_s": round(time.perf_counter() - started, 1), "load_avg": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", default="100000,1000000,5000000")
    parser.add_argument("--optimizers", default="adam,lazy_adam")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--triples", type=int, default=200_000, help="random training triples")
    parser.add_argument("--out", default=str(RESULTS_DIR / "sparse_table.json"))
    args = parser.parse_args()
    rows = []
    print(f"{'entities':>10} {'optimizer':>10} {'s/step':>8} {'first call s':>12} {'final loss':>10} {'load':>5}")
    for n in (int(x) for x in args.entities.split(",")):
        for optimizer in args.optimizers.split(","):
            row = measure(n, optimizer, args.steps, args.triples)
            rows.append(row)
            print(f"{n:>10,} {optimizer:>10} {row['s_per_step']:>8.3f} {row['first_call_s']:>12.1f} "
                  f"{row['final_loss']:>10.4f} {row['load_avg']:>5.1f}", flush=True)
    write_json(Path(args.out), {"command": " ".join(sys.argv), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
