"""The fused all-entity kernel: values and gradients against autodiff of the plain formula in float64,
boundary accuracy of the arcosh form, the losses that use it, 2 replicas, resume."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hale_tf import activations, losses, models, training
from hale_tf.geometry import euclidean, poincare
from hale_tf.models.all_entity import AllEntityInputs, AllEntityKernel, all_entity_reduce

B, N, D = 7, 53, 6
ROWS = np.array([0, 0, 2, 3, 3, 3, 6], np.int32)  # excluded cells (a query's answers)
IDS = np.array([1, 5, 50, 0, 9, 52, 3], np.int32)
ACTIVATIONS = [activations.get("identity"), activations.get("power", p=2.0), activations.get("exp", beta=2.0)]


def _exact_ball_delta(x: tf.Tensor, v: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """δ = d_c(x, exp0_c(v))² pair by pair through a [B, N, d] tensor: the Möbius form, no matmul trick."""
    y = poincare.expmap0(v[tf.newaxis, :, :], c[:, :, tf.newaxis])
    return poincare.squared_distance(x[:, tf.newaxis, :], y, c[:, :, tf.newaxis])[..., 0]


def _inputs(geometry: str, seed: int, scale: float = 0.5) -> tuple[AllEntityInputs, list[tf.Tensor]]:
    rng = np.random.default_rng(seed)
    c = tf.constant(rng.uniform(0.3, 2.0, (B, 1)))
    raw = tf.constant(rng.normal(size=(B, D)) * scale)
    x = poincare.project(poincare.expmap0(raw, c), c) if geometry == "poincare" else raw
    v = tf.constant(rng.normal(size=(N, D)) * scale)
    tail_bias, head_bias = tf.constant(rng.normal(size=N)), tf.constant(rng.normal(size=B))
    return (x, c, v, tail_bias, head_bias), rng


def _kernel_inputs(geometry: str, x, c, v, tail_bias, head_bias) -> AllEntityInputs:
    x2 = tf.reduce_sum(x * x, axis=-1, keepdims=True)
    if geometry == "poincare":
        return AllEntityInputs(geometry, x, [x2, c], v, [poincare.safe_norm(v)[:, 0]], tail_bias, head_bias)
    return AllEntityInputs(geometry, x, [x2], v, [tf.reduce_sum(v * v, axis=-1)], tail_bias, head_bias)


# Every mode with ψ = identity; every ψ with the filtered log-sum-exp (the chain rule through ψ is shared).
CASES = [(ACTIVATIONS[0], mode) for mode in ("logsumexp", "logsumexp_excluded", "softplus_head_bias", "split3")]
CASES += [(act, "logsumexp_excluded") for act in ACTIVATIONS[1:]]


@pytest.mark.parametrize("geometry", ["poincare", "euclidean"])
@pytest.mark.parametrize(("activation", "mode"), CASES, ids=lambda x: getattr(x, "name", x))
def test_values_and_gradients_equal_autodiff_of_the_formula(geometry: str, activation, mode: str) -> None:
    tensors, rng = _inputs(geometry, seed=len(mode) + len(geometry))
    x, c, v, tail_bias, head_bias = tensors
    reduction = "softplus" if mode.startswith("softplus") else "logsumexp"
    excluded = (tf.constant(ROWS), tf.constant(IDS)) if mode in ("logsumexp_excluded", "split3") else None
    with_head_bias = mode == "softplus_head_bias"
    # chunk 16 does not divide N = 53: the padded entities must contribute nothing.
    spec = AllEntityKernel(geometry, activation, 0.7, reduction, 16)
    sources = [x, c, v, tail_bias, head_bias]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(sources)
        out = all_entity_reduce(spec, _kernel_inputs(geometry, *sources), excluded=excluded,
                                with_head_bias=with_head_bias, parts=3 if mode == "split3" else 1)
        delta = _exact_ball_delta(x, v, c) if geometry == "poincare" else euclidean.squared_distance_to_all(x, v)
        shift = tail_bias[tf.newaxis, :] + (head_bias[:, tf.newaxis] if with_head_bias else 0.0)
        logits = (shift - activation(delta)) * 0.7
        if reduction == "softplus":
            reference = tf.stack([tf.reduce_sum(tf.math.softplus(logits), 1), tf.reduce_sum(logits, 1)])
        else:
            if excluded is not None:
                cells = tf.stack(excluded, axis=1)
                logits = tf.tensor_scatter_nd_update(logits, cells, tf.fill([len(IDS)], tf.constant(-1e30, tf.float64)))
            reference = tf.reduce_logsumexp(logits, 1)
        weights = tf.constant(rng.normal(size=reference.shape))
        mine, theirs = tf.reduce_sum(out * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-10, atol=1e-10)
    for name, got, want in zip(["x", "c", "v", "tail_bias", "head_bias"], tape.gradient(mine, sources),
                               tape.gradient(theirs, sources), strict=True):
        if want is None:
            assert got is None or not np.any(tf.convert_to_tensor(got).numpy()), name
            continue
        np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), want.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("parts", [1, 3])
def test_per_relation_terms_equal_autodiff_of_the_formula(parts: int) -> None:
    """The ball's (curvature, entity) terms once per relation id, gathered to the queries: values and the
    gradients of x, every relation's curvature, v and the biases equal autodiff of the plain formula."""
    tensors, rng = _inputs("poincare", seed=11)
    _, _, v, tail_bias, head_bias = tensors
    rel_index = tf.constant(rng.integers(0, 3, B), tf.int32)  # 3 relation ids (one may be unused)
    rel_c = tf.constant(rng.uniform(0.3, 2.0, (3, 1)))
    row_c = tf.gather(rel_c, rel_index)
    x = poincare.project(poincare.expmap0(tf.constant(rng.normal(size=(B, D)) * 0.5), row_c), row_c)
    spec = AllEntityKernel("poincare", ACTIVATIONS[1], 0.7, "logsumexp", 16)
    sources = [x, rel_c, v, tail_bias]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(sources)
        c = tf.gather(rel_c, rel_index)
        inputs = _kernel_inputs("poincare", x, c, v, tail_bias, head_bias)._replace(
            relation_index=rel_index, relation_curvature=rel_c)
        out = all_entity_reduce(spec, inputs, excluded=(tf.constant(ROWS), tf.constant(IDS)), parts=parts)
        logits = (tail_bias[tf.newaxis, :] - ACTIVATIONS[1](_exact_ball_delta(x, v, c))) * 0.7
        logits = tf.tensor_scatter_nd_update(logits, tf.stack([ROWS, IDS], axis=1),
                                             tf.fill([len(IDS)], tf.constant(-1e30, tf.float64)))
        reference = tf.reduce_logsumexp(logits, 1)
        weights = tf.constant(rng.normal(size=B))
        mine, theirs = tf.reduce_sum(out * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-10, atol=1e-10)
    for name, got, want in zip(["x", "rel_c", "v", "tail_bias"], tape.gradient(mine, sources),
                               tape.gradient(theirs, sources), strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), tf.convert_to_tensor(want).numpy(),
                                   rtol=1e-8, atol=1e-10, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.05, 8.0), c=st.floats(0.05, 4.0), seed=st.integers(0, 10_000))
