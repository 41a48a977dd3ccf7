"""Artifacts: a published component output is a directory whose ``metadata.json`` is complete.

What a reader of artifacts needs (open one, read its metadata, write a JSON payload file, the library versions
recorded with it), apart from the runner in :mod:`components.base` that produces them. Nothing here imports
TensorFlow or Beam, so reading artifacts stays cheap.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hale_tf.atomic import atomic_write_json

__all__ = ["METADATA_FILE", "Artifact", "ComponentError", "library_versions", "read_complete_metadata", "write_json"]

METADATA_FILE = "metadata.json"


class ComponentError(Exception):
    """A component could not run: bad parameters, bad inputs, or a failed executor (one-line message)."""


@dataclass(frozen=True)
class Artifact:
    """A published component output: a directory whose ``metadata.json`` is complete.

    Use :meth:`load` to open one; construction alone does not validate.
    """

    uri: Path
    metadata: Mapping[str, Any]

    @classmethod
    def load(cls, uri: str | os.PathLike[str]) -> Artifact:
        """Open the artifact at ``uri``; raise :class:`ComponentError` if it is missing or incomplete."""
        path = Path(uri)
        metadata = read_complete_metadata(path)
        if metadata is None:
            raise ComponentError(f"{path}: not a complete artifact (missing or invalid {METADATA_FILE})")
        return cls(uri=path, metadata=metadata)

    @property
    def type(self) -> str:
        return str(self.metadata["type"])

    @property
    def fingerprint(self) -> str:
        return str(self.metadata["fingerprint"])

    @property
    def producer(self) -> str:
        return str(self.metadata["producer"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.metadata.get("parameters", {}))

    def path(self, *parts: str) -> Path:
        """Path of a payload entry, e.g. ``artifact.path("splits", "train.tsv")``."""
        return self.uri.joinpath(*parts)


def read_complete_metadata(path: Path) -> dict[str, Any] | None:
    """Metadata of a complete artifact at ``path``, or ``None`` when it is absent, partial or corrupt."""
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or metadata.get("complete") is not True:
        return None
    if not all(key in metadata for key in ("type", "producer", "fingerprint", "parameters")):
        return None
    # Declared outputs are checked before publishing; re-checking here catches manual deletions.
    for entry in metadata.get("outputs", []):
        if not (path / entry).exists():
            return None
    return metadata


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(uses_beam: bool = False) -> dict[str, str | None]:
    """Versions recorded in artifact metadata; read from package metadata so nothing heavy is imported."""
    import hale_tf

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "hale_tf": getattr(hale_tf, "__version__", None),
        "tensorflow": _dist_version("tensorflow") or _dist_version("tensorflow-cpu"),
        "numpy": _dist_version("numpy"),
    }
    if uses_beam:
        versions["apache_beam"] = _dist_version("apache-beam")
    return versions


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted, strict JSON (NaN/Inf as null), atomically and fsynced (metadata
    must survive a power cut; :func:`hale_tf.atomic.atomic_write_json`)."""
    atomic_write_json(path, obj)
