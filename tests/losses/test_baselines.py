"""Baselines: negative sampling (KGEmb mean-logistic, RotatE self-adversarial) and 1-vs-all losses."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import losses, models

N = 40


def _model() -> models.KGEModel:
    tf.keras.utils.set_random_seed(2)
    return models.get("rotE", num_entities=N, num_relations=4, dim=8, init_scale=0.3)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


TRIPLES = tf.constant([[0, 0, 1], [2, 1, 3], [4, 3, 5]])


def _negatives(k: int, seed) -> np.ndarray:
    return tf.random.stateless_uniform([3, k], tf.constant(seed), 0, N, tf.int32).numpy()


def test_uniform_negative_sampling_is_kgemb_mean_logistic_loss() -> None:
    model, seed, k = _model(), [4, 2], 5
    out = losses.get("negative_sampling", num_negatives=k)(model, losses.QueryBatch.from_triples(TRIPLES), seed=seed)
    pos = model.score(TRIPLES[:, 0], TRIPLES[:, 1], TRIPLES[:, 2]).numpy()
    neg = model.score_candidates(TRIPLES[:, 0], TRIPLES[:, 1], _negatives(k, seed)).numpy()
    # KGEmb: −mean(cat(log σ(s⁺), log σ(−s⁻))) over all B(1 + k) entries.
    expected = -np.concatenate([_log_sigmoid(pos), _log_sigmoid(-neg).ravel()]).mean()
    np.testing.assert_allclose(out.loss.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("model_name", ["rotE", "rotH"])
def test_double_negatives_pair_a_random_head_with_random_tails_as_kgemb(model_name: str) -> None:
    tf.keras.utils.set_random_seed(3)
    model = models.get(model_name, num_entities=N, num_relations=4, dim=8, init_scale=0.3)
    seed, k = tf.constant([4, 2], tf.int64), 5
    loss = losses.get("negative_sampling", num_negatives=k, corrupt="both")
    tails = _negatives(k, seed)
    heads = tf.random.stateless_uniform([3], tf.random.experimental.stateless_fold_in(seed, 1), 0, N,
                                        tf.int32).numpy()  # one random head per positive
    assert (heads != tails[:, 0]).any()  # two independent draws, not one reused
    with tf.GradientTape(persistent=True) as tape:
        out = loss(model, losses.QueryBatch.from_triples(TRIPLES), seed=seed)
        loss_value = tf.reduce_mean(out.per_example)
        pos = model.score(TRIPLES[:, 0], TRIPLES[:, 1], TRIPLES[:, 2])
        # KGEmb's double_neg: negatives (h', r, t'_i), the relation of their positive.
        neg = model.score(np.repeat(heads, k), np.repeat(TRIPLES[:, 1].numpy(), k), tails.ravel())
        expected = -tf.reduce_mean(tf.concat([tf.math.log_sigmoid(pos), tf.math.log_sigmoid(-neg)], 0))
    np.testing.assert_allclose(loss_value.numpy(), expected.numpy(), rtol=1e-5)
    got = tf.convert_to_tensor(tape.gradient(loss_value, model.entities.embeddings))
    want = tf.convert_to_tensor(tape.gradient(expected, model.entities.embeddings))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-7)
    # The random heads get a gradient as queries (tail-only corruption never touches them).
    only_negative_heads = sorted(set(heads.ravel()) - set(TRIPLES.numpy()[:, [0, 2]].ravel()) - set(tails.ravel()))
    assert only_negative_heads and np.abs(got.numpy()[only_negative_heads]).sum(axis=1).min() > 0
    with pytest.raises(ValueError, match="corrupt"):
        losses.get("negative_sampling", corrupt="head")
    with pytest.raises(ValueError, match="shared_samples"):
        losses.get("negative_sampling", corrupt="both", shared_samples=16)
    assert losses.get(loss.get_config()).corrupt == "both"


def test_self_adversarial_weights() -> None:
    model, seed, k, alpha, margin = _model(), [1, 1], 6, 0.5, 2.0
    loss = losses.get("self_adversarial", num_negatives=k, adversarial_temperature=alpha, margin=margin)
    out = loss(model, losses.QueryBatch.from_triples(TRIPLES), seed=seed)
    pos = model.score(TRIPLES[:, 0], TRIPLES[:, 1], TRIPLES[:, 2]).numpy() + margin
    neg = model.score_candidates(TRIPLES[:, 0], TRIPLES[:, 1], _negatives(k, seed)).numpy() + margin
    w = np.exp(alpha * neg) / np.exp(alpha * neg).sum(1, keepdims=True)
    expected = -0.5 * (_log_sigmoid(pos) + (w * _log_sigmoid(-neg)).sum(1))
    np.testing.assert_allclose(out.per_example.numpy(), expected, rtol=1e-5)
    # The weights carry no gradient (RotatE): the gradient equals that of the loss with w held fixed.
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        value = loss(model, losses.QueryBatch.from_triples(TRIPLES), seed=seed).loss
    got = tape.gradient(value, variables)
    negatives = tf.constant(_negatives(k, seed))
    with tf.GradientTape() as tape:
        pos_t = model.score(TRIPLES[:, 0], TRIPLES[:, 1], TRIPLES[:, 2]) + margin
        neg_t = model.score_candidates(TRIPLES[:, 0], TRIPLES[:, 1], negatives) + margin
        fixed_w = tf.constant(w, neg_t.dtype)
        held = tf.reduce_mean(-0.5 * (tf.math.log_sigmoid(pos_t)
                                      + tf.reduce_sum(fixed_w * tf.math.log_sigmoid(-neg_t), axis=1)))
    want = tape.gradient(held, variables)
    np.testing.assert_allclose(value.numpy(), held.numpy(), rtol=1e-5)
    for variable, g, expected_g in zip(variables, got, want, strict=True):
        assert g is not None and expected_g is not None, variable.path
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(expected_g).numpy(),
                                   rtol=1e-4, atol=1e-7, err_msg=variable.path)


def test_bce_one_vs_all_multi_hot() -> None:
    model = _model()
    batch = losses.QueryBatch.from_lists([(0, 0, [1, 2]), (3, 2, [4])])
    out = losses.get("bce", label_smoothing=0.1)(model, batch)
    logits = model.score_all(batch.heads, batch.relations).numpy()
    labels = np.zeros_like(logits)
    labels[0, [1, 2]] = 1
    labels[1, 4] = 1
    labels = 0.9 * labels + 0.1 / N
    bce = -(labels * _log_sigmoid(logits) + (1 - labels) * _log_sigmoid(-logits)).mean(1)
    np.testing.assert_allclose(out.per_example.numpy(), bce, rtol=1e-5)


def test_n3_adds_the_cubed_norms_of_head_and_tail_per_triple() -> None:
    model, seed = _model(), [3, 1]
    batch = losses.QueryBatch.from_triples(TRIPLES)
    plain = losses.get("negative_sampling", num_negatives=4)(model, batch, seed=seed)
    regularised = losses.get("negative_sampling", num_negatives=4, n3_weight=0.2)(model, batch, seed=seed)
    table = np.asarray(model.entities.embeddings)
    expected = [0.2 * (np.sum(np.abs(table[h]) ** 3) + np.sum(np.abs(table[t]) ** 3)) for h, _, t in TRIPLES.numpy()]
    np.testing.assert_allclose(regularised.terms["n3"].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(regularised.per_example.numpy(), plain.per_example.numpy() + expected, rtol=1e-5)
    assert "n3" not in plain.terms
    with pytest.raises(ValueError, match="n3_weight"):
        losses.get("negative_sampling", n3_weight=-0.1)


@pytest.mark.parametrize("model_name", ["rotE", "rotH"])
@pytest.mark.parametrize("unit", ["triples", "queries"])
def test_shared_negatives_equal_the_per_positive_formula_over_the_shared_sample(model_name: str, unit: str) -> None:
    tf.keras.utils.set_random_seed(4)
    model = models.get(model_name, num_entities=N, num_relations=4, dim=8, init_scale=0.3)
    seed, k, m = tf.constant([5, 9]), 7, 24
    batch = (losses.QueryBatch.from_triples(TRIPLES) if unit == "triples"
             else losses.QueryBatch.from_lists([(0, 0, [1, 2, 3]), (3, 2, [4]), (5, 1, [6, 7])]))
    loss = losses.get("negative_sampling", num_negatives=k, shared_samples=m, batch_unit=unit)
    heads, relations, rows, ids = batch
    h, r = tf.gather(heads, rows), tf.gather(relations, rows)
    samples = loss.shared_sample(seed, N)
    assert samples.shape == (m,)
    with tf.GradientTape(persistent=True) as tape:
        out = loss(model, batch, seed=seed)
        pos = model.score(h, r, ids)
        neg = model.score_candidates(h, r, tf.tile(samples[tf.newaxis, :], [tf.shape(ids)[0], 1]))  # [K, M]
        reference = (tf.math.softplus(-pos) + k * tf.reduce_mean(tf.math.softplus(neg), axis=1)) / (1.0 + k)
        loss_value, reference_value = tf.reduce_mean(out.per_example), tf.reduce_mean(reference)
    np.testing.assert_allclose(out.per_example.numpy(), reference.numpy(), rtol=1e-5)
    variables = model.trainable_variables
    for got, want, var in zip(tape.gradient(loss_value, variables), tape.gradient(reference_value, variables),
                              variables, strict=True):
        got, want = (tf.convert_to_tensor(g) if g is not None else tf.zeros_like(var) for g in (got, want))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6, err_msg=var.name)


def test_shared_negatives_refuse_what_they_do_not_implement() -> None:
    with pytest.raises(ValueError, match="shared_samples"):
        losses.get("negative_sampling", shared_samples=0)
    with pytest.raises(ValueError, match="uniform weighting"):
        losses.get("self_adversarial", shared_samples=64)
    loss = losses.get("negative_sampling", shared_samples=64)
    assert losses.get(loss.get_config()).shared_samples == 64


def test_query_unit_negative_sampling_uses_every_answer() -> None:
    batch = losses.QueryBatch.from_lists([(0, 0, [1, 2, 3]), (3, 2, [4])])
    out = losses.get("negative_sampling", num_negatives=3, batch_unit="queries")(_model(), batch)
    assert out.per_example.shape == (4,)


def test_baseline_configs_round_trip() -> None:
    for name in ("negative_sampling", "self_adversarial", "softmax", "bce", "one_vs_all"):
        loss = losses.get(name)
        assert losses.get(loss.get_config()).get_config() == loss.get_config()
    assert losses.get("self_adversarial").adversarial_temperature == 1.0
    assert losses.get("negative_sampling").num_negatives == 50
    with pytest.raises(ValueError):
        losses.get("one_vs_all", kind="hinge")
