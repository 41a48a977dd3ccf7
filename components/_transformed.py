"""Reading a Transform artifact from the downstream components (sizes, vocabularies, id triples)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.base import Artifact

__all__ = ["TransformedData"]


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


@dataclass(frozen=True)
class TransformedData:
    """Views of a ``Transformed`` artifact: N, R, vocab paths, triples, query files and filter index."""

    artifact: Artifact

    @property
    def entity_vocab(self) -> Path:
        return self.artifact.path("vocab", "entities.tsv")

    @property
    def relation_vocab(self) -> Path:
        return self.artifact.path("vocab", "relations.tsv")

    @property
    def num_entities(self) -> int:
        return _count_lines(self.entity_vocab)

    @property
    def num_relations(self) -> int:
        """R, the number of base relations (models embed 2R relation ids)."""
        return _count_lines(self.relation_vocab)

    @property
    def query_pattern(self) -> str:
        return str(self.artifact.path("queries", "train-*.tfrecord"))

    def triples(self, split: str) -> np.ndarray:
        return np.load(self.artifact.path("triples", f"{split}.npy"))

    def filter_index(self):  # -> hale_tf.evaluation.FilterIndex (imported late: TensorFlow)
        from hale_tf.evaluation import FilterIndex

        return FilterIndex.load(self.artifact.path("filters"))
