"""Test helpers: a table-lookup scorer and a brute-force NumPy ranking reference."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import tensorflow as tf


class TableScorer:
    """A genuine scorer backed by a score table ``S[h, r', :]`` (r' over the 2R doubled relation ids)."""

    def __init__(self, table: np.ndarray, name: str = "table") -> None:
        self.table_np = np.asarray(table, np.float32)
        self.table = tf.constant(self.table_np)
        self.num_entities = int(table.shape[2])
        self.num_relations = int(table.shape[1])
        self.name = name

    def score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        return tf.gather_nd(self.table, tf.stack([h, r], axis=1))

    def get_config(self) -> dict:
        return {"num_entities": self.num_entities, "num_relations": self.num_relations}


def known_answers(splits: list[np.ndarray], num_relations: int) -> dict[tuple[int, int], set[int]]:
    """Python-set version of the filter (independent of FilterIndex)."""
    known: dict[tuple[int, int], set[int]] = defaultdict(set)
    for arr in splits:
        for h, r, t in np.asarray(arr).tolist():
            known[(h, r)].add(t)
            known[(t, r + num_relations)].add(h)
    return known


def brute_force_ranks(
    table: np.ndarray,
    triples: np.ndarray,
    num_relations: int,
    known: dict[tuple[int, int], set[int]] | None,
    sides: tuple[str, ...] = ("head", "tail"),
) -> dict[str, np.ndarray]:
    """Per-query optimistic/pessimistic ranks by the textbook definition, one query at a time."""
    opt, pess, side_code, rel = [], [], [], []
    n = table.shape[2]
    for side in sides:
        for h, r, t in np.asarray(triples).tolist():
            qh, qr, target = (h, r, t) if side == "tail" else (t, r + num_relations, h)
            s = table[qh, qr].astype(np.float64)
            s = np.where(np.isnan(s), -np.inf, s)
            candidates = np.ones(n, bool)
            candidates[target] = False
            if known is not None:
                for e in known.get((qh, qr), ()):
                    if e != target:
                        candidates[e] = False
            st = s[target]
            opt.append(1 + int(np.sum(s[candidates] > st)))
            pess.append(1 + int(np.sum(s[candidates] >= st)))
            side_code.append(0 if side == "head" else 1)
            rel.append(r)
    o, p = np.array(opt), np.array(pess)
    return {"optimistic": o, "pessimistic": p, "realistic": (o + p) / 2.0, "side": np.array(side_code),
            "relation": np.array(rel)}


def random_graph(
    rng: np.random.Generator, num_entities: int, num_relations: int, levels: int = 4, hub_fraction: float = 0.6
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """A small graph built to contain the hard cases.

    - scores quantised to ``levels`` values: many exact ties, including with the target;
    - relation 0 has a hub head connected to most entities (many answers per query, both directions);
    - duplicate triples inside the test split and between train and test;
    - some test triples absent from train (and filtered only through the test split itself).

    Returns ``(table [N, 2R, N], [train, valid, test], test)``.
    """
    n, r = num_entities, num_relations
    table = rng.integers(0, levels, size=(n, 2 * r, n)).astype(np.float32)
    m = max(4, 2 * n)
    train = np.stack([rng.integers(0, n, m), rng.integers(0, r, m), rng.integers(0, n, m)], axis=1)
    hub_tails = rng.choice(n, size=max(1, int(hub_fraction * n)), replace=False)
    hub = np.stack([np.zeros_like(hub_tails), np.zeros_like(hub_tails), hub_tails], axis=1)
    train = np.concatenate([train, hub, hub[: len(hub) // 2]])  # duplicates inside train
    valid = np.stack([rng.integers(0, n, 3), rng.integers(0, r, 3), rng.integers(0, n, 3)], axis=1)
    fresh = np.stack([rng.integers(0, n, 5), rng.integers(0, r, 5), rng.integers(0, n, 5)], axis=1)
    test = np.concatenate([fresh, train[:3], hub[:2], fresh[:2]])  # overlaps with train, and repeats
    return table, [train.astype(np.int64), valid.astype(np.int64), test.astype(np.int64)], test.astype(np.int64)
