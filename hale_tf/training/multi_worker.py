"""Multi-worker training with ``tf.distribute.MultiWorkerMirroredStrategy``: cluster spec, roles, local launch.

A cluster runs the *same command* on every worker; only the ``TF_CONFIG`` environment variable differs::

    TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 0}}'

Worker 0 is the chief: it writes the checkpoints, TensorBoard logs and the run configuration, and (in the
pipeline) evaluates and exports. The other workers train in lockstep and save their checkpoints to a
temporary directory that they delete at once (the standard MWMS pattern: saving is collective, only the
chief's copy is kept); every worker restores from the chief's checkpoint directory, so a killed job's
rerun resumes wherever the workers run, provided that directory is on a filesystem they share.

On one machine :func:`local_cluster` builds the ``TF_CONFIG`` of N workers on free loopback ports and
:func:`launch_local_workers` starts them as processes (``python -m pipelines.run … --workers=N``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ClusterTask", "agree_with_chief", "check_same_start", "cluster_task", "launch_local_workers", "local_cluster",
    "strategy_task", "worker_checkpoint_dir",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster: ``index`` among ``num_workers`` workers (0 is the chief)."""

    index: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def cluster_task(tf_config: str | None = None) -> ClusterTask | None:
    """The task ``TF_CONFIG`` (default: the environment's) describes; None when it is unset or empty.

    Raises:
        ValueError: one line naming ``TF_CONFIG`` when it is not the JSON a cluster needs.
    """
    text = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not text.strip():
        return None
    try:
        spec = json.loads(text)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        index = int(task["index"])
        kind = task.get("type", "worker")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"TF_CONFIG is not a cluster spec ({type(err).__name__}: {err}); expected "
                         '{"cluster": {"worker": ["host:port", …]}, "task": {"type": "worker", "index": i}}') from None
    extra = sorted(set(spec["cluster"]) - {"worker"})
    if kind != "worker" or extra:
        raise ValueError(f"TF_CONFIG: only 'worker' tasks are supported (MultiWorkerMirroredStrategy), got task "
                         f"type {kind!r} and cluster jobs {sorted(spec['cluster'])}")
    if not 0 <= index < len(workers):
        raise ValueError(f"TF_CONFIG: task index {index} is outside the {len(workers)} workers")
    return ClusterTask(index=index, num_workers=len(workers))


