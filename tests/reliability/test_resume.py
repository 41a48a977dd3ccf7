"""Resume: budget-driven checkpoints, SIGTERM checkpoints, a corrupt newest checkpoint, kill -9, --force."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from hale_tf import losses, models, training
from hale_tf.reciprocal import relation_ids
from hale_tf.training.trainer import _checkpoint_period
from tests.reliability.helpers import ROOT, cli_env, run_cli

N, R = 40, 3
QUICK: dict[str, Any] = dict(batch_size=32, learning_rate=0.01, verbose=0, strategy=tf.distribute.get_strategy())


def _triples() -> np.ndarray:
    rng = np.random.default_rng(0)
    h, r = rng.integers(0, N, 400), rng.integers(0, R, 400)
    return np.stack([h, r, (h * (r + 2) + rng.integers(0, 3, 400)) % N], axis=1)


def _model(seed: int = 0) -> models.KGEModel:
    tf.keras.utils.set_random_seed(seed)
    return models.get("rotE", num_entities=N, num_relations=relation_ids(R), dim=8, init_scale=0.1)


def _steps(directory: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in directory.glob("ckpt-*.index"))


def test_checkpoint_cadence_follows_the_budget() -> None:
    config = training.TrainingConfig
    assert _checkpoint_period(config(time_budget_s=60, checkpoint_every_s=120)) == pytest.approx(6.0)
    assert _checkpoint_period(config(time_budget_s=600, checkpoint_every_s=30)) == 30  # explicit smaller wins
    assert _checkpoint_period(config(time_budget_s=60, checkpoint_every_s=None)) == pytest.approx(6.0)
    assert _checkpoint_period(config(max_steps=10, checkpoint_every_s=120)) == 120  # no budget: as configured
    assert _checkpoint_period(config(max_steps=10, checkpoint_every_s=None)) is None


def test_a_corrupt_newest_checkpoint_falls_back_to_an_older_one(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    loss = losses.HaLELoss("in_batch")
    first = training.fit(_model(), loss, _triples(), max_steps=12, checkpoint_every_steps=6, keep_checkpoints=3,
                         checkpoint_dir=tmp_path, **QUICK)
    assert first.steps == 12 and _steps(tmp_path) == [6, 12]
    data = next(tmp_path.glob("ckpt-12.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])  # a full disk during the write
    with caplog.at_level(logging.INFO, logger="hale_tf.training.trainer"):
        second = training.fit(_model(seed=5), loss, _triples(), max_steps=16, checkpoint_dir=tmp_path, **QUICK)
    assert "ckpt-12 is unreadable" in caplog.text
    assert re.search(r"resumed \S+ckpt-6 at step 6", caplog.text)
    assert second.steps == 16 and len(second.history["loss"]) == 16
    np.testing.assert_allclose(second.history["loss"][:6], first.history["loss"][:6], rtol=1e-6)


def test_nothing_readable_trains_from_the_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loss = losses.HaLELoss("in_batch")
    training.fit(_model(), loss, _triples(), max_steps=4, checkpoint_dir=tmp_path, **QUICK)
    for data in tmp_path.glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    model = _model()
    initial = [np.array(w) for w in model.get_weights()]
    with caplog.at_level(logging.WARNING, logger="hale_tf.training.trainer"):
        result = training.fit(model, loss, _triples(), max_steps=4, checkpoint_dir=tmp_path, **QUICK)
    assert "no readable checkpoint" in caplog.text
    assert result.steps == 4 and len(result.history["loss"]) == 4
    reference = training.fit(_model(), loss, _triples(), max_steps=4, **QUICK)  # same start, no checkpoint
    np.testing.assert_allclose(result.history["loss"], reference.history["loss"], rtol=1e-6)
    assert not all(np.array_equal(a, np.array(b)) for a, b in zip(initial, model.get_weights(), strict=True))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_training_checkpoints_and_the_rerun_continues(tmp_path: Path, signum: int) -> None:
    loss = losses.HaLELoss("in_batch")
    full = training.fit(_model(), loss, _triples(), max_steps=14, steps_per_call=3, **QUICK)

    def signal_at_step_6(model: Any) -> float:
        os.kill(os.getpid(), signum)  # as `kill` or Ctrl-C would, in the middle of training
        return 0.0

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    first = training.fit(_model(), loss, _triples(), max_steps=14, steps_per_call=3, checkpoint_dir=tmp_path,
                         validation_fn=signal_at_step_6, validate_every_steps=6, checkpoint_every_s=None, **QUICK)
    assert first.stop_reason == "interrupted" and first.steps == 6
    assert _steps(tmp_path) == [6]  # written on the signal: no periodic checkpoint was due
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers  # the handlers are put back
    second = training.fit(_model(seed=9), loss, _triples(), max_steps=14, steps_per_call=3, checkpoint_dir=tmp_path,
                          **QUICK)
    assert second.steps == 14
    np.testing.assert_allclose(second.history["loss"], full.history["loss"], rtol=1e-6, atol=1e-7)


KINSHIP = ["--dataset=kinship", "--time_budget=20s", "--validate_every=5s", "--strategy=default", "--num_shards=2"]


def _resumed_step(stderr: str) -> int | None:
    match = re.search(r"resumed \S+ckpt-(\d+) at step (\d+)", stderr)
    return int(match.group(2)) if match else None


def test_kill_9_during_training_then_the_rerun_resumes_and_finishes(tmp_path: Path, shared_datasets: Path) -> None:
    # No checkpoint_every_s override: kinship's configured 120 s would never checkpoint in a 20 s run; the
    # budget-driven cadence (10 % of it) must.
    root = tmp_path / "root"
    args = [*KINSHIP, f"--pipeline_root={root}"]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.run", *args], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = "Trainer/runs/*/checkpoints/ckpt-*.index"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(root.glob(pattern)):
            assert proc.poll() is None, "the pipeline ended before its first checkpoint"
            time.sleep(0.2)
        assert list(root.glob(pattern)), "no checkpoint within 120 s"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not list(root.glob("Trainer/*/metadata.json"))  # the killed Trainer published nothing
    written = max(int(p.stem.split("-")[1]) for p in root.glob(pattern))
    # The newest checkpoint the manager recorded: a kill between writing ckpt-N.index and updating the
    # `checkpoint` state file leaves ckpt-N unrecorded, and resume rightly takes N − 1 then.
    states = list(root.glob("Trainer/runs/*/checkpoints/checkpoint"))
    recorded = [int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', s.read_text()).group(1)) for s in states]
    killed_at = max(recorded) if recorded else written
    assert 0 < killed_at <= written

    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = _resumed_step(done.stderr)
    assert resumed is not None and resumed >= killed_at, done.stderr[-3000:]
    summary = json.loads((root / "summary.json").read_text())
    assert summary["training"]["stop_reason"] == "time_budget"
    assert summary["training"]["steps"] > resumed  # the step count continues
    # The budget counts both runs: the total is one budget, not two (2 × 20 s) — the only upper bound the
    # claim needs (a busy machine's first-call tracing can overshoot the budget by seconds, not by 20 s).
    assert 17.0 <= summary["training"]["train_seconds"] < 2 * 20.0


def test_force_trains_anew(tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "root"
    args = ["--dataset=kinship", "--time_budget=4s", "--validate_every=60s", "--strategy=default",
            "--num_shards=2", f"--pipeline_root={root}"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not list(root.glob("Trainer/runs/*/checkpoints"))  # published: its checkpoints are removed
    forced = run_cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert _resumed_step(forced.stderr) is None, forced.stderr[-3000:]  # the old final checkpoint is not reused
    assert "Trainer: cache hit" not in forced.stderr
    training_json = json.loads((root / "summary.json").read_text())["training"]
    # A whole budget of training (not the 0.4 s of "resuming" the old final checkpoint); tracing may overshoot.
    assert training_json["train_seconds"] >= 3.0 and training_json["steps"] > 0


def test_sigterm_during_training_checkpoints_and_publishes_nothing(tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "root"
    args = ["--dataset=kinship", "--time_budget=60s", "--validate_every=60s", "--strategy=default",
            "--num_shards=2", "--set=training.checkpoint_every_s=1000", f"--pipeline_root={root}"]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.run", *args], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pattern = "Trainer/runs/*/checkpoints/ckpt-*.index"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(root.glob(pattern)):  # the 10 % one, at 6 s
            assert proc.poll() is None, "the pipeline ended before its first checkpoint"
            time.sleep(0.2)
        first = {p.name for p in root.glob(pattern)}
        assert first, "no checkpoint within 120 s"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "rerun the same command to resume" in stderr
    assert {p.name for p in root.glob(pattern)} - first  # a checkpoint written on the signal
    assert not list(root.glob("Trainer/*/metadata.json"))  # no unfinished model published (or cached)
