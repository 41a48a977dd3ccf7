"""All-entity training speed: ms per step and training queries/s through ``training.fit``, beside the floor.

For each model and loss that contrasts a query with *every* entity (HaLE ``negatives="all"``, filtered;
1-vs-all softmax), at each batch size, ``training.fit`` runs ``--steps`` steps on the dataset's real
training queries with Adam; the rate is taken from the trainer's own per-step training clock over the
second half of the steps (tracing and XLA compilation excluded). Each configuration runs with the fused
all-entity kernel (``fused=True``, the default: ``hale_tf.models.all_entity``) and, unless ``--no-reference``,
with the reference path (``fused=False``: the ``[B, N]`` score matrix from ``score_all`` and autodiff).

Also printed: the float32 error of the ball distance in the kernel's arcosh form and in ``score_all``'s
Möbius form against a float64 pairwise reference, from the origin out to the ball's clamp.

The floor, measured in the same run: one ``[B, d] × [d, N]`` matmul forward and the two of its gradient
(``G·E`` and ``Gᵀ·Q`` with a materialised ``[B, N]`` G), nothing else — what any all-entity step must at
least do.

    python bench/all_entity_step.py                                   # WN18RR, rotH + rotE, B = 100/500
    python bench/all_entity_step.py --models rotH --batch-sizes 500 --steps 60 --no-reference
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS_DIR, environment, median, print_table, write_json  # noqa: E402
from hale_tf.reciprocal import relation_ids  # noqa: E402

LOSSES = {
    "hale-all": {"name": "hale", "negatives": "all"},  # filtered, τ = 2 (HaLELoss defaults)
    "softmax": {"name": "softmax"},  # 1-vs-all cross-entropy, batches of triples (KGEmb)
    # HaLE against a shared uniform sample of entities (the fused kernel over the gathered subset).
    "hale-sampled-1024": {"name": "hale", "negatives": "sampled", "num_samples": 1024},
    "hale-sampled-4096": {"name": "hale", "negatives": "sampled", "num_samples": 4096},
    "hale-in-batch": {"name": "hale", "negatives": "in_batch"},  # no fused path: fused=True/False agree
}


def matmul_floor(num_entities: int, batch: int, dim: int, repeats: int) -> float:
    """Median ms of one forward matmul and the two gradient matmuls for a ``[B, N]`` score block."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    queries = tf.Variable(rng.normal([batch, dim]))
    entities = tf.Variable(rng.normal([num_entities, dim]))

    @tf.function
    def step() -> tf.Tensor:
        scores = tf.matmul(queries, entities, transpose_b=True)  # [B, N]
        d_queries = tf.matmul(scores, entities)  # G·E
        d_entities = tf.matmul(scores, queries, transpose_a=True)  # Gᵀ·Q
        return tf.reduce_sum(d_queries[:1]) + tf.reduce_sum(d_entities[:1])

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - t0)
    return 1000.0 * median(times)


def distance_accuracy(scales: tuple[float, ...] = (0.3, 1.0, 3.0, 6.0)) -> list[dict[str, Any]]:
    """float32 error of the ball distance δ, arcosh form (the kernel) vs Möbius form (``score_all``),
    against a float64 pairwise reference; points from the origin out to the clamp as ``scale`` grows."""
    import numpy as np
    import tensorflow as tf

    from hale_tf.geometry import poincare

    rng = np.random.default_rng(1)
    rows = []
    for scale in scales:
        c = rng.uniform(0.3, 2.0, (50, 1))
        v = rng.normal(size=(400, 8)) * scale / np.sqrt(8)
        x = poincare.project(poincare.expmap0(tf.constant(rng.normal(size=(50, 8)) * scale / np.sqrt(8)), c),
                             tf.constant(c)).numpy()
        eps = poincare.ball_eps(tf.float32)
        # float64 reference, pair by pair: y = project(exp0_c(v)), δ = (2/√c · artanh(√c‖(−x) ⊕ y‖))².
        y = poincare.expmap0(tf.constant(v)[tf.newaxis], tf.constant(c)[:, :, tf.newaxis])
        y = y * tf.minimum(1.0, (1.0 - eps) / (tf.sqrt(tf.constant(c)[:, :, tf.newaxis]) * poincare.safe_norm(y)))
        diff = poincare.safe_norm(poincare.mobius_add(-tf.constant(x)[:, tf.newaxis], y, c[:, :, np.newaxis]))[..., 0]
        want = (2.0 / np.sqrt(c) * np.arctanh(np.sqrt(c) * diff.numpy())) ** 2
        x32, v32, c32 = (tf.constant(t, tf.float32) for t in (x, v, c))
        moebius = poincare.squared_distance_to_all(x32, v32, c32).numpy()
        arcosh = poincare.squared_distance_from_dot(
            tf.matmul(x32, v32, transpose_b=True), tf.reduce_sum(x32 * x32, -1, keepdims=True), c32,
            poincare.safe_norm(v32)[:, 0][tf.newaxis, :]).numpy()
        rows.append({"scale": scale, "max_delta": float(want.max()),
                     "moebius_max_abs_err": float(np.abs(moebius - want).max()),
                     "arcosh_max_abs_err": float(np.abs(arcosh - want).max())})
    return rows


