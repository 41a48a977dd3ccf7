"""Sparse index of known answers, used to filter link-prediction rankings.

For every query key ``(h, r')`` over the *doubled* relation set (``r' = r`` for tail queries
``(h, r, ?)``, ``r' = r + R`` for head queries asked as ``(t, r + R, ?)``) the index stores the sorted,
de-duplicated ids of all entities that answer it in the given splits (usually train ∪ valid ∪ test).

Layout (CSR, built with NumPy, never a dense N × N or B × N matrix)::

    keys     int64 [K]      sorted unique query keys, key = h · 2R + r'
    offsets  int64 [K + 1]  answers of keys[i] are answers[offsets[i]:offsets[i + 1]]
    answers  int32 [P]      entity ids, sorted within each key

Memory is ``8K + 8(K + 1) + 4P`` bytes; for YAGO3-10 (1.09M triples, both directions) about 20 MB.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hale_tf.atomic import atomic_open
from hale_tf.reciprocal import both_directions, relation_ids

__all__ = ["FilterIndex", "FILTER_INDEX_FILENAME", "validate_triples"]

FILTER_INDEX_FILENAME = "filter_index.npz"
_FORMAT = "hale_tf.evaluation.FilterIndex/1"


def validate_triples(
    triples: np.ndarray, num_relations: int, num_entities: int | None = None, what: str = "triples"
) -> np.ndarray:
    """Check an ``[M, 3]`` integer array of ``(head, relation, tail)`` ids and return it as int64.

    Relation ids must be *base* ids in ``[0, num_relations)``; entity ids in ``[0, num_entities)``
    when ``num_entities`` is given (otherwise only non-negative).
    """
    arr = np.asarray(triples)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{what} must have shape [M, 3] (head, relation, tail); got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must hold integer ids; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return arr.reshape(0, 3)
    ents = arr[:, [0, 2]]
    rels = arr[:, 1]
    if ents.min() < 0 or (num_entities is not None and ents.max() >= num_entities):
        raise ValueError(
            f"{what}: entity ids must lie in [0, {num_entities}); got range [{ents.min()}, {ents.max()}]"
        )
    if rels.min() < 0 or rels.max() >= num_relations:
        raise ValueError(
            f"{what}: relation ids must be base ids in [0, num_relations={num_relations}); got range "
            f"[{rels.min()}, {rels.max()}] (head queries are formed internally as (t, r + R, ?))"
        )
    return arr


@dataclass(frozen=True, eq=False)
class FilterIndex:
    """CSR map from query key ``(h, r')`` to the sorted ids of its known answers.

    Build with :meth:`from_triples`; persist with :meth:`save` / :meth:`load`.

    Attributes:
        num_relations: number of *base* relations R (keys use the doubled set of 2R ids).
        num_entities: entity count N; every stored id is ``< N``.
        keys: int64 ``[K]`` sorted unique keys ``h · 2R + r'``.
        offsets: int64 ``[K + 1]`` row pointers into ``answers``.
        answers: int32 ``[P]`` answer ids, sorted and unique within each key.
        sources: names of the splits the index was built from (recorded in evaluation protocols).
    """

    num_relations: int
    num_entities: int
    keys: np.ndarray
    offsets: np.ndarray
    answers: np.ndarray
    sources: tuple[str, ...] = ()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_triples(
        cls,
        triples: Sequence[np.ndarray] | Mapping[str, np.ndarray] | np.ndarray,
        num_relations: int,
        *,
        num_entities: int | None = None,
        names: Sequence[str] | None = None,
    ) -> FilterIndex:
        """Index all known answers of the given splits, in both directions.

        Args:
            triples: one ``[M, 3]`` array, a list of them (e.g. ``[train, valid, test]``) or a mapping
                ``{"train": ..., "valid": ..., "test": ...}`` (the keys become :attr:`sources`).
            num_relations: number of base relations R.
            num_entities: entity count N; defaults to ``1 + max id`` seen.
            names: split names for a list input (default ``split_0``, ``split_1`` …).

        Every triple ``(h, r, t)`` contributes answer ``t`` to key ``(h, r)`` and answer ``h`` to key
        ``(t, r + R)``; repeated triples are stored once.
        """
        if num_relations <= 0:
            raise ValueError(f"num_relations must be positive; got {num_relations}")
        if isinstance(triples, Mapping):
            sources = tuple(str(k) for k in triples)
            arrays = list(triples.values())
        elif isinstance(triples, np.ndarray) and triples.ndim == 2:
            arrays = [triples]
            sources = tuple(names) if names is not None else ("split_0",)
        else:
            arrays = list(triples)
            sources = tuple(names) if names is not None else tuple(f"split_{i}" for i in range(len(arrays)))
        if len(sources) != len(arrays):
            raise ValueError(f"got {len(arrays)} arrays but {len(sources)} names")
        checked = [
            validate_triples(a, num_relations, num_entities, what=f"filter split {s!r}")
            for a, s in zip(arrays, sources, strict=True)
        ]
        allt = np.concatenate(checked, axis=0) if checked else np.zeros((0, 3), np.int64)
        if num_entities is None:
            num_entities = int(allt[:, [0, 2]].max()) + 1 if len(allt) else 0
        r2 = relation_ids(num_relations)
        both = both_directions(allt, num_relations)
        qkey, ans = both[:, 0] * r2 + both[:, 1], both[:, 2]
        # De-duplicate (key, answer) pairs and sort them by key, then answer.  A single int64 code is
        # faster than lexsort; it is exact while K_max · N < 2^63.
        if num_entities == 0 or (num_entities * r2) < (np.iinfo(np.int64).max // max(num_entities, 1)):
            code = np.unique(qkey * num_entities + ans)
            qkey, ans = code // max(num_entities, 1), code % max(num_entities, 1)
        else:  # pragma: no cover - only for astronomically large graphs
            order = np.lexsort((ans, qkey))
            qkey, ans = qkey[order], ans[order]
            keep = np.ones(len(qkey), bool)
            keep[1:] = (qkey[1:] != qkey[:-1]) | (ans[1:] != ans[:-1])
            qkey, ans = qkey[keep], ans[keep]
        keys, starts = np.unique(qkey, return_index=True)
        offsets = np.empty(len(keys) + 1, np.int64)
        offsets[:-1] = starts
        offsets[-1] = len(ans)
        return cls(
            num_relations=int(num_relations),
            num_entities=int(num_entities),
            keys=keys.astype(np.int64),
            offsets=offsets,
            answers=ans.astype(np.int32),
            sources=sources,
        )

    # ------------------------------------------------------------------ queries
    @property
    def num_pairs(self) -> int:
        """Number of stored (query key, answer) pairs P."""
        return int(len(self.answers))

    @property
    def nbytes(self) -> int:
        """Host memory held by the index arrays."""
        return int(self.keys.nbytes + self.offsets.nbytes + self.answers.nbytes)

    def query_keys(self, heads: np.ndarray, relations: np.ndarray) -> np.ndarray:
        """Keys ``h · 2R + r'`` for query heads and (doubled) relation ids."""
        return np.asarray(heads, np.int64) * relation_ids(self.num_relations) + np.asarray(relations, np.int64)

    def spans(self, heads: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start, count)`` of each query's answers in :attr:`answers` (count 0 when unknown)."""
        qk = self.query_keys(heads, relations)
        if len(self.keys) == 0:
            zero = np.zeros(len(qk), np.int64)
            return zero, zero.copy()
        idx = np.minimum(np.searchsorted(self.keys, qk), len(self.keys) - 1)
        found = self.keys[idx] == qk
        starts = np.where(found, self.offsets[idx], 0)
        counts = np.where(found, self.offsets[idx + 1] - self.offsets[idx], 0)
        return starts.astype(np.int64), counts.astype(np.int64)

    def pairs(self, heads: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat ``(row, answer)`` pairs for a batch of queries: row ``i`` repeated once per answer.

        Vectorised range expansion (no Python loop over queries).
        """
        starts, counts = self.spans(heads, relations)
        return self.expand(starts, counts)

    def expand(self, starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expand ``(start, count)`` spans into flat int32 ``(row, answer)`` arrays."""
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        if total == 0:
            return rows, np.zeros(0, np.int32)
        # position of pair j = starts[row_j] + (j - first pair index of row_j)
        first = np.cumsum(counts) - counts
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - first, counts)
        return rows, self.answers[pos]

    def known_answers(self, head: int, relation: int) -> np.ndarray:
        """Sorted known answers of one query ``(head, relation', ?)`` (relation in [0, 2R))."""
        s, c = self.spans(np.array([head]), np.array([relation]))
        return self.answers[s[0] : s[0] + c[0]].copy()

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index to ``directory/filter_index.npz`` atomically; returns the file path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / FILTER_INDEX_FILENAME
        meta = {
            "format": _FORMAT,
            "num_relations": self.num_relations,
            "num_entities": self.num_entities,
            "sources": list(self.sources),
            "num_pairs": self.num_pairs,
        }
        with atomic_open(path, "wb") as f:
            np.savez(f, keys=self.keys, offsets=self.offsets, answers=self.answers, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FilterIndex:
        """Read an index written by :meth:`save` (a directory or the ``.npz`` file itself)."""
        p = Path(path)
        if p.is_dir():
            p = p / FILTER_INDEX_FILENAME
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{p}: not a filter index (format {meta.get('format')!r})")
            idx = cls(
                num_relations=int(meta["num_relations"]),
                num_entities=int(meta["num_entities"]),
                keys=z["keys"].astype(np.int64),
                offsets=z["offsets"].astype(np.int64),
                answers=z["answers"].astype(np.int32),
                sources=tuple(meta["sources"]),
            )
        if len(idx.offsets) != len(idx.keys) + 1 or idx.offsets[-1] != len(idx.answers):
            raise ValueError(f"{p}: corrupt filter index (offsets do not match keys/answers)")
        return idx

    def __repr__(self) -> str:
        return (
            f"FilterIndex(num_entities={self.num_entities}, num_relations={self.num_relations}, "
            f"keys={len(self.keys)}, pairs={self.num_pairs}, sources={self.sources})"
        )
