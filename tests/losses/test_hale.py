"""HaLELoss: the softmax special case, the formulas against a brute-force reference, gradients, registry."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import losses, models

N, R2, DIM = 30, 6, 8


def _model(name: str = "rotH", **kw) -> models.KGEModel:
    tf.keras.utils.set_random_seed(1)
    # A larger init scale than the default 1e-3 so scores differ visibly between entities.
    return models.get(name, num_entities=N, num_relations=R2, dim=DIM, init_scale=0.3, **kw)


def _perturb_biases(model: models.KGEModel) -> None:
    rng = np.random.default_rng(3)
    model.entities.head_bias.assign(rng.normal(size=N).astype("float32"))
    model.entities.tail_bias.assign(rng.normal(size=N).astype("float32"))


QUERIES = [(0, 0, [1, 2, 3]), (4, 1, [5]), (6, 5, [7, 1, 8, 9]), (10, 2, [2])]


def _reference(model, queries, cands_for, *, tau, wa, wu, filtered, add_answers, psi=None):
    """Brute-force HaLE from the formulas, in float64 NumPy, from score_all (``psi``: the loss's ψ on δ)."""
    heads = np.array([q[0] for q in queries])
    rels = np.array([q[1] for q in queries])
    scores = model.score_all(tf.constant(heads), tf.constant(rels)).numpy().astype(np.float64)
    # HaLE leaves out the head bias (a per-query constant that no ranking depends on).
    scores = scores - model.entities.head_bias.numpy()[heads, None]
    if psi is not None:  # the model's ψ is the identity: δ = b_t − (s − b_h)
        tail_bias = model.entities.tail_bias.numpy().astype(np.float64)[None, :]
        scores = tail_bias - psi(tail_bias - scores)
    scores = scores / tau
    per_query, align, unif = [], [], []
    for b, (_, _, answers) in enumerate(queries):
        cands = list(cands_for(b))
        s = scores[b]
        a = -np.mean([s[t] for t in answers])
        if filtered:
            neg = [s[e] for e in cands if e not in answers]
            u = np.mean([np.logaddexp.reduce([s[t], *neg]) for t in answers])
        else:
            logits = [s[e] for e in cands] + ([s[t] for t in answers] if add_answers else [])
            u = np.logaddexp.reduce(logits)
        align.append(a)
        unif.append(u)
        per_query.append(wa * a + wu * u)
    return np.array(per_query), np.array(align), np.array(unif)


def test_equals_softmax_cross_entropy_with_one_answer_and_all_negatives() -> None:
    model = _model()
    _perturb_biases(model)
    triples = tf.constant([[0, 0, 1], [4, 1, 5], [6, 5, 7], [10, 2, 2], [6, 5, 29]])
    batch = losses.QueryBatch.from_triples(triples)
    logits = model.score_all(triples[:, 0], triples[:, 1])
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=triples[:, 2], logits=logits)
    # The fused kernel (default) computes δ in the arcosh form, score_all in the Möbius form: equal in
    # exact arithmetic, 1e-4 apart in float32 at these (large) distances. The reference path
    # (fused=False) is the same computation as score_all; float64 equality: tests/models/test_all_entity.py.
    for fused, tol in ((False, 1e-5), (True, 2e-4)):
        for filtered in (False, True):  # with one answer, filtering removes nothing
            out = losses.HaLELoss("all", temperature=1.0, filtered=filtered, fused=fused)(model, batch)
            np.testing.assert_allclose(out.per_example.numpy(), expected.numpy(), rtol=tol, atol=tol)
            np.testing.assert_allclose((out.terms["alignment"] + out.terms["uniformity"]).numpy(),
                                       expected.numpy(), rtol=tol, atol=tol)
        softmax = losses.get("softmax", fused=fused)(model, batch)
        np.testing.assert_allclose(softmax.per_example.numpy(), expected.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("negatives", ["all", "in_batch", "sampled", "sampled+in_batch"])
def test_matches_bruteforce_reference(negatives: str, filtered: bool) -> None:
    model = _model()
    _perturb_biases(model)
    batch = losses.QueryBatch.from_lists(QUERIES)
    tau, wa, wu, seed = 0.5, 0.7, 1.3, tf.constant([5, 9])
    kw = dict(temperature=tau, alignment_weight=wa, uniformity_weight=wu, filtered=filtered)
    all_answers = [t for _, _, ts in QUERIES for t in ts]
    samples = tf.random.stateless_uniform([7], tf.cast(seed, tf.int32), 0, N, tf.int32).numpy().tolist()
    if negatives == "all":
        loss, cands, add = losses.HaLELoss("all", **kw), lambda b: range(N), False
    elif negatives == "in_batch":
        loss, cands, add = losses.HaLELoss("in_batch", **kw), lambda b: all_answers, False
    elif negatives == "sampled":
        loss, cands, add = losses.HaLELoss("sampled", num_samples=7, **kw), lambda b: samples, True
    else:
        loss = losses.HaLELoss("sampled", num_samples=7, add_in_batch=True, **kw)
        cands, add = (lambda b: all_answers + samples), False
    out = loss(model, batch, seed=seed)
    per_query, align, unif = _reference(model, QUERIES, cands, tau=tau, wa=wa, wu=wu, filtered=filtered,
                                        add_answers=add)
    np.testing.assert_allclose(out.terms["alignment"].numpy(), align, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.terms["uniformity"].numpy(), unif, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.per_example.numpy(), per_query, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.loss.numpy(), per_query.mean(), rtol=1e-4)


@pytest.mark.parametrize("negatives", ["all", "sampled"])
@pytest.mark.parametrize("name", ["a_non", "a_lin"])
def test_loss_activation_shapes_the_logits_only(negatives: str, name: str) -> None:
    """ψ of the loss acts on δ inside the logits (fused and reference paths), not on the model's scores."""
    model = _model()
    _perturb_biases(model)
    batch = losses.QueryBatch.from_lists(QUERIES)
    seed = tf.constant([5, 9])
    params = {"beta": 0.5, "gamma": 3.0}  # δ here spans ≈ 0…20: both sides of the bound are visited
    samples = tf.random.stateless_uniform([7], tf.cast(seed, tf.int32), 0, N, tf.int32).numpy().tolist()
    cands, add = (lambda b: range(N), False) if negatives == "all" else (lambda b: samples, True)
    kw = dict(temperature=0.5, filtered=True, activation=name, activation_params=params,
              num_samples=7 if negatives == "sampled" else 0)
    psi = {"a_non": lambda d: 3.0 * np.tanh(0.5 * d / 3.0), "a_lin": lambda d: np.minimum(0.5 * d, 3.0)}[name]
    per_query, _, _ = _reference(model, QUERIES, cands, tau=0.5, wa=1.0, wu=1.0, filtered=True, add_answers=add,
                                 psi=psi)
    for fused in (True, False):
        out = losses.HaLELoss(negatives, fused=fused, **kw)(model, batch, seed=seed)
        np.testing.assert_allclose(out.per_example.numpy(), per_query, rtol=2e-4, atol=2e-4)
    # The model still scores with its own (identity) ψ.
    assert model.activation.name == "identity"
    with pytest.raises(ValueError, match="identity activation"):
        losses.HaLELoss(negatives, **kw)(_model(activation="power"), batch, seed=seed)


@pytest.mark.parametrize("filtered", [False, True])
def test_fused_sampled_gradients_match_reference(filtered: bool) -> None:
    """Sampled negatives through the fused kernel (gathered subset): values and gradients of autodiff."""
    model = _model("attH")
    _perturb_biases(model)
    batch = losses.QueryBatch.from_lists(QUERIES)
    seed = tf.constant([2, 4])
    results = []
    for fused in (True, False):
        loss = losses.HaLELoss("sampled", num_samples=9, temperature=0.7, filtered=filtered, fused=fused)
        with tf.GradientTape() as tape:
            value = loss(model, batch, seed=seed).loss
        grads = tape.gradient(value, model.trainable_variables)
        results.append((value.numpy(), [tf.convert_to_tensor(g).numpy() if g is not None else None
                                        for g in grads]))
    (v_fused, g_fused), (v_ref, g_ref) = results
    np.testing.assert_allclose(v_fused, v_ref, rtol=1e-4)
    for var, a, b in zip(model.trainable_variables, g_fused, g_ref, strict=True):
        if b is None or not np.any(b):
            assert a is None or not np.any(a), var.name
            continue
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4 * np.abs(b).max(), err_msg=var.name)


