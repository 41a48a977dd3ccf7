"""ExampleGen: a dataset name (or directory, or synthetic parameters) -> canonical, validated splits.

Resolution and parsing are ``hale_tf.data``'s (``resolve_dataset``, ``read_triples``), so every malformed
line, missing or empty split, or unknown dataset is a one-line :class:`hale_tf.data.HaleDataError` naming
the file and line. The component adds the canonical copy and the statistics.

Output artifact (type ``Examples``)::

    splits/train.tsv, splits/valid.tsv, splits/test.tsv   UTF-8, head<TAB>relation<TAB>tail, LF, no header
    stats.json                                            counts per split, unique entities/relations,
                                                          duplicates, overlaps, count check vs registry

Caching: besides the parameters, the fingerprint includes a SHA-256 of the resolved raw files, so an
edited ``data_dir`` (or a regenerated synthetic graph) is noticed.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

from components.base import Artifact, Component, ComponentSpec, Parameter, write_json
from hale_tf.data import (
    SPLITS,
    CountMismatchError,
    DatasetFiles,
    HaleDataError,
    UnknownDatasetError,
    get_info,
    read_triples,
    resolve_dataset,
    sha256_file,
    synthetic_info,
    write_triples,
)
from hale_tf.data.registry import SYNTHETIC, canonical_name

__all__ = ["EXAMPLE_GEN", "EXAMPLE_GEN_SPEC", "SPLITS", "dataset_stats"]

logger = logging.getLogger(__name__)


def _resolve(params: dict[str, Any], *, download: bool) -> DatasetFiles:
    return resolve_dataset(
        params["dataset"],
        params["data_dir"],
        cache_dir=params["cache_dir"],
        download=download,
        synthetic_params=params["synthetic_params"],
    )


def _raw_fingerprint(params: dict[str, Any]) -> str:
    """SHA-256 over the resolved raw split files; a marker when they cannot be resolved without a download.

    In the latter case the executor downloads (or fails with a clear error); the next run then sees the
    real hash, i.e. runs once more, which is the safe direction for a cache.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # count warnings are reported once, by the executor
            files = _resolve(params, download=False)
    except HaleDataError as exc:
        return f"unresolved:{type(exc).__name__}"
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(f"{split}:{sha256_file(files.splits[split])}\n".encode())
    return digest.hexdigest()


EXAMPLE_GEN_SPEC = ComponentSpec(
    name="ExampleGen",
    artifact_type="Examples",
    inputs={},
    outputs=("splits/train.tsv", "splits/valid.tsv", "splits/test.tsv", "stats.json"),
    parameters={
        "dataset": Parameter(str, doc="registry name, 'synthetic', or any name together with data_dir"),
        "data_dir": Parameter(str, None, "directory with {train,valid,test}.{txt,tsv}[.gz]", optional=True),
        "cache_dir": Parameter(str, None, "dataset cache directory", optional=True, affects_output=False),
        "download": Parameter(bool, True, "allow downloading a missing dataset", affects_output=False),
        "synthetic_params": Parameter(dict, None, "generator parameters for 'synthetic'", optional=True),
        "strict_counts": Parameter(
            bool, False, "fail (instead of warn) when counts differ from the registry"
        ),
    },
    version="1",
    external_fingerprint=_raw_fingerprint,
)


def _expected_counts(params: dict[str, Any]) -> tuple[str, dict[str, int]] | None:
    """Registry counts for the dataset, or ``None`` for an unregistered directory of splits."""
    try:
        if canonical_name(params["dataset"]) == SYNTHETIC:
            info = synthetic_info(params["synthetic_params"])
        else:
            info = get_info(params["dataset"])
    except UnknownDatasetError:
        return None
    return info.name, {
        "entities": info.num_entities,
        "relations": info.num_relations,
        "train": info.num_train,
        "valid": info.num_valid,
        "test": info.num_test,
    }


def dataset_stats(splits: dict[str, list[tuple[str, str, str]]]) -> dict[str, Any]:
    """Counts of parsed splits: triples, unique names, duplicates, self-loops, overlaps, unseen names."""
    per_split: dict[str, Any] = {}
    entity_sets: dict[str, set[str]] = {}
    relation_sets: dict[str, set[str]] = {}
    triple_sets: dict[str, set[tuple[str, str, str]]] = {}
    for split in SPLITS:
        triples = splits[split]
        unique = set(triples)
        triple_sets[split] = unique
        entity_sets[split] = {h for h, _, _ in unique} | {t for _, _, t in unique}
        relation_sets[split] = {r for _, r, _ in unique}
        per_split[split] = {
            "triples": len(triples),
            "unique_triples": len(unique),
            "duplicate_lines": len(triples) - len(unique),
            "self_loops": sum(1 for h, _, t in unique if h == t),
            "entities": len(entity_sets[split]),
            "relations": len(relation_sets[split]),
        }
    train_entities, train_relations = entity_sets["train"], relation_sets["train"]
    for split in ("valid", "test"):
        per_split[split]["entities_not_in_train"] = len(entity_sets[split] - train_entities)
        per_split[split]["relations_not_in_train"] = len(relation_sets[split] - train_relations)
        per_split[split]["triples_also_in_train"] = len(triple_sets[split] & triple_sets["train"])
    return {
        "entities": len(set().union(*entity_sets.values())),
        "relations": len(set().union(*relation_sets.values())),
        "splits": per_split,
        "valid_test_overlap": len(triple_sets["valid"] & triple_sets["test"]),
    }


def _execute(inputs: dict[str, Artifact], output_dir: Path, params: dict[str, Any]) -> None:
    del inputs  # ExampleGen reads raw files, not artifacts
    files = _resolve(params, download=params["download"])
    splits = {split: read_triples(files.splits[split]) for split in SPLITS}  # DataFormatError: file:line

    (output_dir / "splits").mkdir()
    for split in SPLITS:
        write_triples(output_dir / "splits" / f"{split}.tsv", splits[split])

    stats = dataset_stats(splits)
    found = {"entities": stats["entities"], "relations": stats["relations"]}
    found.update({split: stats["splits"][split]["triples"] for split in SPLITS})
    expected = _expected_counts(params)
    if expected is None:
        check: dict[str, Any] = {"registered": False, "ok": None, "problems": []}
    else:
        name, want = expected
        problems = [
            f"{name} {key}: expected {want[key]:,}, found {found[key]:,}"
            for key in want
            if want[key] != found[key]
        ]
        check = {
            "registered": True,
            "registry_name": name,
            "expected": want,
            "ok": not problems,
            "problems": problems,
        }
        if problems:
            message = f"{files.directory}: counts differ from the registry: {'; '.join(problems)}"
            if params["strict_counts"]:
                raise CountMismatchError(message)
            logger.warning("ExampleGen: %s", message)
    stats.update(
        {
            "dataset": files.name,
            "source": files.source,
            "source_files": {split: str(files.splits[split]) for split in SPLITS},
            "count_check": check,
        }
    )
    write_json(output_dir / "stats.json", stats)
    logger.info(
        "ExampleGen: %s (%s) %d entities, %d relations, %s triples",
        files.name,
        files.source,
        stats["entities"],
        stats["relations"],
        "/".join(str(found[s]) for s in SPLITS),
    )


EXAMPLE_GEN = Component(spec=EXAMPLE_GEN_SPEC, executor=_execute)
