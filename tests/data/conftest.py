"""Fixtures for the dataset-layer tests: an isolated cache and a local HTTP server (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.data.helpers import LocalServer


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default cache at a per-test folder so no test touches ~/.cache, and allow downloads."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HALE_TF_CACHE", str(cache))
    monkeypatch.delenv("HALE_TF_OFFLINE", raising=False)
    return cache


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    root = tmp_path / "served"
    root.mkdir()
    server = LocalServer(root)
    try:
        yield server
    finally:
        server.close()
