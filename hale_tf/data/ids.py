"""A dataset's splits as id triples, for library use and benchmarks (the pipeline's Transform does the same
at scale, with Beam)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hale_tf.data.raw import read_triples
from hale_tf.data.resolve import resolve_dataset
from hale_tf.data.types import DatasetFiles

__all__ = ["IdSplits", "load_id_splits"]


@dataclass(frozen=True)
class IdSplits:
    """``triples[split]`` is an ``int64 [M, 3]`` array of (head, relation, tail) ids; ``entities[i]`` and
    ``relations[j]`` are the names of ids i and j (sorted by name, so the mapping is reproducible)."""

    triples: dict[str, np.ndarray]
    entities: list[str]
    relations: list[str]

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)


def load_id_splits(dataset: str | DatasetFiles) -> IdSplits:
    """Read train/valid/test of ``dataset`` (a registry name, resolved by :func:`resolve_dataset`, or its
    files) and number entities and relations over all three splits in sorted name order."""
    files = dataset if isinstance(dataset, DatasetFiles) else resolve_dataset(dataset)
    rows = {split: read_triples(path) for split, path in files.splits.items()}
    entities = sorted({e for split in rows.values() for h, _, t in split for e in (h, t)})
    relations = sorted({r for split in rows.values() for _, r, _ in split})
    eid = {e: i for i, e in enumerate(entities)}
    rid = {r: i for i, r in enumerate(relations)}
    triples = {split: np.array([(eid[h], rid[r], eid[t]) for h, r, t in triples], np.int64).reshape(-1, 3)
               for split, triples in rows.items()}
    return IdSplits(triples, entities, relations)
