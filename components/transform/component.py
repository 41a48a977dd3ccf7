"""The Transform component: its spec (parameters, outputs) and its executor around :func:`run_transform`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from components.base import Artifact, Component, ComponentSpec, Parameter
from components.example_gen import SPLITS
from components.transform.pipeline import run_transform
from hale_tf.data.errors import DataFormatError

__all__ = ["TRANSFORM", "TRANSFORM_SPEC", "UNSEEN_POLICIES"]

logger = logging.getLogger("components.transform")

UNSEEN_POLICIES = ("drop", "error", "keep")

TRANSFORM_SPEC = ComponentSpec(
    name="Transform",
    artifact_type="Transformed",
    inputs={"examples": "Examples"},
    outputs=(
        "vocab/entities.tsv",
        "vocab/relations.tsv",
        "queries",
        "triples/train.npy",
        "triples/valid.npy",
        "triples/test.npy",
        "filters",
        "stats.json",
    ),
    parameters={
        "seed": Parameter(int, 0, "seed of the query shuffle (shard assignment and order)"),
        "num_shards": Parameter(int, 8, "number of query TFRecord files"),
        "queries_per_example": Parameter(int, 512, "queries per tf.train.Example block"),
        "unseen_policy": Parameter(
            str,
            "drop",
            "valid/test triples with an entity or relation unseen in train: drop (count, warn), "
            "error, or keep (vocabularies then include all splits)",
            choices=UNSEEN_POLICIES,
        ),
        "beam_runner": Parameter(
            str, "FnApiRunner", "Beam runner; the default runs in process", affects_output=False
        ),
        "beam_options": Parameter(
            list, [], "extra Beam pipeline flags, e.g. ['--runner=FlinkRunner', ...]", affects_output=False
        ),
        "num_workers": Parameter(
            int,
            1,
            "local worker processes (>1: --direct_running_mode=multi_processing)",
            affects_output=False,
        ),
        "chunk_bytes": Parameter(
            int, 4 << 20, "bytes of a split file read as one Beam element", affects_output=False
        ),
    },
    version="1",
    uses_beam=True,
)


def _as_source_error(err: DataFormatError, examples: Artifact, split_paths: dict[str, str]) -> DataFormatError:
    """Name the user's file, not ExampleGen's canonical copy: the copy keeps every line in its place."""
    try:
        sources = json.loads(examples.path("stats.json").read_text(encoding="utf-8"))["source_files"]
    except (OSError, ValueError, KeyError):
        return err
    for split, path in split_paths.items():
        if os.path.abspath(err.path) == os.path.abspath(path) and sources.get(split):
            return DataFormatError(sources[split], err.line, err.reason)
    return err


def _execute(inputs: dict[str, Artifact], output_dir: Path, params: dict[str, Any]) -> None:
    examples = inputs["examples"]
    split_paths = {split: str(examples.path("splits", f"{split}.tsv")) for split in SPLITS}
    try:
        run_transform(split_paths, output_dir, params)
    except DataFormatError as err:
        raise _as_source_error(err, examples, split_paths) from None
    stats = json.loads((output_dir / "stats.json").read_text(encoding="utf-8"))
    for split in ("valid", "test"):
        rep = stats["unseen"].get(split, {})
        if rep.get("dropped_triples"):
            logger.warning(
                "Transform: dropped %d of %d %s triples with an entity or relation unseen in train "
                "(unseen_policy='drop'; %d unseen entities, %d unseen relations)",
                rep["dropped_triples"],
                rep["input_triples"],
                split,
                rep["unseen_entities"],
                rep["unseen_relations"],
            )
    logger.info(
        "Transform: %d entities, %d relations, %d queries in %d shards",
        stats["num_entities"],
        stats["num_relations"],
        stats["queries"]["num_queries"],
        stats["queries"]["num_shards"],
    )


TRANSFORM = Component(spec=TRANSFORM_SPEC, executor=_execute)