def test_arcosh_form_is_accurate_to_the_boundary_in_float32(scale: float, c: float, seed: int) -> None:
    """float32 δ of the kernel's arcosh form against float64, from the origin out to the ball's edge."""
    rng = np.random.default_rng(seed)
    curvature = np.full((4, 1), c)
    x64 = poincare.project(poincare.expmap0(tf.constant(rng.normal(size=(4, 8)) * scale / 3), curvature),
                           tf.constant(curvature)).numpy()
    v64 = rng.normal(size=(16, 8)) * scale / 3
    eps32 = poincare.ball_eps(tf.float32)

    def delta(dtype, eps):
        x, v, cc = (tf.constant(t, dtype) for t in (x64, v64, curvature))
        a = tf.matmul(x, v, transpose_b=True)
        return poincare.squared_distance_from_dot(a, tf.reduce_sum(x * x, -1, keepdims=True), cc,
                                                  poincare.safe_norm(v)[:, 0][tf.newaxis, :], eps=eps).numpy()

    want, got = delta(tf.float64, eps32), delta(tf.float32, eps32)
    assert np.all(np.isfinite(got))
    # Relative to the distance itself (δ of far points reaches ~10³ at small c); 1e-3 near the edge.
    np.testing.assert_array_less(np.abs(got - want), 1e-3 * np.maximum(want, 1.0))


def test_kernel_is_finite_for_points_on_the_clamp_and_at_the_origin() -> None:
    spec = AllEntityKernel("poincare", activations.get("identity"), 1.0, "logsumexp", 8)
    c = tf.constant([[1.0], [1.0], [0.5]])
    x = poincare.project(tf.constant([[0.0, 0.0], [5.0, 0.0], [0.0, -9.0]]), c)  # origin and on the boundary
    v = tf.constant([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0], [1e-20, 0.0]])  # origin, clamped entities
    inputs = _kernel_inputs("poincare", x, c, v, tf.zeros([4]), tf.zeros([3]))
    with tf.GradientTape() as tape:
        tape.watch([x, c, v])
        inputs = _kernel_inputs("poincare", x, c, v, tf.zeros([4]), tf.zeros([3]))
        out = all_entity_reduce(spec, inputs, parts=1)
    grads = tape.gradient(out, [x, c, v])
    assert np.all(np.isfinite(out.numpy()))
    for g in grads:
        assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy()))


