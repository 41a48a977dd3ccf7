"""Transform: canonical splits -> vocabularies, id triples, query TFRecords, filter index, statistics.

The work is an Apache Beam pipeline, so the same code runs in process (default, ``FnApiRunner``: no
runner binary is downloaded), with local worker processes (``num_workers=2``), on a ``dask.distributed``
cluster (``beam_runner="DaskRunner"``, ``beam_options=["--dask_client_address=tcp://host:8786"]``) or on
Flink / Spark / Dataflow (``beam_runner`` / ``beam_options``; docs/scale.md has the runbooks).

Why the elements are *blocks*
    Python Beam pays several microseconds per element per step; one element per triple costs ~35 s per
    million triples on two cores before any real work. Like TFX Transform (which feeds batches of
    instances to its analyzers), the pipeline moves blocks: a chunk of a split file (a byte range
    ending at a line break, a few MiB), and per shard an array of (head, relation, tail) rows. Beam
    still does the reading (chunks are distributed over workers), the mapping (a ``ParDo`` with the
    vocabulary as a side input), the grouping (a ``GroupByKey`` that routes every query's rows to
    its shard) and the writing; NumPy only vectorises the work inside one element.

Pipeline (``P`` = PCollection)::

    splits ─► plan chunks ─► Reshuffle ─► read+parse chunk ─┬─► entity/relation sets ─► CombineGlobally
                                                           │         (sorted union) ─► vocab/*.tsv
                                                           └─► map to ids (vocab side input; unseen policy)
      id blocks ─┬─► GroupByKey(split) ─► triples/<split>.npy   (then, outside Beam: filters/)
                 └─► train: both directions, key = hash(seed, head, relation) % num_shards
                       ─► GroupByKey(shard) ─► sort by hash(seed, query), group answers
                       ─► queries/train-SSSSS-of-NNNNN.tfrecord  (+ per-shard statistics)
      statistics side inputs ─► stats.json

Determinism: vocabularies are sorted names; queries are assigned to shards and ordered inside a shard
by a seeded 64-bit hash of (head, relation), so the files are a deterministic shuffle for a seed
whatever the runner, worker count or chunk size.

Output artifact (type ``Transformed``)::

    vocab/entities.tsv, vocab/relations.tsv   line i = name of id i (base relations only)
    queries/train-00000-of-0000N.tfrecord ... hale_tf.data.records schema, reciprocal ids r + R
    triples/{train,valid,test}.npy            int32 [M, 3] (head, base relation, tail), file order
    filters/                                  hale_tf.evaluation.FilterIndex over train+valid+test
    stats.json                                sizes, degree and answer histograms, relation categories,
                                              unseen valid/test entities and dropped triples

Modules (one Beam stage each)::

    component.py  TRANSFORM_SPEC (parameters, outputs) and the executor       TRANSFORM
    pipeline.py   build_pipeline (the wiring above), run_transform, runner_class
    read.py       plan chunks, read and validate a chunk into a text block
    vocab.py      vocabularies (sorted names; hale_tf.data.ids.number_names for train)
    ids.py        names -> id blocks, the unseen policy, triples/*.npy, filters/
    queries.py    both directions -> shards -> CSR queries -> TFRecords (hale_tf.data.queries, .records)
    stats.py      stats.json
    errors.py     one-line errors out of Beam workers
"""

from components.transform.component import TRANSFORM, TRANSFORM_SPEC, UNSEEN_POLICIES
from components.transform.pipeline import RUNNER_CLASSES, build_pipeline, run_transform, runner_class

__all__ = [
    "RUNNER_CLASSES",
    "TRANSFORM",
    "TRANSFORM_SPEC",
    "UNSEEN_POLICIES",
    "build_pipeline",
    "run_transform",
    "runner_class",
]
