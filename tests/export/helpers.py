"""Shared helpers for the export tests: small models with non-trivial weights, fresh-process runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from hale_tf import models
from hale_tf.reciprocal import relation_ids

REPO_ROOT = Path(__file__).resolve().parents[2]

# Prepended to every fresh-process script: TensorFlow is imported first (it probes for keras while
# importing), then any import of hale_tf, components, pipelines or keras raises, so a load that needed
# them fails loudly instead of quietly importing them from the venv or the repository.
BLOCKER = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    assert not any(m == "hale_tf" or m.startswith("hale_tf.") for m in sys.modules)

    class _Blocker:
        blocked = {"hale_tf", "components", "pipelines", "keras"}

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"fresh-process test: import of {name!r} is not allowed")
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)


def make_model(
    name: str,
    num_entities: int,
    num_base_relations: int,
    dim: int = 8,
    seed: int = 7,
    dtype: str | None = None,
    scale: float = 0.25,
):
    """A small model with seeded weights: spread-out scores, non-zero biases, per-relation curvatures.

    Every weight is set from ``seed`` (the Keras initialisers are unseeded), so the tests are
    deterministic. ``scale`` 0.25 keeps hyperbolic points away from the ball boundary, where float32
    artanh turns last-bit rounding differences into ~1e-3 relative score differences.
    """
    extra = {"dtype": dtype} if dtype else {}
    model = models.get(
        name, num_entities=num_entities, num_relations=relation_ids(num_base_relations), dim=dim, **extra
    )
    rng = np.random.default_rng(seed)
    for var in model.weights:
        if "bias" in var.path:
            var.assign(rng.normal(size=var.shape) * 0.1)
        elif "curvature" in var.path:
            var.assign(rng.normal(size=var.shape))
        else:
            var.assign(rng.normal(size=var.shape) * scale)
    return model


def random_triples(num_entities: int, num_base_relations: int, count: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    triples = np.stack(
        [
            rng.integers(0, num_entities, count),
            rng.integers(0, num_base_relations, count),
            rng.integers(0, num_entities, count),
        ],
        axis=1,
    ).astype(np.int32)
    return np.unique(triples, axis=0)


def run_fresh(
    script: str, cwd: Path, args: list[str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run ``BLOCKER + script`` in a fresh interpreter: isolated mode (-I: no PYTHONPATH, no user site,
    no script directory on sys.path), cwd outside the repository, PYTHONPATH removed. The venv's
    site-packages stay available (they come from sys.prefix, not from the environment)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    return subprocess.run(
        [sys.executable, "-I", "-c", BLOCKER + textwrap.dedent(script), *(args or [])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])
