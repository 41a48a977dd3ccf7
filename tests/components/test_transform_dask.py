"""The Transform on a dask.distributed cluster (Beam's DaskRunner) writes the FnApiRunner's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from components.base import resolve_params
from components.transform import TRANSFORM_SPEC, run_transform
from tests.components.conftest import write_dataset

distributed = pytest.importorskip("distributed", reason="apache-beam[dask] is part of the test extra")


def _files(directory: Path) -> dict[str, str]:
    """Every output file (vocabularies, triples, query shards, filters, statistics) by its SHA-256."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_dask_cluster_writes_the_same_bytes_as_the_in_process_runner(tmp_path: Path) -> None:
    raw = write_dataset(tmp_path / "raw")
    splits = {split: str(raw / f"{split}.txt") for split in ("train", "valid", "test")}
    # Small chunks: several blocks per split, spread over the two worker processes.
    params = resolve_params(TRANSFORM_SPEC, {"num_shards": 3, "queries_per_example": 2, "chunk_bytes": 24})
    run_transform(splits, tmp_path / "fnapi", params)
    # A scheduler and two worker processes on loopback, reached by address as a remote cluster would be.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask_params = {**params, "beam_runner": "DaskRunner",
                       "beam_options": [f"--dask_client_address={cluster.scheduler_address}"]}
        run_transform(splits, tmp_path / "dask", dask_params)
        with distributed.Client(cluster.scheduler_address) as client:
            # The work ran on the cluster: its workers executed tasks.
            assert sum(len(log) for log in client.run(lambda dask_worker: list(dask_worker.state.log)).values())
    expected = _files(tmp_path / "fnapi")
    assert {"vocab/entities.tsv", "triples/train.npy", "stats.json", "queries/train-00000-of-00003.tfrecord"} <= set(
        expected)
    assert _files(tmp_path / "dask") == expected
