"""Queries: train id blocks -> both directions -> shards (seeded hash) -> CSR queries -> TFRecord files.

The NumPy work is :mod:`hale_tf.reciprocal` (both directions), :mod:`hale_tf.data.queries` (shard
assignment and order by a seeded hash, grouping) and :func:`hale_tf.data.records.write_query_records`
(the TFRecord writer); this module only routes Beam elements through them and counts per-shard statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np

from hale_tf.data.queries import group_queries, shard_of
from hale_tf.data.records import write_query_records
from hale_tf.reciprocal import both_directions, relation_ids


def _emit_shard_parts(
    item: tuple[str, tuple[int, np.ndarray]], sizes: tuple[int, int], seed: int, num_shards: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Train id blocks -> ``(shard, rows)`` parts; other splits produce nothing."""
    split, (_, ids) = item
    if split != "train":
        return
    rows = both_directions(ids, sizes[1])
    shard = shard_of(rows[:, 0], rows[:, 1], seed, num_shards)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
    for s in range(num_shards):
        if bounds[s + 1] > bounds[s]:
            yield int(s), rows[order[bounds[s] : bounds[s + 1]]]


class _WriteQueryShard(beam.DoFn):
    """Group one shard's rows into queries, write its TFRecord file, and emit its statistics."""

    def __init__(self, out_dir: str, seed: int, num_shards: int, queries_per_example: int) -> None:
        self._out_dir = out_dir
        self._seed = seed
        self._num_shards = num_shards
        self._qpe = queries_per_example

    def process(
        self, item: tuple[int, Iterable[np.ndarray]], sizes: tuple[int, int]
    ) -> Iterator[dict[str, Any]]:
        shard, parts = item
        num_entities, num_relations = sizes
        parts = [p for p in parts if len(p)]
        rows = np.concatenate(parts) if parts else np.zeros([0, 3], np.int32)
        queries = group_queries(rows, self._seed)
        name = f"train-{shard:05d}-of-{self._num_shards:05d}.tfrecord"
        records = write_query_records(
            Path(self._out_dir) / "queries" / name, queries, queries_per_example=self._qpe
        )
        counts = queries.answers_per_query()
        relations, num_relation_ids = queries.relations, relation_ids(num_relations)
        # Degree = number of (deduplicated) train triples an entity takes part in; each triple shows up
        # once as an answer of a tail query and once of a head query, so count answers.
        yield {
            "num_queries": queries.num_queries,
            "num_answers": queries.num_answers,
            "records": int(records),
            "queries_per_relation": np.bincount(relations, minlength=num_relation_ids).astype(np.int64),
            "answers_per_relation": np.bincount(
                relations, weights=counts, minlength=num_relation_ids
            ).astype(np.int64),
            "degree": np.bincount(queries.answers, minlength=num_entities).astype(np.int64),
            "answer_count_hist": np.bincount(counts).astype(np.int64)
            if len(counts)
            else np.zeros(1, np.int64),
        }


class _SumStats(beam.CombineFn):
    """Add up per-shard statistics (integers and NumPy vectors of possibly different lengths)."""

    def create_accumulator(self) -> dict[str, Any]:
        return {}

    def add_input(self, acc: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
        for key, value in stats.items():
            if key not in acc:
                acc[key] = value
            elif isinstance(value, np.ndarray):
                a, b = acc[key], value
                size = max(len(a), len(b))
                acc[key] = np.pad(a, (0, size - len(a))) + np.pad(b, (0, size - len(b)))
            else:
                acc[key] = acc[key] + value
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for acc in accs:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc
