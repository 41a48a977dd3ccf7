"""The Beam pipeline: :func:`build_pipeline` wires the stages, :func:`run_transform` runs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from components.base import ComponentError
from components.example_gen import SPLITS
from components.transform.errors import _error_from_pipeline
from components.transform.ids import _concat_split, _MapToIds, _MergeUnseen, _write_filter_index, _write_npy
from components.transform.queries import _emit_shard_parts, _SumStats, _WriteQueryShard
from components.transform.read import _plan_chunks, _read_chunk
from components.transform.stats import _build_stats
from components.transform.vocab import _vocab_sizes, _VocabFn, _write_vocabs
from hale_tf.data.errors import DataFormatError

__all__ = ["RUNNER_CLASSES", "build_pipeline", "run_transform", "runner_class"]


def build_pipeline(
    pipeline: beam.Pipeline, split_paths: dict[str, str], out_dir: str, params: dict[str, Any]
) -> None:
    """Add the Transform steps to ``pipeline`` (reading ``split_paths``, writing under ``out_dir``)."""
    policy = params["unseen_policy"]
    num_shards = params["num_shards"]
    seed = params["seed"]
    side = beam.pvalue.AsSingleton

    chunks = (
        pipeline
        | "ListSplits" >> beam.Create(sorted(split_paths.items()))
        | "PlanChunks" >> beam.FlatMap(_plan_chunks, params["chunk_bytes"])
        # A shuffle boundary, so that chunks (not whole files) are spread over the workers.
        | "SpreadChunks" >> beam.Reshuffle()
    )
    blocks = chunks | "ReadChunks" >> beam.FlatMap(_read_chunk)
    # (entities, relations) as newline-joined sorted names; under "keep" from every split. The inputs are
    # never empty (an empty split fails while planning), so the combines need no default values.
    train_vocab = blocks | "TrainVocab" >> beam.CombineGlobally(_VocabFn(train_only=True)).without_defaults()
    if policy == "keep":
        vocab = blocks | "AllVocab" >> beam.CombineGlobally(_VocabFn(train_only=False)).without_defaults()
    else:
        vocab = train_vocab
    vocab_written = vocab | "WriteVocab" >> beam.Map(_write_vocabs, out_dir)
    sizes = vocab | "VocabSizes" >> beam.Map(_vocab_sizes)

    mapped = blocks | "MapToIds" >> beam.ParDo(_MapToIds(policy), side(vocab), side(train_vocab))
    # Keyed by split for the per-split GroupByKey.
    id_blocks = mapped | "IdBlocks" >> beam.Map(lambda m: (m[0], (m[1], m[2])))
    unseen = (
        mapped
        | "UnseenReports" >> beam.Map(lambda m: (m[0], m[3]))
        | "MergeUnseen" >> beam.CombineGlobally(_MergeUnseen()).without_defaults()
    )

    # Id triples per split, in file order (the filter index is built from them after the pipeline).
    split_arrays = id_blocks | "GroupBySplit" >> beam.GroupByKey() | "ConcatSplit" >> beam.Map(_concat_split)
    split_sizes = split_arrays | "WriteTriples" >> beam.Map(_write_npy, out_dir)

    # Queries: both directions, routed to shards by a seeded hash, grouped and written per shard.
    empty_shards = pipeline | "AllShards" >> beam.Create(
        [(s, np.zeros([0, 3], np.int32)) for s in range(num_shards)]
    )
    shard_parts = id_blocks | "BothDirections" >> beam.FlatMap(
        _emit_shard_parts, side(sizes), seed, num_shards
    )
    shard_stats = (
        (shard_parts, empty_shards)
        | "WithEveryShard" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteQueryShards"
        >> beam.ParDo(_WriteQueryShard(out_dir, seed, num_shards, params["queries_per_example"]), side(sizes))
    )
    query_stats = shard_stats | "SumShardStats" >> beam.CombineGlobally(_SumStats()).without_defaults()

    _ = (
        pipeline
        | "StatsTrigger" >> beam.Create([None])
        | "WriteStats"
        >> beam.Map(
            _build_stats,
            out_dir,
            params,
            side(vocab_written),
            beam.pvalue.AsDict(split_sizes),
            side(unseen),
            side(query_stats),
        )
    )


#: Runners Beam ships but does not know by a short name (``--runner`` then needs the class path).
RUNNER_CLASSES = {"daskrunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def runner_class(name: str) -> str:
    """``name`` as ``--runner`` takes it: ``DaskRunner`` (or ``dask``) becomes its class path."""
    key = name.strip().lower()
    return RUNNER_CLASSES.get(key, RUNNER_CLASSES.get(f"{key}runner", name))


def _pipeline_options(params: dict[str, Any]) -> PipelineOptions:
    flags = [f"--runner={runner_class(params['beam_runner'])}"]
    if params["num_workers"] > 1:
        flags += [f"--direct_num_workers={params['num_workers']}", "--direct_running_mode=multi_processing"]
    # User flags come last: for argparse the last occurrence wins, so they can override ours.
    flags += list(params["beam_options"])
    return PipelineOptions(flags=flags)


def run_transform(
    split_paths: dict[str, str], out_dir: str | os.PathLike[str], params: dict[str, Any]
) -> None:
    """Run the Transform pipeline on ``split_paths`` (train/valid/test files) into ``out_dir``."""
    for split in SPLITS:
        if split not in split_paths or not Path(split_paths[split]).is_file():
            raise ComponentError(f"Transform: {split} split not found ({split_paths.get(split)})")
    if params["num_shards"] < 1 or params["queries_per_example"] < 1 or params["chunk_bytes"] < 1:
        raise ComponentError("Transform: num_shards, queries_per_example and chunk_bytes must be >= 1")
    out_dir = os.fspath(out_dir)
    options = _pipeline_options(params)
    old_pythonpath = os.environ.get("PYTHONPATH")
    if params["num_workers"] > 1:
        # Worker processes unpickle our DoFns by module name: make this project importable for them.
        root = str(Path(__file__).resolve().parents[2])
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, old_pythonpath) if p)
    try:
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, split_paths, out_dir, params)
        result = pipeline.run()
        try:
            state = result.wait_until_finish()
        finally:
            # The DaskRunner's result holds a dask.distributed client connected to the scheduler; left open,
            # it keeps reconnecting (and logs errors) once the cluster goes away.
            client = getattr(result, "client", None)
            if client is not None:
                client.close()
        if state is not None and state != beam.runners.runner.PipelineState.DONE:
            raise ComponentError(f"Transform: Beam pipeline ended in state {state}")
    except (DataFormatError, ComponentError):
        raise
    except Exception as exc:  # Beam wraps worker failures; recover our one-line error from the text
        raise _error_from_pipeline(exc) from None
    finally:
        if params["num_workers"] > 1:
            if old_pythonpath is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old_pythonpath
    _write_filter_index(Path(out_dir))
