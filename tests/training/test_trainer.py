"""The trainer: exact resume, NaN detection, early stopping, budget and summaries, 2 replicas = 1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import losses, models, training
from hale_tf.reciprocal import relation_ids

N, R = 60, 3
# Euclidean models keep tracing (which dominates these short runs) cheap; the trainer is model-agnostic.
MODEL = "rotE"


def _triples(seed: int = 0, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, N, n)
    r = rng.integers(0, R, n)
    t = (h * (r + 2) + rng.integers(0, 3, n)) % N  # some structure, many answers per query
    return np.stack([h, r, t], axis=1)


def _model(seed: int = 0, name: str = MODEL, **config) -> models.KGEModel:
    tf.keras.utils.set_random_seed(seed)
    return models.get(name, num_entities=N, num_relations=relation_ids(R), dim=8, init_scale=0.1, **config)


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


QUICK = dict(batch_size=32, learning_rate=0.01, verbose=0, strategy=tf.distribute.get_strategy())


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    # Sampled negatives (stateless, from the step) and Adam (moments in the checkpoint) are both exercised.
    loss = losses.HaLELoss("sampled", num_samples=16, add_in_batch=True, temperature=0.5)
    full = training.fit(_model(), loss, _triples(), max_steps=14, steps_per_call=4, **QUICK)
    first = training.fit(_model(), loss, _triples(), max_steps=6, steps_per_call=4, checkpoint_dir=tmp_path,
                         **QUICK)
    assert first.steps == 6
    # A differently initialised model: everything must come from the checkpoint.
    resumed_model = _model(seed=99)
    second = training.fit(resumed_model, loss, _triples(), max_steps=14, steps_per_call=5,
                          checkpoint_dir=tmp_path, **QUICK)
    assert second.steps == 14 and second.stop_reason == "max_steps"
    np.testing.assert_allclose(second.history["loss"], full.history["loss"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(second.history["uniformity"], full.history["uniformity"], rtol=1e-6, atol=1e-7)
    for a, b in zip(_weights(resumed_model), _weights(full.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert json.loads((tmp_path / "run_config.json").read_text())["loss"]["negatives"] == "sampled"


def test_lr_decay_follows_the_run_and_survives_a_kill(tmp_path: Path) -> None:
    loss = losses.HaLELoss("in_batch", temperature=0.5)
    kw = {**QUICK, "max_steps": 14, "steps_per_call": 3, "lr_decay": "linear", "lr_decay_to": 0.1}
    full = training.fit(_model(), loss, _triples(), **kw)
    lr = np.array(full.history["learning_rate"])
    np.testing.assert_allclose(lr, 0.01 * (1 - 0.9 * np.arange(14) / 14), rtol=1e-6)  # progress = step / 14

    def killed(model):  # a kill during the validation at step 6
        raise KeyboardInterrupt

    first = training.fit(_model(), loss, _triples(), checkpoint_dir=tmp_path, validation_fn=killed,
                         validate_every_steps=6, **kw)
    assert first.stop_reason == "interrupted" and first.steps == 6
    second = training.fit(_model(seed=99), loss, _triples(), checkpoint_dir=tmp_path, **kw)
    assert second.steps == 14
    np.testing.assert_allclose(second.history["learning_rate"], lr, rtol=1e-6)
    np.testing.assert_allclose(second.history["loss"], full.history["loss"], rtol=1e-6, atol=1e-7)


class _Poisoned(losses.KGELoss):
    """HaLE in-batch, plus a NaN from step ``at`` on: in a loss term, or in one variable's gradient only."""

    name = "poisoned"

    def __init__(self, at: int, where: str) -> None:
        self.at, self.where, self.base = at, where, losses.HaLELoss("in_batch")

    def compute(self, model, batch, seed):
        out = self.base.compute(model, batch, seed)
        hit = seed[1] >= self.at  # the trainer's seed is (run seed, step)
        if self.where == "term":
            nan = tf.where(hit, tf.constant(np.nan, tf.float32), 0.0)
            terms = {**out.terms, "alignment": out.terms["alignment"] + nan}
            return losses.LossOutput(out.per_example + nan, terms)
        bias = model.entities.tail_bias
        # Finite value (0), but once hit the gradient is (1/2√0)·0 = ∞·0 = NaN for this variable only.
        u = tf.where(hit, 0.0 * bias, tf.ones_like(bias))
        poison = tf.reduce_sum(tf.sqrt(u)) - tf.reduce_sum(tf.where(hit, 0.0, tf.ones_like(bias)))
        return losses.LossOutput(out.per_example + poison, out.terms)


