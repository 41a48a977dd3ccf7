"""Where a training step's time goes: milliseconds per step of each part, for the pipeline's phases.

On a dataset's real training queries, with the loss and batch size of each phase of the pipeline's recipe
(``pipelines.config.training_recipe``: HaLE in-batch, then negative sampling), compiled functions that do
successively more of one training step run ``--steps`` steps each (inside one ``tf.function`` loop, as
the trainer runs them):

- ``batch``: the batch's index gathers (``BatchSampler.batch``);
- ``+ loss``: and the loss (negatives drawn, candidates scored);
- ``+ gradient``: and its gradient, densified as the trainer does (``IndexedSlices`` → dense tables);
- ``+ SGD update`` / ``+ Adam update`` / ``+ fused Adam update`` / ``+ LazyAdam update``: and the
  optimiser's update (SGD has no moment tables; Adam is Keras' own; fused Adam the same formula in one
  kernel, ``hale_tf.training.FusedAdam``; LazyAdam updates only the rows the batch touched and keeps the
  gradient sparse);
- ``trainer``: the trainer's own compiled multi-step function (``_Stepper.train``: non-finite checks,
  learning-rate schedule, the real optimiser).

Differences between consecutive rows are what each part costs. Variants run round-robin, so load on a
shared machine hits them alike; medians over ``--rounds`` are reported.

    python bench/step_profile.py                               # WN18RR, RotH and AttH
    python bench/step_profile.py --dataset fb15k-237 --models rotH --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS_DIR, environment, median, print_table, write_json  # noqa: E402
from hale_tf.reciprocal import relation_ids  # noqa: E402


def _parts(model: Any, loss: Any, sampler: Any, lr: float) -> dict[str, Any]:
    """Compiled ``fn(batches, count) -> scalar`` per part; each does ``count`` steps over ``batches[:count]``."""
    import keras
    import tensorflow as tf

    from hale_tf.training import optimizers

    variables = list(model.trainable_variables)

    def gradients(batch: Any, seed: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            out = loss(model, batch, seed=seed)
            objective = tf.reduce_mean(out.per_example)
        grads = tape.gradient(objective, variables)
        return objective, [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]

    def densify(grads: list[Any]) -> list[tf.Tensor]:
        return [tf.convert_to_tensor(g) for g in grads]

    def loop(step_fn: Any) -> Any:
        @tf.function
        def run(batches: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
            total = tf.constant(0.0)
            for i in tf.range(count):
                seed = tf.stack([tf.constant(0, tf.int64), tf.cast(i, tf.int64)])
                total += step_fn(sampler.batch(batches[i]), seed)
            return total
        return run

    def batch_only(batch: Any, seed: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.reduce_sum(batch.answer_ids) + tf.reduce_sum(batch.heads), tf.float32)

    def forward(batch: Any, seed: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(loss(model, batch, seed=seed).per_example)

    def backward(batch: Any, seed: tf.Tensor) -> tf.Tensor:
        objective, grads = gradients(batch, seed)
        # One cheap read of each dense gradient keeps it from being pruned (the trainer reads them too,
        # for its non-finite check).
        return objective + tf.add_n([tf.reduce_sum(g[:1]) for g in densify(grads)])

    def with_update(optimizer: keras.optimizers.Optimizer, sparse: bool) -> Any:
        optimizer.build(variables)

        def step(batch: Any, seed: tf.Tensor) -> tf.Tensor:
            objective, grads = gradients(batch, seed)
            optimizer.apply_gradients(zip(grads if sparse else densify(grads), variables, strict=True))
            return objective
        return step

    return {
        "batch": loop(batch_only),
        "+ loss": loop(forward),
        "+ gradient": loop(backward),
        "+ SGD update": loop(with_update(keras.optimizers.SGD(lr), sparse=False)),
        "+ Adam update": loop(with_update(keras.optimizers.Adam(lr), sparse=False)),
        "+ fused Adam update": loop(with_update(optimizers.get("fused_adam", lr), sparse=False)),
        "+ LazyAdam update": loop(with_update(optimizers.get("lazy_adam", lr), sparse=True)),
    }


def profile_phase(model_name: str, splits: Any, phase: dict[str, Any], training_fields: dict[str, Any],
                  steps: int, rounds: int) -> list[dict[str, Any]]:
    import tensorflow as tf

    from hale_tf import losses, models
    from hale_tf.training import BatchSampler, TrainingConfig, TrainQueries, epoch_permutation, optimizers
    from hale_tf.training.trainer import _Stepper

    n, r = splits.num_entities, splits.num_relations
    queries = TrainQueries.from_triples(splits.triples["train"], num_relations=r, num_entities=n)
    settings = {**training_fields, **phase.get("training", {})}
    config = TrainingConfig.from_dict({k: v for k, v in settings.items() if k in TrainingConfig.__dataclass_fields__})
    model = models.get(model_name, num_entities=n, num_relations=relation_ids(r), dim=32)
    loss = losses.get(phase["loss"])
    loss.prepare(num_entities=n, answer_counts=queries.answer_counts())
    sampler = BatchSampler(queries, loss.batch_unit)
    order = epoch_permutation(sampler.epoch_size, 0, 0)
    per_epoch = sampler.epoch_size // config.batch_size
    if per_epoch < steps:
        raise SystemExit(f"--steps {steps} exceeds the {per_epoch} batches of an epoch")
    batches = tf.reshape(order[: per_epoch * config.batch_size], [per_epoch, -1])
    loss(model, sampler.batch(batches[0]), seed=tf.constant([0, 0], tf.int64))  # builds the weights

    parts = _parts(model, loss, sampler, config.learning_rate)
    optimizer = optimizers.get(config.optimizer, config.learning_rate, **config.optimizer_params)
    optimizer.build(model.trainable_variables)
    stepper = _Stepper(model, loss, optimizer, tf.distribute.get_strategy(), sampler, seed=0)
    zero, count = tf.constant(0, tf.int32), tf.constant(steps, tf.int32)

    def trainer(_: tf.Tensor, __: tf.Tensor) -> Any:
        return stepper.train(batches, zero, count, tf.constant(0, tf.int64), tf.constant(0.0), tf.constant(0.0))

    parts["trainer"] = trainer
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    for fn in parts.values():  # tracing and first call, untimed
        fn(batches, count)
    for _ in range(rounds):
        for name, fn in parts.items():
            t0 = time.perf_counter()
            out = fn(batches, count)
            tf.nest.map_structure(lambda t: t.numpy(), out)
            seconds[name].append(time.perf_counter() - t0)
    label = f"{phase['loss'].get('name')}"
    if phase["loss"].get("negatives"):
        label += f" ({phase['loss']['negatives']})"
    rows, previous = [], 0.0
    for name, values in seconds.items():
        ms = 1000.0 * median(values) / steps
        delta = None if name == "trainer" else ms - previous
        rows.append({"model": model_name, "phase": label, "batch": config.batch_size, "part": name,
                     "ms_per_step": ms, "delta_ms": delta, "seconds": values})
        if name in ("batch", "+ loss", "+ gradient"):
            previous = ms
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="wn18rr")
    parser.add_argument("--models", default="rotH,attH")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS_DIR / "step_profile.json"))
    args = parser.parse_args(argv)

    from hale_tf import data
    from pipelines.config import training_recipe

    recipe = training_recipe(args.dataset)
    phases = recipe["phases"] or [{"until": 1.0, "loss": recipe["loss"], "training": {}}]
    splits = data.load_id_splits(args.dataset)
    print(f"{args.dataset}: {splits.num_entities} entities, {len(splits.triples['train'])} train triples; "
          f"{args.steps} steps per call, {args.rounds} rounds", flush=True)
    rows = []
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        for phase in phases:
            rows += profile_phase(model_name, splits, phase, recipe["training"], args.steps, args.rounds)
    print_table(rows, ["model", "phase", "batch", "part", "ms_per_step", "delta_ms"])
    payload = {"dataset": args.dataset, "steps": args.steps, "rounds": args.rounds, "recipe": recipe,
               "rows": rows, "environment": environment()}
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
