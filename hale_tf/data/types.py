"""Value types of the dataset layer, at the bottom of ``hale_tf.data``.

Everything here is plain data (frozen dataclasses and constants) and imports nothing of the package but
:mod:`hale_tf.data.errors`, so the registry, the resolver and the synthetic generator can all use these
types without importing each other (they used to, in a circle held open by late imports).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hale_tf.data.errors import HaleDataError

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "SPLITS",
    "SYNTHETIC",
    "DatasetCounts",
    "DatasetFiles",
    "DatasetInfo",
    "SyntheticParams",
]

SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Name of the generated dataset (:mod:`hale_tf.data.synthetic`).
SYNTHETIC = "synthetic"
#: Bump when the synthetic output for the same parameters changes, so cached copies are regenerated.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset.

    ``url`` is the archive to download (tar.gz/zip) and ``files`` maps each split to its member path
    inside it; when ``url`` is ``None``, ``files`` maps each split to its own download URL. Counts are
    those of the standard release: entities and relations are unique strings over all splits.
    """

    name: str
    description: str
    url: str | None
    archive_sha256: str | None
    files: dict = field(hash=False)
    num_entities: int
    num_relations: int
    num_train: int
    num_valid: int
    num_test: int
    citation: str = ""
    license: str = ""
    archive_git_sha1: str | None = None
    file_git_sha1: dict = field(default_factory=dict, hash=False)
    mirror_sha256: dict = field(default_factory=dict, hash=False)
    homepage: str = ""
    notes: str = ""

    @property
    def num_triples(self) -> dict[str, int]:
        """Expected number of triples per split."""
        return {"train": self.num_train, "valid": self.num_valid, "test": self.num_test}


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset's three splits are, and which resolution step found them (``source``)."""

    name: str
    directory: Path
    train: Path
    valid: Path
    test: Path
    source: str  # "data_dir" | "mirror" | "cache" | "download" | "synthetic"

    @classmethod
    def in_directory(cls, name: str, directory: Path, source: str, suffix: str = ".txt.gz") -> DatasetFiles:
        """The files ``directory/{train,valid,test}<suffix>`` (the layout of the mirror and the cache)."""
        return cls(name, directory, *(directory / f"{split}{suffix}" for split in SPLITS), source)

    @property
    def splits(self) -> dict[str, Path]:
        """``{"train": path, "valid": path, "test": path}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}


@dataclass(frozen=True)
class DatasetCounts:
    """Counts measured on files: entities/relations are unique strings over all splits."""

    num_entities: int
    num_relations: int
    num_train: int
    num_valid: int
    num_test: int


@dataclass(frozen=True)
class SyntheticParams:
    """Parameters of the synthetic generator: the one place of their defaults, checks and cache name.

    Constructing an instance validates it (:class:`HaleDataError` naming the problem); integer-valued
    strings and NumPy integers (from CLI flags, JSON configs) become ``int``. :meth:`from_dict` also accepts
    a ``"preset"`` name (see :data:`PRESETS`) whose sizes the other keys override.
    """

    num_entities: int = 2000
    num_relations: int = 12
    num_train: int = 20000
    num_valid: int = 1000
    num_test: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _as_int(f.name, getattr(self, f.name)))
        n, r = self.num_entities, self.num_relations
        if n < 4 or r < 1 or self.num_valid < 1 or self.num_test < 1 or self.seed < 0:
            raise HaleDataError(
                f"synthetic parameters out of range: need num_entities >= 4, num_relations >= 1, "
                f"num_valid >= 1, num_test >= 1, seed >= 0; got {self.as_dict()}"
            )
        if self.num_train < n + r:
            # Every entity and relation must occur in train (so valid/test only use seen ids), which needs
            # one anchor triple per entity and per relation in the worst case.
            raise HaleDataError(
                f"synthetic num_train={self.num_train} is too small: it must be >= num_entities + "
                f"num_relations = {n + r} so that every entity and relation occurs in train"
            )
        total = self.num_train + self.num_valid + self.num_test
        if total > r * n * (n - 1) // 4:
            raise HaleDataError(
                f"synthetic graph too dense: {total} triples over {n} entities and {r} relations "
                f"(at most num_relations * num_entities * (num_entities - 1) / 4 = {r * n * (n - 1) // 4})"
            )
        if n * n * r >= 2**62:
            raise HaleDataError(f"synthetic graph too large to index: {n} entities x {r} relations")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in declaration order (the keys of :meth:`as_dict`)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | SyntheticParams | None = None) -> SyntheticParams:
        """Parameters from a mapping (``synthetic_params``): defaults, then a ``"preset"``, then the keys given.

        Raises :class:`HaleDataError` naming an unknown preset or key.
        """
        if isinstance(params, SyntheticParams):
            return params
        given = dict(params or {})
        preset = given.pop("preset", None)
        merged: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise HaleDataError(f"unknown synthetic preset {preset!r}; available: {', '.join(PRESETS)}")
            merged.update(PRESETS[preset])
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise HaleDataError(
                f"unknown synthetic parameter(s) {', '.join(unknown)}; allowed: {', '.join(cls.names())}, preset"
            )
        merged.update(given)
        return cls(**merged)

    def as_dict(self) -> dict[str, int]:
        """``{name: value}`` in declaration order (as written to ``synthetic.json``)."""
        return dataclasses.asdict(self)

    @property
    def dirname(self) -> str:
        """Cache directory name, e.g. ``synthetic-v1-e2000-r12-tr20000-va1000-te1000-s0``."""
        return (
            f"{SYNTHETIC}-v{GENERATOR_VERSION}-e{self.num_entities}-r{self.num_relations}-tr{self.num_train}"
            f"-va{self.num_valid}-te{self.num_test}-s{self.seed}"
        )

    @property
    def num_triples(self) -> int:
        """Triples over all three splits."""
        return self.num_train + self.num_valid + self.num_test

    def info(self) -> DatasetInfo:
        """A :class:`DatasetInfo` with the exact counts of this parameter set (what ``get_info`` returns)."""
        return DatasetInfo(
            name=SYNTHETIC,
            description=(
                "Generated graph with planted types, hierarchies, symmetric/inverse/composition relations and "
                f"power-law degrees ({self.dirname})."
            ),
            url=None,
            archive_sha256=None,
            files={},
            num_entities=self.num_entities,
            num_relations=self.num_relations,
            num_train=self.num_train,
            num_valid=self.num_valid,
            num_test=self.num_test,
            citation="hale-tf synthetic generator",
            license="generated data, no restrictions",
            notes=f"generator version {GENERATOR_VERSION}, seed {self.seed}",
        )


def _as_int(name: str, value: Any) -> int:
    # bool is an int subclass and 2.5 would silently truncate: both are user mistakes. numbers.Integral
    # covers NumPy integers without importing NumPy here.
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)  # values from CLI flags / JSON configs may arrive as strings
    raise HaleDataError(f"synthetic parameter {name} must be an integer, got {value!r}")


_SIZE_NAMES = ("num_entities", "num_relations", "num_train", "num_valid", "num_test")
#: Named sizes usable as ``synthetic_params={"preset": "yago3-10"}`` (other keys override the preset).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_entities": 200, "num_relations": 8, "num_train": 2000, "num_valid": 100, "num_test": 100},
    "small": {name: getattr(SyntheticParams, name) for name in _SIZE_NAMES},  # the defaults
    "fb15k-237": dict(zip(_SIZE_NAMES, (14_541, 237, 272_115, 17_535, 20_466), strict=True)),
    "yago3-10": dict(zip(_SIZE_NAMES, (123_182, 37, 1_079_040, 5_000, 5_000), strict=True)),
}
