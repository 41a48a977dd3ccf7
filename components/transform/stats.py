"""Statistics: ``stats.json`` from the vocabularies, split sizes, unseen reports and per-shard query counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from components.example_gen import SPLITS
from components.transform.vocab import _split_names
from hale_tf.atomic import atomic_write_text
from hale_tf.data.records import RECORD_FORMAT
from hale_tf.reciprocal import relation_ids

RELATION_CATEGORY_THRESHOLD = 1.5  # tph / hpt threshold of Bordes et al. (2013)


def _log2_histogram(counts_by_value: np.ndarray) -> list[dict[str, int]]:
    """Histogram with bins [0], [1], [2, 3], [4, 7], ... from ``counts_by_value[v]`` = how many have v."""
    bins = []
    values = np.flatnonzero(counts_by_value)
    if len(values) == 0:
        return bins
    if counts_by_value[0]:
        bins.append({"min": 0, "max": 0, "count": int(counts_by_value[0])})
    low = 1
    while low <= values[-1]:
        high = 2 * low - 1
        count = int(counts_by_value[low : high + 1].sum())
        if count:
            bins.append({"min": low, "max": high, "count": count})
        low *= 2
    return bins


def _relation_categories(stats: dict[str, Any], relations: list[str]) -> dict[str, Any]:
    num_rel = len(relations)
    triples = stats["answers_per_relation"][:num_rel]
    heads = stats["queries_per_relation"][:num_rel]  # distinct heads of r = tail queries (h, r)
    tails = stats["queries_per_relation"][num_rel:]  # distinct tails of r = head queries (t, r + R)
    per_relation, totals = {}, {"1-1": 0, "1-N": 0, "N-1": 0, "N-N": 0, "none": 0}
    for r, name in enumerate(relations):
        if triples[r] == 0:
            category, tph, hpt = "none", None, None  # only under unseen_policy="keep"
        else:
            tph, hpt = float(triples[r] / heads[r]), float(triples[r] / tails[r])
            many_tails, many_heads = tph >= RELATION_CATEGORY_THRESHOLD, hpt >= RELATION_CATEGORY_THRESHOLD
            category = {
                (False, False): "1-1",
                (True, False): "1-N",
                (False, True): "N-1",
                (True, True): "N-N",
            }[(many_tails, many_heads)]
        totals[category] += 1
        per_relation[name] = {
            "id": r,
            "category": category,
            "train_triples": int(triples[r]),
            "tails_per_head": None if tph is None else round(tph, 4),
            "heads_per_tail": None if hpt is None else round(hpt, 4),
        }
    return {"threshold": RELATION_CATEGORY_THRESHOLD, "counts": totals, "relations": per_relation}


def _build_stats(
    _: Any,
    out_dir: str,
    params: dict[str, Any],
    vocab: tuple[str, str],
    split_sizes: dict[str, int],
    unseen: dict[str, dict[str, Any]],
    queries: dict[str, Any],
) -> None:
    entities, relations = _split_names(vocab[0]), _split_names(vocab[1])
    degree = queries["degree"]
    apq = queries["answer_count_hist"]
    unseen_entities = set().union(*(u["entities"] for u in unseen.values())) if unseen else set()
    stats = {
        "num_entities": len(entities),
        "num_relations": len(relations),
        "num_relations_with_reciprocals": relation_ids(len(relations)),
        "reciprocal_offset": len(relations),
        "unseen_policy": params["unseen_policy"],
        "queries": {
            "format": RECORD_FORMAT,
            "files": f"queries/train-*-of-{params['num_shards']:05d}.tfrecord",
            "num_shards": params["num_shards"],
            "seed": params["seed"],
            "queries_per_example": params["queries_per_example"],
            "num_queries": queries["num_queries"],
            "num_tail_queries": int(queries["queries_per_relation"][: len(relations)].sum()),
            "num_head_queries": int(queries["queries_per_relation"][len(relations) :].sum()),
            "num_answers": queries["num_answers"],
            "num_records": queries["records"],
            "answers_per_query": {
                "mean": round(queries["num_answers"] / max(queries["num_queries"], 1), 4),
                "max": int(len(apq) - 1),
                "histogram": _log2_histogram(apq),
            },
        },
        "triples": {s: split_sizes.get(s, 0) for s in SPLITS},
        "train_unique_triples": queries["num_answers"] // 2,
        "entity_degree": {
            "mean": round(float(degree.mean()), 4) if len(degree) else 0.0,
            "max": int(degree.max()) if len(degree) else 0,
            "histogram": _log2_histogram(np.bincount(degree)) if len(degree) else [],
        },
        "relation_categories": _relation_categories(queries, relations),
        "unseen": {
            "entities_in_valid_test_unseen_in_train": len(unseen_entities),
            **{
                split: {
                    "input_triples": rep["rows"],
                    "triples_with_unseen": rep["unseen_rows"],
                    "dropped_triples": rep["dropped"],
                    "unseen_entities": len(rep["entities"]),
                    "unseen_relations": len(rep["relations"]),
                    "examples": sorted(rep["entities"] | rep["relations"])[:10],
                }
                for split, rep in sorted(unseen.items())
                if split != "train"
            },
        },
    }
    atomic_write_text(Path(out_dir) / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")
