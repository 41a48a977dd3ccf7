"""Helpers shared by the orchestrator and both runners (standard library and NumPy only).

This module is imported by :mod:`pykeen_runner` inside the PyKEEN virtual environment, so it must not
import ``hale_tf``, TensorFlow or PyTorch.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Format tag of one system's result file.
RESULT_FORMAT = "hale_tf.bench.peers.result/1"
#: The headline tie rule (both sides, filtered); PyKEEN's realistic rank is reported beside it.
HEADLINE_TIE_RULE = "pessimistic"
HITS_AT = (1, 3, 10)


def read_id_triples(path: str | os.PathLike) -> np.ndarray:
    """Read ``head\\trelation\\ttail`` integer ids (one triple a line) as an ``[M, 3]`` int64 array."""
    data = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    if data.size == 0:
        return np.zeros((0, 3), np.int64)
    if data.shape[1] != 3:
        raise ValueError(f"{path}: expected 3 columns, found {data.shape[1]}")
    return data


def write_id_triples(path: str | os.PathLike, triples: np.ndarray) -> None:
    """Write an ``[M, 3]`` integer array as tab-separated ids."""
    np.savetxt(path, np.asarray(triples, np.int64).reshape(-1, 3), fmt="%d", delimiter="\t")


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON atomically (temporary file, then rename); NaN/Inf become null."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class TrainClock:
    """Training wall-clock that can be paused (for validation) and compared with a budget."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = float(budget_s)
        self._elapsed = 0.0
        self._started: float | None = None

    def start(self) -> None:
        if self._started is None:
            self._started = time.perf_counter()

    def pause(self) -> None:
        if self._started is not None:
            self._elapsed += time.perf_counter() - self._started
            self._started = None

    @property
    def seconds(self) -> float:
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._elapsed + running

    @property
    def exhausted(self) -> bool:
        return self.seconds >= self.budget_s


def throughput(epochs: float, num_train: int, train_seconds: float) -> dict[str, float]:
    """Epoch time and training triples per second (one epoch = one pass over the training examples)."""
    epoch_s = train_seconds / epochs if epochs > 0 else math.nan
    tps = epochs * num_train / train_seconds if train_seconds > 0 else math.nan
    return {"epoch_seconds": epoch_s, "train_triples_per_s": tps}


def environment() -> dict[str, Any]:
    """Interpreter and machine facts of the running process."""
    import platform

    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
