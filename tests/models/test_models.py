"""Every model: score_all vs per-pair score vs a float64 NumPy reference, chunking, registry, checkpoints."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from hale_tf import models
from tests import reference as ref

NUM_ENTITIES, NUM_RELATIONS, DIM = 37, 6, 8
H = np.array([0, 5, 11, 36, 20], np.int32)
R = np.array([0, 1, 3, 5, 2], np.int32)
T = np.array([3, 5, 30, 0, 36], np.int32)


def make(name: str, **overrides) -> models.KGEModel:
    cfg = dict(num_entities=NUM_ENTITIES, num_relations=NUM_RELATIONS, dim=DIM, init_scale=0.4)
    cfg.update(overrides)
    keras.utils.set_random_seed(0)  # deterministic initial weights: the tolerances below were measured
    model = models.get(name, **cfg)
    # Non-zero biases and curvatures so the test covers them (they are zero / constant at init).
    rng = np.random.default_rng(7)
    for var in model.weights:
        if "bias" in var.path:
            var.assign(rng.normal(size=var.shape) * 0.1)
        if "curvature" in var.path:
            var.assign(rng.normal(size=var.shape))
    return model


ALL = models.available()


def test_registry_lists_the_family():
    assert set(ALL) == {"transE", "muRE", "rotE", "refE", "attE", "rotH", "refH", "attH"}
    assert type(models.get("ROTH", num_entities=3, num_relations=2, dim=2)).__name__ == "RotH"
    with pytest.raises(ValueError, match="unknown model 'nope'; available: .*rotH"):
        models.get("nope", num_entities=3, num_relations=2)
    with pytest.raises(ValueError, match="even"):
        models.get("rotE", num_entities=3, num_relations=2, dim=3)


@pytest.mark.parametrize("name", ALL)
def test_score_all_matches_pairwise_and_float64_reference(name):
    model = make(name)
    all_scores = model.score_all(H, R).numpy()
    assert all_scores.shape == (len(H), NUM_ENTITIES)
    pair = model.score(H, R, T).numpy()
    # float32 closed form vs float32 pairwise: they are different formulas for hyperbolic models.
    # float32 points near the boundary (init_scale 0.4, c up to ~2.5): the two formulas agree to ~6e-4
    # relative over 15 seeds (measured), 1e-3 allowed.
    np.testing.assert_allclose(all_scores[np.arange(len(H)), T], pair, rtol=1e-3, atol=1e-4)
    # float32 model vs float64 NumPy reference: tolerance 1e-3 relative/absolute (scores are O(1–10)).
    np.testing.assert_allclose(all_scores, ref.reference_scores(model, H, R), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ALL)
def test_float64_model_matches_reference_tightly(name):
    model = make(name, dtype="float64")
    assert model.entities.embeddings.dtype == "float64"
    got = model.score_all(H, R).numpy()
    np.testing.assert_allclose(got, ref.reference_scores(model, H, R, eps=1e-5), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["transE", "rotH", "attH"])
def test_chunking_candidates_and_shared_sets_agree(name):
    model = make(name)
    full = model.score_all(H, R).numpy()
    # Matmuls of other shapes sum in another order; near the ball boundary float32 amplifies that to ~2e-4.
    for chunk in (1, 5, 7, 36, 37, 100):  # including chunks that do not divide N
        np.testing.assert_allclose(
            model.score_all(H, R, entity_chunk_size=chunk).numpy(), full, rtol=5e-4, atol=1e-5
        )
    cands = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 36]], np.int32)
    np.testing.assert_allclose(
        model.score_candidates(H, R, cands).numpy(), np.take_along_axis(full, cands, 1), rtol=1e-3, atol=1e-4
    )
    ids = np.array([36, 0, 17], np.int32)
    np.testing.assert_allclose(model.score_entities(H, R, ids).numpy(), full[:, ids], rtol=5e-4, atol=1e-5)


def test_memory_budget_sizes_entity_chunks():
    model = models.get("rotH", num_entities=200_000, num_relations=4, dim=4, score_memory_budget=64 * 2**20)
    chunk = model.entity_chunk_for(1000)
    assert chunk * 1000 * 4 * model._score_temporaries <= 64 * 2**20
    assert models.get("rotH", num_entities=50, num_relations=4, dim=4).entity_chunk_for(1000) == 50


@pytest.mark.parametrize("name", ["rotH", "attE"])
def test_activation_is_applied_to_the_distance(name):
    base = make(name)
    steep = make(name, activation="exp", activation_params={"beta": 10.0})
    steep.set_weights(base.get_weights())
    s0, s1 = base.score(H, R, T).numpy(), steep.score(H, R, T).numpy()
    bias = (ref.weights_of(base)["entities/head_bias"][H] + ref.weights_of(base)["entities/tail_bias"][T])
    delta = bias - s0
    np.testing.assert_allclose(s1, -10.0 * np.expm1(delta / 10.0) + bias, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip_and_keras_serialisation(name):
    model = make(name, activation="power", activation_params={"p": 1.5}, entity_chunk_size=11)
    config = model.get_config()
    clone = models.get(name, **config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.score_all(H, R).numpy(), model.score_all(H, R).numpy(), atol=1e-6)
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(rebuilt) is type(model) and rebuilt.get_config() == config


@pytest.mark.parametrize("name", ALL)
def test_checkpoint_round_trip(tmp_path, name):
    model = make(name)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = make(name, init_scale=0.01)
    fresh_scores = fresh.score_all(H, R).numpy()
    tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
    restored = fresh.score_all(H, R).numpy()
    assert not np.allclose(fresh_scores, restored)
    np.testing.assert_array_equal(restored, model.score_all(H, R).numpy())


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_gets_a_finite_gradient(name):
    model = make(name)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
            tf.one_hot(T, NUM_ENTITIES), model.score_all(H, R)))
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad in zip(model.trainable_variables, grads, strict=True):
        assert grad is not None, var.path
        values = tf.convert_to_tensor(grad).numpy()
        assert np.all(np.isfinite(values)) and np.any(values != 0), var.path


def test_ids_given_as_floats_are_cast():
    # Keras' trial build under a strategy can feed float ids (PLATFORM_NOTES); call() must cope.
    model = make("rotH")
    out = model((tf.constant(H, tf.float32), tf.constant(R, tf.float32)))
    np.testing.assert_allclose(out.numpy(), model.score_all(H, R).numpy())


def test_jit_compiled_score_all_matches_eager():
    model = make("rotH")
    fn = tf.function(lambda h, r: model.score_all(h, r), jit_compile=True)
    # XLA fuses and reorders the float32 arithmetic; near the ball boundary that moves scores by ~3e-4.
    np.testing.assert_allclose(fn(tf.constant(H), tf.constant(R)).numpy(), model.score_all(H, R).numpy(),
                               rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["rotH", "attE"])
def test_save_and_load_model_directory(tmp_path, name):
    model = make(name, activation="exp", activation_params={"beta": 3.0})
    models.save_model(model, tmp_path / "m")
    models.save_model(model, tmp_path / "m")  # replacing an existing directory works
    loaded = models.load_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.score_all(H, R).numpy(), model.score_all(H, R).numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directories left behind
    with pytest.raises(FileNotFoundError, match="no saved model"):
        models.load_model(tmp_path / "missing")


@pytest.mark.parametrize("name", ["rotH", "refH", "attH"])
def test_per_relation_ball_norm_table_path_matches_reference(name):
    # More queries than relation ids: γ comes from a per-relation [2R, N] table gathered per query.
    model = make(name)
    rng = np.random.default_rng(3)
    h = rng.integers(0, NUM_ENTITIES, 40).astype(np.int32)
    r = rng.integers(0, NUM_RELATIONS, 40).astype(np.int32)
    assert len(h) > model.num_relations
    np.testing.assert_allclose(model.score_all(h, r).numpy(), ref.reference_scores(model, h, r),
                               rtol=1e-3, atol=1e-3)
    ids = np.array([3, 9, 30], np.int32)
    # score_entities runs the XLA-fused block (reordered float32 arithmetic): 2.3e-4 relative measured on
    # distances ≈ 55 near the boundary, so the reference tolerance applies.
    np.testing.assert_allclose(model.score_entities(h, r, ids).numpy(), model.score_all(h, r).numpy()[:, ids],
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["rotH", "attH"])
def test_fused_distance_matches_graph_mode_with_dynamic_candidates(name):
    # Inside a tf.function with an unknown candidate count, the fused block pads to a bucket and slices.
    plain = make(name)
    fused = models.get(name, **{**plain.get_config(), "fused_distance": True})
    fused.set_weights(plain.get_weights())
    rng = np.random.default_rng(5)
    h = tf.constant(rng.integers(0, NUM_ENTITIES, 40), tf.int32)
    r = tf.constant(rng.integers(0, NUM_RELATIONS, 40), tf.int32)
    ids = tf.constant(rng.integers(0, NUM_ENTITIES, 37), tf.int32)

    def scores_and_grads(model):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def run(candidates):
            with tf.GradientTape() as tape:
                scores = model.score_entities(h, r, candidates)
                objective = tf.reduce_sum(tf.nn.log_softmax(scores, axis=1))
            return scores, tape.gradient(objective, model.trainable_variables)

        scores, grads = run(ids)
        return scores.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]

    ref_scores, ref_grads = scores_and_grads(plain)
    got_scores, got_grads = scores_and_grads(fused)
    assert got_scores.shape == (40, 37)
    np.testing.assert_allclose(got_scores, ref_scores, rtol=1e-3, atol=1e-3)
    for got, want in zip(got_grads, ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-3 * max(1.0, np.abs(want).max()))