def test_filtering_removes_other_answers_only() -> None:
    """Filtered uniformity ≤ unfiltered (fewer terms in the sum), equal for one-answer queries."""
    model = _model()
    batch = losses.QueryBatch.from_lists(QUERIES)
    plain = losses.HaLELoss("all", filtered=False)(model, batch).terms["uniformity"].numpy()
    filt = losses.HaLELoss("all", filtered=True)(model, batch).terms["uniformity"].numpy()
    many = np.array([len(q[2]) > 1 for q in QUERIES])
    assert np.all(filt[many] < plain[many])
    np.testing.assert_allclose(filt[~many], plain[~many], rtol=1e-5)


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_answer_weighting_scales_each_query_by_its_answer_count(power: float) -> None:
    model = _model()
    batch = losses.QueryBatch.from_lists(QUERIES)
    plain = losses.HaLELoss("in_batch")(model, batch)
    weighted = losses.HaLELoss("in_batch", answer_weight_power=power)(model, batch)
    counts = np.array([len(q[2]) for q in QUERIES], np.float32)
    np.testing.assert_allclose(weighted.per_example.numpy(), plain.per_example.numpy() * counts**power, rtol=1e-6)
    np.testing.assert_allclose(weighted.terms["alignment"].numpy(), plain.terms["alignment"].numpy())