QUERIES = [(0, 0, [1, 2, 3]), (4, 1, [5]), (6, 5, [7, 1, 8, 9]), (10, 2, [2]), (30, 3, [36, 0])]
FUSED_LOSSES = [
    ("hale", dict(negatives="all", filtered=True)),
    ("hale", dict(negatives="all", filtered=False, temperature=0.5)),
    ("softmax", {}),
    ("bce", dict(label_smoothing=0.1)),
]


# Every model with the filtered HaLE loss; every fused loss on one model of each geometry.
LOSS_CASES = [(name, *FUSED_LOSSES[0]) for name in models.available()]
LOSS_CASES += [(name, *loss) for name in ("rotH", "transE") for loss in FUSED_LOSSES[1:]]


@pytest.mark.parametrize(("model_name", "loss_name", "config"), LOSS_CASES, ids=lambda x: str(x))
def test_fused_losses_equal_the_score_all_losses_in_float64(model_name: str, loss_name: str, config) -> None:
    """Every model, every fused loss: values and gradients of every variable (entities, relations,
    curvature, biases) equal the reference path (score_all + autodiff) in float64."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        tf.keras.utils.set_random_seed(1)
        model = models.get(model_name, num_entities=37, num_relations=6, dim=8, init_scale=0.3)
        rng = np.random.default_rng(0)
        model.entities.tail_bias.assign(rng.normal(size=37))
        model.entities.head_bias.assign(rng.normal(size=37))
        batch = losses.QueryBatch.from_lists(QUERIES)
        results = []
        for fused in (True, False):
            loss = losses.get(loss_name, fused=fused, **config)
            with tf.GradientTape() as tape:
                out = loss(model, batch)
                weights = tf.range(1, 1 + tf.size(out.per_example), dtype=out.per_example.dtype)
                objective = tf.reduce_sum(out.per_example * weights)
            grads = tape.gradient(objective, model.trainable_variables)
            # b_h gets no gradient at all on the fused path (None), an exact 0 on the reference path.
            results.append((out.per_example.numpy(), [
                np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
                for g, v in zip(grads, model.trainable_variables, strict=True)]))
    finally:
        # Building a model under floatx float64 also fixes the global dtype policy: restore both.
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)
    (fused_values, fused_grads), (ref_values, ref_grads) = results
    np.testing.assert_allclose(fused_values, ref_values, rtol=1e-9, atol=1e-11)
    for variable, got, want in zip(model.trainable_variables, fused_grads, ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-11, err_msg=variable.path)


def _triples(n: int = 400, entities: int = 50, relations: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    h = rng.integers(0, entities, n)
    r = rng.integers(0, relations, n)
    return np.stack([h, r, (h * (r + 2) + rng.integers(0, 3, n)) % entities], axis=1)


def _model(seed: int = 0) -> models.KGEModel:
    tf.keras.utils.set_random_seed(seed)
    return models.get("rotH", num_entities=50, num_relations=6, dim=8, init_scale=0.1)


QUICK = dict(batch_size=32, learning_rate=0.01, verbose=0)


@pytest.mark.parametrize("model_name", ["rotH", "attH"])
def test_models_share_per_relation_terms_and_still_equal_the_reference(model_name: str, monkeypatch) -> None:
    """The model path with the per-relation tables switched on for this small batch (5 queries, 6 ids)."""
    from hale_tf.models import base as model_base

    monkeypatch.setattr(model_base, "PER_RELATION_MIN_QUERIES", 0)
    model = models.get(model_name, num_entities=37, num_relations=6, dim=8)
    assert model.all_entity_inputs(tf.constant([0, 1]), tf.constant([2, 5])).relation_curvature is not None
    test_fused_losses_equal_the_score_all_losses_in_float64(model_name, *FUSED_LOSSES[0])


def test_two_replicas_train_like_one(two_cpus: tuple[str, str]) -> None:
    strategy = training.mirrored_strategy(two_cpus)  # shared with the other 2-replica tests
    loss = losses.HaLELoss("all", temperature=0.5)
    kw = {**QUICK, "max_steps": 4, "steps_per_call": 2}
    one = training.fit(_model(), loss, _triples(), strategy=tf.distribute.get_strategy(), **kw)
    two = training.fit(_model(), loss, _triples(), strategy=strategy, **kw)
    np.testing.assert_allclose(two.history["loss"], one.history["loss"], rtol=1e-5)
    for a, b in zip(two.model.get_weights(), one.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    loss = losses.get("softmax")
    kw = {**QUICK, "steps_per_call": 3, "strategy": tf.distribute.get_strategy()}
    full = training.fit(_model(), loss, _triples(), max_steps=8, **kw)
    training.fit(_model(), loss, _triples(), max_steps=4, checkpoint_dir=tmp_path, **kw)
    resumed = training.fit(_model(seed=5), loss, _triples(), max_steps=8, checkpoint_dir=tmp_path, **kw)
    np.testing.assert_allclose(resumed.history["loss"], full.history["loss"], rtol=1e-6, atol=1e-7)
    for a, b in zip(resumed.model.get_weights(), full.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