def train_rate(model_name: str, loss_config: dict[str, Any], splits: Any, queries: Any, batch: int,
               steps: int, fused: bool) -> dict[str, Any]:
    """Steady-state ms/step and examples/s of ``training.fit`` (second half of ``steps``)."""
    import tensorflow as tf

    from hale_tf import losses, models, training

    tf.keras.utils.set_random_seed(0)
    model = models.get(model_name, num_entities=splits.num_entities, num_relations=relation_ids(splits.num_relations),
                       dim=32)
    loss = losses.get({**loss_config, "fused": fused})
    t0 = time.perf_counter()
    result = training.fit(model, loss, queries, batch_size=batch, max_steps=steps, steps_per_call=5,
                          learning_rate=1e-2, optimizer="adam", verbose=0, strategy=tf.distribute.get_strategy())
    wall = time.perf_counter() - t0
    seconds = result.history["seconds"]
    half = len(seconds) // 2
    ms = 1000.0 * (seconds[-1] - seconds[half - 1]) / (len(seconds) - half)
    return {"ms_per_step": ms, "examples_per_s": 1000.0 * batch / ms, "fit_wall_s": wall,
            "loss_first": result.history["loss"][0], "loss_last": result.history["loss"][-1]}


@contextlib.contextmanager
def _relation_tables(enabled: bool) -> Iterator[None]:
    """Run with the all-entity kernel's per-relation tables of the ball terms switched off (or left on)."""
    from hale_tf.models import base as model_base

    saved = model_base.PER_RELATION_MIN_QUERIES
    if not enabled:
        model_base.PER_RELATION_MIN_QUERIES = 1 << 30
    try:
        yield
    finally:
        model_base.PER_RELATION_MIN_QUERIES = saved


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="wn18rr")
    parser.add_argument("--models", default="rotH,rotE")
    parser.add_argument("--losses", default="hale-all,softmax", help=f"any of {', '.join(LOSSES)}")
    parser.add_argument("--batch-sizes", default="100,500")
    parser.add_argument("--steps", type=int, default=40, help="training steps per configuration")
    parser.add_argument("--reference-steps", type=int, default=20, help="steps of the (slow) reference path")
    parser.add_argument("--no-reference", action="store_true", help="skip the score_all + autodiff path")
    parser.add_argument("--compare-tables", action="store_true",
                        help="also run the fused path without the ball's per-relation tables (side by side)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "all_entity_step.json"))
    args = parser.parse_args(argv)

    from hale_tf import data
    from hale_tf.training import TrainQueries

    splits = data.load_id_splits(args.dataset)
    n, r = splits.num_entities, splits.num_relations
    queries = TrainQueries.from_triples(splits.triples["train"], num_relations=r, num_entities=n)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    model_names = [m.strip() for m in args.models.split(",") if m.strip()]
    loss_names = [x.strip() for x in args.losses.split(",") if x.strip()]
    print(f"{args.dataset}: {n} entities, {queries.num_queries} training queries, d = 32; "
          f"{args.steps} steps per configuration", flush=True)

    accuracy = distance_accuracy()
    print("float32 δ against float64 (max abs error):")
    print_table(accuracy, ["scale", "max_delta", "moebius_max_abs_err", "arcosh_max_abs_err"])
    rows: list[dict[str, Any]] = []
    for batch in batches:
        floor = matmul_floor(n, batch, 32, repeats=15)
        rows.append({"model": "-", "loss": "matmul floor", "path": "3 matmuls", "batch": batch,
                     "ms_per_step": floor, "examples_per_s": 1000.0 * batch / floor, "x_floor": 1.0})
        print(f"B = {batch}: matmul floor {floor:.1f} ms", flush=True)
        for model_name in model_names:
            for loss_name in loss_names:
                paths = (["fused-no-tables"] if args.compare_tables else []) + ["fused"]
                for path in paths + ([] if args.no_reference else ["reference"]):
                    fused = path != "reference"
                    steps = args.steps if fused else args.reference_steps
                    with _relation_tables(path != "fused-no-tables"):
                        row = train_rate(model_name, LOSSES[loss_name], splits, queries, batch, steps, fused)
                    row.update(model=model_name, loss=loss_name, path=path, batch=batch,
                               x_floor=row["ms_per_step"] / floor)
                    rows.append(row)
                    print(f"  {model_name} {loss_name} {row['path']}: {row['ms_per_step']:.1f} ms/step, "
                          f"{row['examples_per_s']:.0f} /s", flush=True)
    print()
    print_table(rows, ["model", "loss", "path", "batch", "ms_per_step", "examples_per_s", "x_floor"])
    payload = {"dataset": args.dataset, "steps": args.steps, "rows": rows, "distance_accuracy": accuracy,
               "environment": environment(),
               "note": "examples are queries for hale-all and triples for softmax (its KGEmb batch unit)"}
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