def test_n3_adds_the_cubed_norms_of_head_and_mean_answer() -> None:
    model = _model()
    batch = losses.QueryBatch.from_lists(QUERIES)
    plain = losses.HaLELoss("in_batch")(model, batch)
    regularised = losses.HaLELoss("in_batch", n3_weight=0.5)(model, batch)
    table = np.asarray(model.entities.embeddings)
    cubed = lambda i: np.sum(np.abs(table[i]) ** 3)  # noqa: E731
    expected = [0.5 * (cubed(h) + np.mean([cubed(t) for t in ts])) for h, _, ts in QUERIES]
    np.testing.assert_allclose(regularised.terms["n3"].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(regularised.per_example.numpy(), plain.per_example.numpy() + expected, rtol=1e-5)
    with pytest.raises(ValueError, match="n3_weight"):
        losses.HaLELoss(n3_weight=-1.0)


def test_frequency_sampling_follows_counts() -> None:
    model = _model()
    loss = losses.HaLELoss("sampled", num_samples=4000, sampling="frequency", frequency_power=1.0)
    counts = np.zeros(N)
    counts[[3, 7]] = [1000, 3000]
    with pytest.raises(ValueError, match="prepare"):
        loss(model, losses.QueryBatch.from_lists(QUERIES))
    loss.prepare(num_entities=N, answer_counts=counts)
    cands, _ = loss._candidates(losses.QueryBatch.from_lists(QUERIES), tf.constant([1, 2]), N)
    freq = np.bincount(cands.numpy(), minlength=N) / 4000
    assert freq[7] == pytest.approx(0.75, abs=0.03) and freq[3] == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize("name", models.available())
def test_gradients_reach_every_trainable_parameter(name: str) -> None:
    """Every parameter gets a finite, non-zero gradient — except the head bias under HaLE.

    b_h is a constant per query (no ranking depends on it) and HaLE removes it, so its gradient is
    exactly 0 there; the logistic negative-sampling loss is not shift-invariant and does train it.
    """
    model = _model(name)
    batch = losses.QueryBatch.from_lists(QUERIES)
    for loss in (losses.HaLELoss("all"), losses.HaLELoss("in_batch", temperature=0.5),
                 losses.NegativeSamplingLoss(8, batch_unit="queries")):
        with tf.GradientTape() as tape:
            value = loss(model, batch, seed=[1, 1]).loss
        grads = tape.gradient(value, model.trainable_variables)
        assert model.trainable_variables
        for var, grad in zip(model.trainable_variables, grads, strict=True):
            where = f"{loss.name}: {var.path}"
            if isinstance(loss, losses.HaLELoss) and var.path.endswith("head_bias"):
                # No gradient at all (fused all-entity path) or an exact 0 (b_h subtracted from the logits).
                assert grad is None or np.all(tf.convert_to_tensor(grad).numpy() == 0.0), where
                continue
            assert grad is not None, f"no gradient for {where}"
            g = tf.convert_to_tensor(grad).numpy()
            assert np.all(np.isfinite(g)), where
            assert np.any(g != 0), f"zero gradient for {where}"
    if hasattr(model, "curvature"):
        assert any("curvature" in v.path for v in model.trainable_variables)


def test_config_round_trip_and_registry() -> None:
    loss = losses.get("hale", negatives="sampled", num_samples=16, temperature=0.25, add_in_batch=True)
    assert isinstance(loss, losses.HaLELoss)
    again = losses.get(loss.get_config())
    assert again.get_config() == loss.get_config()
    assert {"hale", "negative_sampling", "self_adversarial", "softmax", "bce", "one_vs_all"} <= set(
        losses.available()
    )
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("nope")
    with pytest.raises(ValueError, match="negatives"):
        losses.HaLELoss("everything")
    with pytest.raises(ValueError, match="num_samples"):
        losses.HaLELoss("sampled")
    with pytest.raises(ValueError, match="temperature"):
        losses.HaLELoss(temperature=0.0)
