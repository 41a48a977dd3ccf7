"""In-batch negatives under a 2-replica MirroredStrategy equal the single-replica computation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from hale_tf import losses, models, training

# Uneven answer counts per replica on purpose: replica 0 holds 6 answers, replica 1 holds 4.
QUERIES = [(0, 0, [1, 2, 3]), (4, 1, [5, 2]), (6, 5, [7]), (10, 2, [2, 11]), (12, 3, [1]), (13, 4, [14])]
LOSSES = {
    "in_batch_filtered": losses.HaLELoss("in_batch", filtered=True),
    "sampled_plus_in_batch_tau": losses.HaLELoss("sampled", num_samples=5, add_in_batch=True, temperature=0.3),
    # Control: each replica uses only its own answers, so it must *differ* from one replica.
    "control_no_gather": losses.HaLELoss("in_batch", cross_replica=False),
}
_PAD = 8  # the halves have different answer counts: pad to one length so tf.cond can pick either


def _pad(batch: losses.QueryBatch) -> tuple[tf.Tensor, ...]:
    def pad(x: tf.Tensor) -> tf.Tensor:
        return tf.pad(x, [[0, _PAD - tf.shape(x)[0]]])

    return batch.heads, batch.relations, pad(batch.answer_rows), pad(batch.answer_ids), tf.size(batch.answer_ids)


def test_in_batch_negatives_two_replicas_equal_one(two_cpus: tuple[str, str]) -> None:
    # The process-wide strategy object: a second MirroredStrategy on the same devices would collide.
    strategy = training.mirrored_strategy(two_cpus)
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        # A Euclidean model keeps the two-replica graph small (tracing it dominates this test's time);
        # the gathering under test does not depend on the geometry.
        model = models.get("rotE", num_entities=20, num_relations=6, dim=8, init_scale=0.3)
    variables = model.trainable_variables
    seed = tf.constant([3, 4])
    full = losses.QueryBatch.from_lists(QUERIES)
    halves = [_pad(losses.QueryBatch.from_lists(QUERIES[:3])), _pad(losses.QueryBatch.from_lists(QUERIES[3:]))]

    single = {}
    for name, loss in LOSSES.items():
        with tf.GradientTape() as tape:
            value = loss(model, full, seed=seed).loss
        single[name] = (value.numpy(), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, variables)])

    @tf.function
    def distributed():
        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            first = tf.equal(ctx.replica_id_in_sync_group, 0)
            parts = [tf.cond(first, lambda a=a: a, lambda b=b: b) for a, b in zip(*halves, strict=True)]
            batch = losses.QueryBatch(parts[0], parts[1], parts[2][: parts[4]], parts[3][: parts[4]])
            out = {}
            for name, loss in LOSSES.items():
                with tf.GradientTape() as tape:
                    o = loss(model, batch, seed=seed)
                    # Loss normalised by the global number of queries, summed over replicas (as the trainer).
                    n = ctx.all_reduce("sum", tf.cast(tf.size(o.per_example), tf.float32))
                    value = tf.reduce_sum(o.per_example) / n
                grads = [tf.convert_to_tensor(g) for g in tape.gradient(value, variables)]
                out[name] = (ctx.all_reduce("sum", value), ctx.all_reduce("sum", grads))
            return out

        return strategy.run(replica_fn)

    results = distributed()
    for name, (value, grads) in results.items():
        values = [v.numpy() for v in strategy.experimental_local_results(value)]
        assert len(values) == 2
        want_value, want_grads = single[name]
        if name.startswith("control"):
            assert abs(values[0] - want_value) > 1e-3, "without all_gather the loss should differ"
            continue
        for v in values:
            np.testing.assert_allclose(v, want_value, rtol=1e-5, err_msg=name)
        for g_dist, g_single in zip(grads, want_grads, strict=True):
            for local in strategy.experimental_local_results(g_dist):
                # float32 hyperbolic arithmetic in another order: compare at the gradient's own scale.
                np.testing.assert_allclose(local.numpy(), g_single, rtol=1e-4,
                                           atol=1e-6 + 1e-4 * np.abs(g_single).max(), err_msg=name)
