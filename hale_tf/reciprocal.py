"""Reciprocal relations, in one place (LibKGE's ``ReciprocalRelationsModel`` idea).

Every model answers tail queries (h, r, ?) only. A head query (?, r, t) is asked as the tail query
(t, r⁻¹, ?) with the reciprocal id r⁻¹ = r + R, so a graph with R base relations gives its model
2R relation ids: ``models.get(name, num_entities=N, num_relations=relation_ids(R), …)``. Training
queries, the filter index, the evaluator and the exported SavedModel all turn triples into both
directions through this module. Works on NumPy arrays and TensorFlow tensors alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["base_relation_count", "both_directions", "inverse", "relation_ids"]


def relation_ids(num_base_relations: int) -> int:
    """The relation ids a model embeds for R base relations: 2R (each relation and its reciprocal)."""
    return 2 * int(num_base_relations)


def base_relation_count(num_relation_ids: int) -> int:
    """R from a model's 2R relation ids; an odd count is a model built without reciprocals."""
    if int(num_relation_ids) % 2:
        raise ValueError(
            f"a model with {num_relation_ids} relation ids has no reciprocal ids: build it with "
            "num_relations=hale_tf.reciprocal.relation_ids(R)"
        )
    return int(num_relation_ids) // 2


def inverse(relations: Any, num_base_relations: int) -> Any:
    """The reciprocal id r + R of base relation ids ``relations`` (array, tensor or int)."""
    return relations + num_base_relations


def both_directions(triples: np.ndarray, num_base_relations: int) -> np.ndarray:
    """Rows (query head, query relation, answer) of ``[M, 3]`` id triples in both directions, ``[2M, 3]``:
    the tail queries (h, r, t) first, then the head queries as (t, r + R, h); dtype kept."""
    triples = np.asarray(triples).reshape(-1, 3)
    flipped = np.stack([triples[:, 2], inverse(triples[:, 1], num_base_relations), triples[:, 0]], axis=1)
    return np.concatenate([triples, flipped.astype(triples.dtype, copy=False)])
