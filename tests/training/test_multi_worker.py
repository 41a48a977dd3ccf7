"""Two worker processes under MultiWorkerMirroredStrategy train like one process with two replicas.

The workers are real processes on loopback ports, started as a cluster starts them (the same command,
``TF_CONFIG`` differing); each runs :func:`_worker` below (``python -m tests.training.test_multi_worker``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hale_tf.reciprocal import relation_ids
from hale_tf.training import multi_worker

N, R, STEPS = 60, 3, 6
TRAIN = dict(batch_size=32, learning_rate=0.01, verbose=0, steps_per_call=3, seed=0)


def _triples() -> np.ndarray:
    rng = np.random.default_rng(0)
    h, r = rng.integers(0, N, 600), rng.integers(0, R, 600)
    return np.stack([h, r, (h * (r + 2) + rng.integers(0, 3, 600)) % N], axis=1)


def _loss():
    from hale_tf import losses

    # Sampled negatives: the same draw on every replica (stateless, from the step), Adam on top.
    return losses.HaLELoss("sampled", num_samples=16, add_in_batch=False, temperature=0.5)


def _model(strategy, seed: int = 0):
    import tensorflow as tf

    from hale_tf import models

    tf.keras.utils.set_random_seed(seed)
    with strategy.scope():
        return models.get("rotE", num_entities=N, num_relations=relation_ids(R), dim=8, init_scale=0.1)


def _worker(out_dir: Path) -> None:
    """One worker: a run stopped at step 3, then resumed from the chief's checkpoint to step 6."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first, before any other TF op
    from hale_tf import training

    task = multi_worker.strategy_task(strategy)
    ckpt = out_dir / "checkpoints"
    training.fit(_model(strategy), _loss(), _triples(), strategy=strategy, max_steps=3, checkpoint_dir=ckpt, **TRAIN)
    # A rerun with a differently initialised model: the state must come from the chief's checkpoint.
    resumed = training.fit(_model(strategy, seed=99), _loss(), _triples(), strategy=strategy, max_steps=STEPS,
                           checkpoint_dir=ckpt, **TRAIN)
    np.savez(out_dir / f"worker-{task.index}.npz", loss=resumed.history["loss"], steps=resumed.steps,
             **{f"w{i}": w for i, w in enumerate(resumed.model.get_weights())})


def test_tf_config_of_a_local_cluster() -> None:
    configs = [json.loads(c) for c in multi_worker.local_cluster(3)]
    addresses = configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert [multi_worker.cluster_task(json.dumps(c)) for c in configs] == [
        multi_worker.ClusterTask(i, 3) for i in range(3)]
    assert multi_worker.cluster_task("") is None
    with pytest.raises(ValueError, match="TF_CONFIG is not a cluster spec"):
        multi_worker.cluster_task('{"cluster": {}}')
    with pytest.raises(ValueError, match="TF_CONFIG: only 'worker' tasks"):
        multi_worker.cluster_task('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"index": 0}}')


@pytest.mark.slow
def test_two_worker_processes_compute_what_two_local_replicas_compute(
    tmp_path: Path, two_cpus: tuple[str, str]
) -> None:
    from hale_tf import training

    root = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
           "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    command = multi_worker.python_command("tests.training.test_multi_worker", [str(tmp_path)])
    status = multi_worker.launch_local_workers(command, 2, env=env, log_dir=tmp_path / "logs")
    assert status == 0, (tmp_path / "logs" / "worker-1.log").read_text(errors="replace")[-3000:]

    strategy = training.mirrored_strategy(two_cpus)  # shared with the other 2-replica tests
    local = training.fit(_model(strategy), _loss(), _triples(), strategy=strategy, max_steps=STEPS, **TRAIN)
    expected = local.model.get_weights()
    chief, other = (np.load(tmp_path / f"worker-{i}.npz") for i in (0, 1))
    # Stopped at step 3 and resumed by both workers from the chief's checkpoint, the 2-worker run matches
    # the uninterrupted 2-replica run: losses of all 6 steps (3 from the checkpoint's history) and weights.
    assert int(chief["steps"]) == STEPS
    np.testing.assert_allclose(chief["loss"], local.history["loss"], rtol=1e-5)
    for i, w in enumerate(expected):
        np.testing.assert_allclose(chief[f"w{i}"], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(other[f"w{i}"], chief[f"w{i}"])  # one model, kept in lockstep
    # Only the chief's checkpoints are kept; the other worker's copies were deleted after each save.
    ckpts = tmp_path / "checkpoints"
    assert (ckpts / f"ckpt-{STEPS}.index").is_file() and not list(ckpts.glob("workertemp_*/*"))


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1])))