@pytest.mark.parametrize("where", ["gradient", "term"])
def test_non_finite_stops_naming_step_and_tensor(where: str) -> None:
    model = _model()
    with pytest.raises(training.NonFiniteError) as info:
        training.fit(model, _Poisoned(5, where), _triples(), max_steps=20, steps_per_call=3, **QUICK)
    err = info.value
    assert err.step == 5 and "step 5" in str(err)
    if where == "gradient":
        assert "gradient of variable" in str(err) and "tail_bias" in str(err)
    else:
        assert "loss term 'alignment'" in str(err)
    result = err.result
    assert result.stop_reason == "non_finite" and result.steps == 5 and len(result.history["loss"]) == 5
    # The bad update was not applied: the returned weights are finite.
    assert all(np.isfinite(w).all() for w in _weights(model))


@pytest.mark.parametrize("loss_name", ["hale", "negative_sampling"])
def test_a_float64_model_trains_like_its_float32_twin(loss_name: str) -> None:
    # KGEmb trains its low-dimensional hyperbolic models in double precision; the step must not assume float32.
    single, double = _model(name="rotH"), _model(name="rotH", dtype="float64")
    double.set_weights([w.astype(np.float64) for w in single.get_weights()])  # the same start
    runs = [training.fit(m, losses.get(loss_name), _triples(), max_steps=6, steps_per_call=3, **QUICK)
            for m in (single, double)]
    assert {tf.as_dtype(w.dtype) for w in double.trainable_variables} == {tf.float64}
    np.testing.assert_allclose(runs[1].history["loss"], runs[0].history["loss"], rtol=1e-4)
    for a, b in zip(_weights(double), _weights(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_early_stopping_restores_the_best_weights() -> None:
    script = iter([0.1, 0.5, 0.3, 0.2, 0.9])
    seen = {}

    def validation_fn(model) -> float:
        seen[len(seen)] = _weights(model)
        return next(script)

    model = _model()
    result = training.fit(model, "hale", _triples(), max_steps=100, validate_every_steps=3, patience=2,
                          validation_fn=validation_fn, **QUICK)
    assert result.stop_reason == "early_stopping"
    assert [v["step"] for v in result.validations] == [3, 6, 9, 12]
    assert result.best_step == 6 and result.best_mrr == pytest.approx(0.5) and result.restored_best
    for a, b in zip(_weights(model), seen[1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("best", [2, 5])
def test_weight_average_is_what_is_validated_kept_and_restored(best: int) -> None:
    # With Keras' use_ema the validation sees A_k = m A_(k-1) + (1 - m) W_k (A_1 = W_1); training still
    # follows the raw weights W_k (the run without the average replays them), and the model ends with the
    # best validation's average, also when the best is the last step.
    scores = [0.1, 0.2, 0.3, 0.25, 0.2, 0.15] if best == 2 else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]

    def recording(store: list) -> Any:
        script = iter(scores)

        def validation_fn(model) -> float:
            store.append(_weights(model))
            return next(script)
        return validation_fn

    raw, averaged, momentum = [], [], 0.5
    training.fit(_model(), "hale", _triples(), max_steps=6, validate_every_steps=1, validation_fn=recording(raw),
                 **QUICK)
    model = _model()
    result = training.fit(model, "hale", _triples(), max_steps=6, validate_every_steps=1,
                          validation_fn=recording(averaged),
                          optimizer_params={"use_ema": True, "ema_momentum": momentum}, **QUICK)
    expected = [raw[0]]
    for weights in raw[1:]:
        expected.append([momentum * a + (1 - momentum) * w for a, w in zip(expected[-1], weights, strict=True)])
    assert len(averaged) == 6 and result.best_step == best + 1 and result.restored_best
    for got, want in zip(averaged, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not all(np.array_equal(a, b) for a, b in zip(averaged[-1], raw[-1], strict=True))
    for a, b in zip(_weights(model), averaged[best], strict=True):
        np.testing.assert_array_equal(a, b)
    # Without validation the model ends with the last average (Keras' finalize_variable_values).
    unvalidated = _model()
    training.fit(unvalidated, "hale", _triples(), max_steps=6, **QUICK,
                 optimizer_params={"use_ema": True, "ema_momentum": momentum})
    for a, b in zip(_weights(unvalidated), expected[-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_time_budget_excludes_validation_and_writes_summaries(tmp_path: Path) -> None:
    def slow_validation(model) -> dict[str, float]:
        time.sleep(0.3)
        return {"mrr": 0.25, "hits@10": 0.5}

    model = _model(name="rotH")  # hyperbolic: curvature histograms too
    budget = 8.0  # the budget includes the first call's tracing (several seconds on a loaded machine)
    result = training.fit(model, losses.HaLELoss("in_batch"), _triples(), time_budget_s=budget,
                          validate_every_s=1.0, validation_fn=slow_validation, log_dir=tmp_path / "logs",
                          steps_per_call=50, **QUICK)
    assert result.stop_reason == "time_budget"
    step_time = result.train_seconds / result.steps
    assert budget <= result.train_seconds <= budget + max(1.0, 3 * step_time)
    assert len(result.validations) >= 2 and result.eval_seconds >= 0.3 * len(result.validations)
    assert result.history["seconds"][-1] == pytest.approx(result.train_seconds)
    saved = json.loads(result.to_json(tmp_path / "training.json").read_text())
    assert saved["stop_reason"] == "time_budget" and saved["validations"][0]["hits@10"] == 0.5
    tags = set()
    for path in (tmp_path / "logs").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(v.tag for v in event.summary.value)
    # One tag per loss (phases of different scales draw separate curves), its terms grouped under its name.
    assert {"loss/hale", "hale/alignment", "hale/uniformity", "train/learning_rate", "validation/mrr",
            "validation_by_seconds/mrr", "validation/hits@10", "weights/entity_norms",
            "weights/curvatures"} <= tags


def test_progress_is_plain_lines_when_redirected(capsys: pytest.CaptureFixture[str]) -> None:
    """stdout is not a terminal here: no redraws, one line per validation and one at the end."""
    kw = {**QUICK, "verbose": 1}
    validation = training.ValidationData(_triples()[:20])
    training.fit(_model(), "hale", _triples(), max_steps=6, validate_every_steps=3, validation=validation, **kw)
    out = capsys.readouterr().out
    assert not {"\r", "\b", "\x1b"} & set(out)
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert lines[0].startswith("step 3/6 ") and " valid mrr=" in lines[0] and " h@10=" in lines[0]
    assert lines[1].startswith("step 6/6 ")
    assert lines[2].startswith("training stopped (max_steps reached) at step 6") and "best valid mrr=" in lines[2]


@pytest.mark.parametrize("optimizer", ["keras_adam", "adam", "lazy_adam"])
def test_two_replicas_train_like_one(optimizer: Any, two_cpus: tuple[str, str]) -> None:
    # adam is the fused update (one kernel per variable, on each replica's copy); keras_adam Keras' own.
    # lazy_adam: sparse row updates on one replica, the dense "touched rows" rule on two.
    strategy = training.mirrored_strategy(two_cpus)  # shared with the loss tests
    loss = losses.HaLELoss("in_batch", temperature=0.5)
    if optimizer == "keras_adam":
        optimizer = {"class_name": "Adam", "config": {"learning_rate": 0.01}}
    kw = {**QUICK, "max_steps": 6, "steps_per_call": 3, "optimizer": optimizer}
    one = training.fit(_model(), loss, _triples(), **kw)
    two = training.fit(_model(), loss, _triples(), **{**kw, "strategy": strategy})
    np.testing.assert_allclose(two.history["loss"], one.history["loss"], rtol=1e-5)
    for a, b in zip(_weights(two.model), _weights(one.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_config_json_round_trip_and_validation() -> None:
    config = training.TrainingConfig(batch_size=128, time_budget_s=60, patience=3, optimizer_params={"beta_1": 0.8})
    assert training.TrainingConfig.from_json(config.to_json()) == config
    with pytest.raises(TypeError, match="unknown"):
        config.replace(batchsize=3)
    with pytest.raises(ValueError):
        training.TrainingConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr_decay must be one of"):
        training.TrainingConfig(lr_decay="step")
    cosine = training.TrainingConfig(lr_decay="cosine", lr_decay_to=0.2)
    assert [round(float(cosine.lr_factor(p)), 6) for p in (0.0, 0.5, 1.0, 2.0)] == [1.0, 0.6, 0.2, 0.2]
    assert float(training.TrainingConfig().lr_factor(0.7)) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        training.fit(_model(), "hale", _triples(), verbose=0)