def strategy_task(strategy: Any) -> ClusterTask | None:
    """The worker task of a ``MultiWorkerMirroredStrategy`` with two or more workers, else None."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    workers = resolver.cluster_spec().as_dict().get("worker", [])
    if len(workers) < 2:
        return None
    return ClusterTask(index=int(resolver.task_id or 0), num_workers=len(workers))


def worker_checkpoint_dir(checkpoint_dir: Path, task: ClusterTask | None) -> Path:
    """Where this worker *writes* checkpoints: the chief into ``checkpoint_dir``, the others into a temporary
    ``workertemp_<i>`` inside it (deleted after each save; everybody restores from ``checkpoint_dir``)."""
    if task is None or task.is_chief:
        return checkpoint_dir
    return checkpoint_dir / f"workertemp_{task.index}"


def remove_worker_checkpoints(directory: Path, task: ClusterTask | None) -> None:
    """Delete a non-chief worker's just-written checkpoint copy (only the chief's is kept)."""
    if task is not None and not task.is_chief:
        shutil.rmtree(directory, ignore_errors=True)


def agree_with_chief(strategy: Any, chief_values: Sequence[float], any_flags: Sequence[bool] = ()) -> tuple[
        np.ndarray, np.ndarray]:
    """The chief's ``chief_values`` on every worker, and for each of ``any_flags`` whether any worker set it.

    Everything that decides how many steps the next call runs, when to validate, checkpoint or stop must be
    the same on every worker, or their collective ops stop matching (a hang, or "Shape mismatch in the
    collective instance"). Wall-clock times, a validation's metrics and a received signal are local, so the
    trainer agrees on them after each call with one all-reduce (float64: training seconds stay exact).
    """
    values = np.asarray(list(chief_values) + [float(bool(f)) for f in any_flags], np.float64)
    total = _agreement_fn(strategy, len(chief_values), len(any_flags))(values).numpy()
    return total[: len(chief_values)], total[len(chief_values):] > 0


def check_same_start(strategy: Any, task: ClusterTask, step: int, checkpoint_dir: Path) -> None:
    """Every worker resumed at the chief's step, or a clear error (rather than mismatched collectives).

    Raises:
        RuntimeError: this worker restored another step than the chief, i.e. it does not see the chief's
            checkpoints (``checkpoint_dir`` must be on a filesystem all workers share).
    """
    (chief_step,), _ = agree_with_chief(strategy, [float(step)])
    if int(chief_step) != step:
        raise RuntimeError(f"worker {task.index} would resume at step {step} from {checkpoint_dir}, the chief at step "
                           f"{int(chief_step)}: the checkpoint directory must be on a filesystem every worker shares")


_AGREEMENT_FNS: dict[tuple[int, int, int], Any] = {}


def _agreement_fn(strategy: Any, num_values: int, num_flags: int) -> Any:
    """The compiled all-reduce of :func:`agree_with_chief` (run eagerly, MWMS warns of its overhead)."""
    import tensorflow as tf

    key = (id(strategy), num_values, num_flags)
    if key not in _AGREEMENT_FNS:
        @tf.function(input_signature=[tf.TensorSpec([num_values + num_flags], tf.float64)])
        def agree(values: tf.Tensor) -> tf.Tensor:
            def contribution() -> tf.Tensor:
                ctx = tf.distribute.get_replica_context()
                chief = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.float64)
                mask = tf.concat([tf.fill([num_values], chief), tf.ones([num_flags], tf.float64)], 0)
                return values * mask

            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribution), axis=None)

        _AGREEMENT_FNS[key] = agree
    return _AGREEMENT_FNS[key]


# ---------------------------------------------------------------------------------------------- launch
def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` now (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_cluster(num_workers: int, host: str = "127.0.0.1") -> list[str]:
    """The ``TF_CONFIG`` of each of ``num_workers`` workers on free ports of ``host`` (loopback by default)."""
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    addresses = [f"{host}:{port}" for port in free_ports(num_workers, host)]
    return [json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})
            for i in range(num_workers)]


def launch_local_workers(
    command: Sequence[str], num_workers: int, *, env: Mapping[str, str] | None = None,
    log_dir: str | os.PathLike[str] | None = None, poll_s: float = 0.2, grace_s: float = 20.0,
) -> int:
    """Run ``command`` as ``num_workers`` processes with the ``TF_CONFIG`` of a loopback cluster.

    The chief (worker 0) keeps this terminal; the others write to ``<log_dir>/worker-<i>.log`` (default:
    inherited output). When one worker fails, the others are stopped, since MWMS cannot continue without
    it: SIGTERM, then SIGKILL after ``grace_s`` (a worker waiting in a collective op for the dead one
    cannot act on SIGTERM). The chief's last checkpoint stays, so rerunning the command resumes. Returns
    the first non-zero exit status (0 when every worker succeeded).
    """
    configs = local_cluster(num_workers)
    processes: list[subprocess.Popen] = []
    logs = []
    try:
        for i, config in enumerate(configs):
            stdout = None
            if log_dir is not None and i > 0:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                stdout = open(Path(log_dir) / f"worker-{i}.log", "ab")  # noqa: SIM115 (closed below)
                logs.append(stdout)
            worker_env = {**os.environ, **(env or {}), "TF_CONFIG": config}
            processes.append(subprocess.Popen(list(command), env=worker_env, stdout=stdout,
                                              stderr=subprocess.STDOUT if stdout else None))
        status = 0
        while any(p.poll() is None for p in processes):
            failed = [p.returncode for p in processes if p.returncode not in (None, 0)]
            if failed and not status:
                status = failed[0]
                log.error("a worker exited with status %d: stopping the others", status)
                _stop(processes, grace_s)
            time.sleep(poll_s)
        return status or next((p.returncode for p in processes if p.returncode), 0)
    except KeyboardInterrupt:
        _stop(processes, grace_s)
        raise
    finally:
        for f in logs:
            f.close()


def _stop(processes: Sequence[subprocess.Popen], grace_s: float) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in processes:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def python_command(module: str, argv: Sequence[str]) -> list[str]:
    """``[python, -m, module, *argv]`` with this interpreter (a worker runs what the launcher runs)."""
    return [sys.executable, "-m", module, *argv]
