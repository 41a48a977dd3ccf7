"""Test-wide setup: quiet TensorFlow, two logical CPU devices for strategy tests, dataset mirror."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

# The offline dataset copies live beside the project (../shared/datasets); CI and tests use them.
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
if SHARED_DATASETS.is_dir():
    os.environ.setdefault("HALE_TF_DATA_MIRROR", str(SHARED_DATASETS))


def _configure_logical_cpus() -> None:
    """Split the CPU into two logical devices so MirroredStrategy tests run with 2 replicas."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
    except RuntimeError as err:
        # Only possible if something initialised TensorFlow before this conftest: the two-replica tests
        # would then test nothing, so stop here rather than let them skip silently.
        raise RuntimeError(f"tests/conftest.py could not split the CPU into 2 logical devices: {err}") from err


_configure_logical_cpus()


@pytest.fixture(scope="session")
def two_cpus() -> tuple[str, str]:
    """Names of the two logical CPU devices that MirroredStrategy tests run their replicas on."""
    import tensorflow as tf

    cpus = tf.config.list_logical_devices("CPU")
    assert len(cpus) >= 2, f"tests/conftest.py configures 2 logical CPU devices, found {cpus}"
    return cpus[0].name, cpus[1].name


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"offline dataset copies not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
