"""Counting a dataset's entities, relations and triples, and comparing the counts with its registry entry."""

from __future__ import annotations

from hale_tf.data.raw import read_triples
from hale_tf.data.types import DatasetCounts, DatasetFiles, DatasetInfo

__all__ = ["check_counts", "count_differences", "count_triples", "dataset_counts"]


def count_triples(splits: dict[str, list[tuple[str, str, str]]]) -> DatasetCounts:
    """Counts of in-memory splits (``{"train": [...], "valid": [...], "test": [...]}``)."""
    entities: set[str] = set()
    relations: set[str] = set()
    for triples in splits.values():
        for h, r, t in triples:
            entities.add(h)
            entities.add(t)
            relations.add(r)
    return DatasetCounts(
        len(entities), len(relations), len(splits["train"]), len(splits["valid"]), len(splits["test"])
    )


def dataset_counts(files: DatasetFiles) -> DatasetCounts:
    """Read all three splits and count them (raises :class:`DataFormatError` on malformed content)."""
    return count_triples({split: read_triples(path) for split, path in files.splits.items()})


def count_differences(found: DatasetCounts, info: DatasetInfo) -> list[str]:
    """One line per count of ``found`` that differs from ``info``'s, e.g.
    ``"wn18rr train: expected 86,835 triples, found 5"``; empty if all match."""
    problems = []
    for label, attr, unit in (
        ("entities", "num_entities", ""),
        ("relations", "num_relations", ""),
        ("train", "num_train", " triples"),
        ("valid", "num_valid", " triples"),
        ("test", "num_test", " triples"),
    ):
        want, got = getattr(info, attr), getattr(found, attr)
        if want != got:
            problems.append(f"{info.name} {label}: expected {want:,}{unit}, found {got:,}")
    return problems


def check_counts(files: DatasetFiles, info: DatasetInfo) -> list[str]:
    """Human-readable differences between the files' counts and the registry entry; empty if they match.

    Entities and relations are counted as unique strings over train, valid and test together.
    """
    return count_differences(dataset_counts(files), info)
