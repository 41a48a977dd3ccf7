"""A dataset's splits as id triples, for library use and benchmarks (the pipeline's Transform does the same
at scale, with Beam), and the one rule that numbers entities and relations (:func:`number_names`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hale_tf.data.raw import read_triples
from hale_tf.data.resolve import resolve_dataset
from hale_tf.data.types import DatasetFiles

__all__ = ["IdSplits", "load_id_splits", "number_names"]


def number_names(train: Iterable[str], others: Iterable[str] = ()) -> list[str]:
    """The id order of entity (or relation) names: ``result[i]`` is the name of id i.

    Names of the training split come first, sorted, so their ids depend on train alone; names seen only
    in ``others`` (valid/test) follow, sorted. Transform numbers train alone (its default ``drop`` and
    ``error`` policies), :func:`load_id_splits` all splits: both give every train name the same id.
    """
    first = sorted(set(train))
    seen = set(first)
    return first + sorted({name for name in others if name not in seen})


@dataclass(frozen=True)
class IdSplits:
    """``triples[split]`` is an ``int64 [M, 3]`` array of (head, relation, tail) ids; ``entities[i]`` and
    ``relations[j]`` are the names of ids i and j, numbered by :func:`number_names` (train's names first,
    so a train entity has the id the pipeline's Transform gives it)."""

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
    files) and number the entities and relations of all three splits by :func:`number_names`."""
    files = dataset if isinstance(dataset, DatasetFiles) else resolve_dataset(dataset)
    rows = {split: read_triples(path) for split, path in files.splits.items()}
    others = [triples for split, triples in rows.items() if split != "train"]
    entities = number_names((e for h, _, t in rows["train"] for e in (h, t)),
                            (e for split in others for h, _, t in split for e in (h, t)))
    relations = number_names((r for _, r, _ in rows["train"]), (r for split in others for _, r, _ in split))
    eid = {e: i for i, e in enumerate(entities)}
    rid = {r: i for i, r in enumerate(relations)}
    triples = {split: np.array([(eid[h], rid[r], eid[t]) for h, r, t in triples], np.int64).reshape(-1, 3)
               for split, triples in rows.items()}
    return IdSplits(triples, entities, relations)
