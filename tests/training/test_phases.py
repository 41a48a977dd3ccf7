"""Phased training: limits shared by cumulative shares, per-phase loss/optimiser, exact resume, best of the run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import losses, training
from tests.training.test_trainer import QUICK, _model, _triples, _weights

HALE_THEN_NS = [
    {"until": 0.4, "training": {"learning_rate": 0.02}},
    {"until": 1.0, "loss": {"name": "negative_sampling", "num_negatives": 5}, "training": {"learning_rate": 0.005}},
]


def test_phases_split_the_steps_and_switch_loss_and_learning_rate() -> None:
    result = training.fit_phases(_model(), losses.HaLELoss("in_batch"), _triples(), HALE_THEN_NS, max_steps=20,
                                 steps_per_call=3, **QUICK)
    assert result.steps == 20 and [p["steps"] for p in result.phases] == [8, 12]
    assert result.stop_reason == "max_steps"
    assert [p["loss"]["name"] for p in result.phases] == ["hale", "negative_sampling"]
    np.testing.assert_allclose(result.history["learning_rate"], [0.02] * 8 + [0.005] * 12, rtol=1e-6)
    assert all(len(v) == 20 for v in result.history.values())
    # HaLE's terms exist only in the first phase: NaN-padded so that every column is indexed by step.
    uniformity = np.array(result.history["uniformity"])
    assert np.isfinite(uniformity[:8]).all() and np.isnan(uniformity[8:]).all()
    assert np.isfinite(result.history["loss"]).all()
    seconds = np.array(result.history["seconds"])
    assert (np.diff(seconds) > 0).all() and math.isclose(seconds[-1], result.train_seconds, rel_tol=1e-6)
    # NS batches are triples, HaLE batches are queries: the phase's epochs are counted in its own examples.
    assert result.phases[1]["training"]["batch_size"] == 32 and result.epochs > 0


def test_a_killed_phased_run_resumes_exactly(tmp_path: Path) -> None:
    triples = _triples()
    validation = training.ValidationData(triples[:40])
    kw = {**QUICK, "max_steps": 20, "steps_per_call": 3, "validate_every_steps": 4, "restore_best": False}
    full = training.fit_phases(_model(), "hale", triples, HALE_THEN_NS, validation=validation, **kw)
    assert [v["phase"] for v in full.validations] == [0, 0, 1, 1, 1]

    calls = {"n": 0}
    validate = validation.make_fn()

    def killed_in_phase_1(model):  # the 4th validation is at step 8 of phase 1
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return validate(model)

    first = training.fit_phases(_model(), "hale", triples, HALE_THEN_NS, validation_fn=killed_in_phase_1,
                                checkpoint_dir=tmp_path, **kw)
    assert first.stop_reason == "interrupted" and first.steps == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase-0", "phase-1"]
    resumed_model = _model(seed=99)
    second = training.fit_phases(resumed_model, "hale", triples, HALE_THEN_NS, validation=validation,
                                 checkpoint_dir=tmp_path, **kw)
    assert second.steps == 20 and second.stop_reason == "max_steps"
    np.testing.assert_allclose(second.history["loss"], full.history["loss"], rtol=1e-6, atol=1e-7)
    for a, b in zip(_weights(resumed_model), _weights(full.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_the_best_validation_of_the_whole_run_is_restored() -> None:
    seen: list[list[np.ndarray]] = []

    def worse_every_time(model):  # the first validation (phase 0, step 4) is the best of the run
        seen.append(_weights(model))
        return 1.0 / len(seen)

    result = training.fit_phases(_model(), "hale", _triples(), HALE_THEN_NS, validation_fn=worse_every_time,
                                 max_steps=20, validate_every_steps=4, **QUICK)
    assert len(seen) == 5 and result.best_step == 4 and result.best_mrr == 1.0 and result.restored_best
    for a, b in zip(_weights(result.model), seen[0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_summaries_of_all_phases_share_one_step_axis(tmp_path: Path) -> None:
    training.fit_phases(_model(), "hale", _triples(), HALE_THEN_NS, max_steps=10, log_dir=tmp_path,
                        log_every_steps=1, **QUICK)
    steps: dict[str, list[int]] = {"loss/hale": [], "loss/negative_sampling": []}
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    # One curve per loss (their scales differ), on the run's step axis: HaLE steps 0-3, then NS 4-9.
    assert sorted(steps["loss/hale"]) == list(range(4))
    assert sorted(steps["loss/negative_sampling"]) == list(range(4, 10))
    assert "train/loss" not in steps


def test_time_budget_is_shared_cumulatively() -> None:
    result = training.fit_phases(_model(), "hale", _triples(), HALE_THEN_NS, time_budget_s=4.0, **QUICK)
    first, second = result.phases
    assert first["stop_reason"] == "time_budget" and second["stop_reason"] == "time_budget"
    assert first["training"]["time_budget_s"] == pytest.approx(1.6)
    # The second phase gets what is left of the whole budget, whatever the first one overshot.
    assert second["training"]["time_budget_s"] == pytest.approx(4.0 - first["train_seconds"])
    assert result.train_seconds == pytest.approx(first["train_seconds"] + second["train_seconds"])


@pytest.mark.parametrize("phases, message", [
    ([{"until": 0.5}, {"until": 0.4}], "increase and end at 1"),
    ([{"until": 0.5}], "increase and end at 1"),
    ([{"until": 1.0, "training": {"max_steps": 3}}], "cannot set"),
    ([{"until": 1.0, "training": {"learning_rat": 0.1}}], "unknown TrainingConfig fields"),
    ([{"until": 1.0, "loss": {"num_negatives": 5}}], "loss config with a 'name'"),
    ([{"until": 1.0, "loss": 3}], "loss config with a 'name'"),
    ([{"until": 1.0, "lr": 0.1}], "unknown phase keys"),
    ([{"loss": {"name": "hale"}}], "needs 'until'"),
    ([{"until": 0.0}, {"until": 1.0}], r"in \(0, 1\]"),
])
def test_bad_phases_are_refused_before_training(phases, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        training.fit_phases(_model(), "hale", _triples(), phases, max_steps=4, **QUICK)
