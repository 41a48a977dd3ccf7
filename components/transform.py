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
"""

from __future__ import annotations

import json
import logging
import mmap
import operator
import os
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
import crcmod.predefined
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from components.base import Artifact, Component, ComponentError, ComponentSpec, Parameter
from components.example_gen import SPLITS
from hale_tf.data.errors import DataFormatError
from hale_tf.data.raw import split_fields, triple_text
from hale_tf.data.records import RECORD_FORMAT, encode_query_block

__all__ = ["TRANSFORM", "TRANSFORM_SPEC", "UNSEEN_POLICIES", "build_pipeline", "run_transform", "runner_class"]

logger = logging.getLogger(__name__)

UNSEEN_POLICIES = ("drop", "error", "keep")
RELATION_CATEGORY_THRESHOLD = 1.5  # tph / hpt threshold of Bordes et al. (2013)

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


# --------------------------------------------------------------------------------------------------------
# Errors raised inside Beam workers
#
# Runners wrap a worker's exception (the in-process runner re-raises it with a step annotation; worker
# processes and remote runners send back only the formatted traceback text). The worker therefore puts
# a JSON payload between markers into the message, and the executor turns it back into a one-line
# DataFormatError after the pipeline fails.

_ERR_RE = re.compile(r"\[\[hale-error\]\](.*?)\[\[/hale-error\]\]", re.S)


class _WorkerError(ValueError):
    pass


def _fail(path: str, line: int, reason: str) -> None:
    payload = json.dumps({"path": path, "line": int(line), "reason": reason}, ensure_ascii=True)
    raise _WorkerError(f"[[hale-error]]{payload}[[/hale-error]]")


def _error_from_pipeline(exc: BaseException) -> Exception:
    text = ""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:  # the marker may sit in a chained exception
        seen.add(id(cur))
        text += f"\n{cur}"
        cur = cur.__cause__ or cur.__context__
    match = _ERR_RE.search(text)
    if match:
        try:
            info = json.loads(match.group(1))
            return DataFormatError(info["path"], info["line"], info["reason"])
        except (ValueError, KeyError):
            pass
    last = next((ln.strip() for ln in reversed(str(exc).splitlines()) if ln.strip()), type(exc).__name__)
    return ComponentError(f"Transform: Beam pipeline failed: {last[:300]}")


# --------------------------------------------------------------------------------------------------------
# Elements


class _Chunk(NamedTuple):
    split: str
    path: str
    index: int  # position of the chunk in its file
    start: int  # byte range [start, end), ending at a line break
    end: int
    first_line: int  # 1-based line number of the chunk's first line


class _Block(NamedTuple):
    split: str
    path: str
    index: int
    first_line: int
    num_lines: int
    text: str  # validated lines joined by "\n": one str pickles and sizes far faster than 3 lists of names


# --------------------------------------------------------------------------------------------------------
# Reading


def _plan_chunks(item: tuple[str, str], chunk_bytes: int) -> Iterator[_Chunk]:
    """Cut a split file into line-aligned byte ranges and number their first lines."""
    split, path = item
    size = os.path.getsize(path)
    if size == 0:
        _fail(path, 1, f"empty {split} split: expected lines 'head<TAB>relation<TAB>tail'")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start, line, index = 0, 1, 0
        while start < size:
            end = min(start + chunk_bytes, size)
            if end < size:
                newline = mm.find(b"\n", end - 1)
                end = size if newline < 0 else newline + 1
            yield _Chunk(split, path, index, start, end, line)
            line += mm[start:end].count(b"\n")
            start, index = end, index + 1


def _read_chunk(chunk: _Chunk) -> Iterator[_Block]:
    """Read and validate one byte range (hale_tf.data.raw's line grammar); any malformed line fails with file:line."""
    with open(chunk.path, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    try:
        text = triple_text(data, chunk.path, first_line=chunk.first_line)
        split_fields(text, chunk.path, first_line=chunk.first_line)
    except DataFormatError as exc:
        _fail(exc.path, exc.line, exc.reason)
    yield _Block(chunk.split, chunk.path, chunk.index, chunk.first_line, text.count("\n") + 1, text)


def _fields(text: str) -> list[str]:
    """Fields of a validated block, row-major: heads ``[0::3]``, relations ``[1::3]``, tails ``[2::3]``."""
    return text.replace("\n", "\t").split("\t")


# --------------------------------------------------------------------------------------------------------
# Vocabularies and id mapping
#
# A vocabulary travels as one newline-joined string: Beam pickles it and sizes it for its side-input cache
# in O(1) objects, whereas a list of 123k strings costs seconds per stage in both.


def _split_names(text: str) -> list[str]:
    return text.split("\n") if text else []


class _VocabFn(beam.CombineFn):
    """Blocks -> ``(entities, relations)``, each the sorted names joined by newlines (deterministic ids)."""

    def __init__(self, train_only: bool) -> None:
        self._train_only = train_only

    def create_accumulator(self) -> tuple[set[str], set[str]]:
        return set(), set()

    def add_input(self, acc: tuple[set[str], set[str]], block: _Block) -> tuple[set[str], set[str]]:
        if self._train_only and block.split != "train":
            return acc
        fields = _fields(block.text)
        acc[0].update(fields[0::3])
        acc[0].update(fields[2::3])
        acc[1].update(fields[1::3])
        return acc

    def merge_accumulators(self, accs: Iterable[tuple[set[str], set[str]]]) -> tuple[set[str], set[str]]:
        entities: set[str] = set()
        relations: set[str] = set()
        for ent, rel in accs:
            entities |= ent
            relations |= rel
        return entities, relations

    def extract_output(self, acc: tuple[set[str], set[str]]) -> tuple[str, str]:
        return "\n".join(sorted(acc[0])), "\n".join(sorted(acc[1]))


def _vocab_sizes(vocab: tuple[str, str]) -> tuple[int, int]:
    return len(_split_names(vocab[0])), len(_split_names(vocab[1]))


def _lookup(table: dict[str, int], names: list[str]) -> np.ndarray:
    if len(names) == 1:  # itemgetter returns a scalar, not a tuple, for one key
        return np.array([table[names[0]]], np.int32)
    if not names:
        return np.zeros([0], np.int32)
    # One C-level loop over the keys: the fastest pure-Python dict lookup for large blocks.
    return np.array(operator.itemgetter(*names)(table), np.int32)


class _MapToIds(beam.DoFn):
    """Map a block's names to ids; apply the unseen policy to valid/test rows.

    Output: ``(split, chunk index, int32 [n, 3] ids, unseen report dict)``, split into the id blocks and the
    reports by two ``Map`` steps. One output, not a tagged side output, on purpose: Beam's DaskRunner
    (2.77) does not separate tagged outputs (they reach the main output's consumers), so a multi-output
    ParDo would feed the unseen reports into the per-split GroupByKey there.
    """

    def __init__(self, policy: str) -> None:
        self._policy = policy
        self._tables: dict[str, tuple[str, dict[str, int]]] = {}

    def _table(self, key: str, text: str) -> dict[str, int]:
        # Side inputs are re-delivered per bundle; rebuilding a 123k-entry dict each time is wasteful.
        cached = self._tables.get(key)
        if cached is None or cached[0] != text:
            cached = (text, {name: i for i, name in enumerate(_split_names(text))})
            self._tables[key] = cached
        return cached[1]

    def process(self, block: _Block, vocab: tuple[str, str], train_vocab: tuple[str, str]) -> Iterator[Any]:
        ent, rel = self._table("ent", vocab[0]), self._table("rel", vocab[1])
        fields = _fields(block.text)
        heads, relations, tails = fields[0::3], fields[1::3], fields[2::3]
        n = len(heads)
        report = {"rows": n, "unseen_rows": 0, "dropped": 0, "entities": set(), "relations": set()}
        if block.split != "train":
            # "Unseen" is always judged against train, even under "keep" where the id vocab is larger.
            train_ent, train_rel = (
                self._table("train_ent", train_vocab[0]),
                self._table("train_rel", train_vocab[1]),
            )
            seen_h = np.fromiter(map(train_ent.__contains__, heads), bool, n)
            seen_r = np.fromiter(map(train_rel.__contains__, relations), bool, n)
            seen_t = np.fromiter(map(train_ent.__contains__, tails), bool, n)
            bad = np.flatnonzero(~(seen_h & seen_r & seen_t))
            for i in bad:
                report["entities"].update(
                    x for x, seen in ((heads[i], seen_h[i]), (tails[i], seen_t[i])) if not seen
                )
                if not seen_r[i]:
                    report["relations"].add(relations[i])
            report["unseen_rows"] = len(bad)
            if len(bad) and self._policy == "error":
                i = int(bad[0])
                what = (
                    f"entity {heads[i]!r}"
                    if not seen_h[i]
                    else f"relation {relations[i]!r}"
                    if not seen_r[i]
                    else f"entity {tails[i]!r}"
                )
                _fail(
                    block.path,
                    block.first_line + i,
                    f"{what} does not occur in the training split (unseen_policy='error'; "
                    "use 'drop' to skip such triples)",
                )
            if len(bad) and self._policy == "drop":
                keep = np.setdiff1d(np.arange(n), bad)
                heads, relations, tails = ([xs[i] for i in keep] for xs in (heads, relations, tails))
                report["dropped"] = len(bad)
        ids = np.stack([_lookup(ent, heads), _lookup(rel, relations), _lookup(ent, tails)], axis=1)
        yield block.split, block.index, ids.reshape(-1, 3), report


class _MergeUnseen(beam.CombineFn):
    """Per-split totals of the unseen reports."""

    def create_accumulator(self) -> dict[str, dict[str, Any]]:
        return {}

    def add_input(self, acc: dict[str, dict[str, Any]], item: tuple[str, dict[str, Any]]) -> dict:
        split, rep = item
        cur = acc.setdefault(
            split, {"rows": 0, "unseen_rows": 0, "dropped": 0, "entities": set(), "relations": set()}
        )
        for key in ("rows", "unseen_rows", "dropped"):
            cur[key] += rep[key]
        cur["entities"] |= rep["entities"]
        cur["relations"] |= rep["relations"]
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, dict[str, Any]]]) -> dict:
        merged: dict[str, dict[str, Any]] = {}
        for acc in accs:
            for split, rep in acc.items():
                self.add_input(merged, (split, rep))
        return merged

    def extract_output(self, acc: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return acc


# --------------------------------------------------------------------------------------------------------
# Writers (each writes under a temporary name and renames, so a retried bundle never leaves half a file)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_vocabs(vocab: tuple[str, str], out_dir: str) -> tuple[str, str]:
    """Write the vocabularies and pass them on (the statistics step reads them from here, so that every
    output is upstream of that last step: runners that execute only what the last step needs, such as
    Beam 2.77's DaskRunner, still write them)."""
    directory = Path(out_dir) / "vocab"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in zip(("entities.tsv", "relations.tsv"), vocab, strict=True):
        _atomic_write_text(directory / name, text + "\n" if text else "")
    return vocab


def _concat_split(item: tuple[str, Iterable[tuple[int, np.ndarray]]]) -> tuple[str, np.ndarray]:
    split, parts = item
    ordered = [ids for _, ids in sorted(parts, key=lambda p: p[0])]  # file order
    return split, np.concatenate(ordered).astype(np.int32, copy=False).reshape(-1, 3)


def _write_npy(item: tuple[str, np.ndarray], out_dir: str) -> tuple[str, int]:
    split, ids = item
    target = Path(out_dir) / "triples" / f"{split}.npy"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{split}.tmp-{os.getpid()}.npy")
    np.save(tmp, ids)
    os.replace(tmp, target)
    return split, int(len(ids))


def _write_filter_index(out_dir: Path) -> None:
    """Build ``filters/`` (hale_tf.evaluation.FilterIndex over train, valid and test) from ``triples/``.

    This runs in the launching process after the pipeline, not in a Beam worker: importing
    ``hale_tf.evaluation`` imports TensorFlow, which costs a worker process several seconds (measured:
    the two-worker run of a tiny graph went from 9 s to 27 s on a loaded 2-core machine), while the
    index itself is one vectorised pass over arrays the pipeline has just written.
    """
    from hale_tf.evaluation import FilterIndex

    arrays = {split: np.load(out_dir / "triples" / f"{split}.npy") for split in SPLITS}
    num_entities = len(
        _split_names((out_dir / "vocab" / "entities.tsv").read_text(encoding="utf-8").rstrip("\n"))
    )
    num_relations = len(
        _split_names((out_dir / "vocab" / "relations.tsv").read_text(encoding="utf-8").rstrip("\n"))
    )
    FilterIndex.from_triples(arrays, num_relations, num_entities=num_entities).save(out_dir / "filters")


# --------------------------------------------------------------------------------------------------------
# Queries


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed, platform-independent 64-bit hash of uint64 values."""
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _query_hash(heads: np.ndarray, relations: np.ndarray, seed: int, salt: int) -> np.ndarray:
    key = (heads.astype(np.uint64) << np.uint64(32)) | relations.astype(np.uint64)
    salt_value = _mix64(np.array([(seed * 2 + salt) & 0xFFFFFFFFFFFFFFFF], np.uint64))[0]
    return _mix64(key ^ salt_value)


def _both_directions(ids: np.ndarray, num_relations: int) -> np.ndarray:
    """Rows (query head, query relation, answer): tail queries (h, r, t) and head queries (t, r + R, h)."""
    rev = np.stack([ids[:, 2], ids[:, 1] + num_relations, ids[:, 0]], axis=1)
    return np.concatenate([ids, rev]).astype(np.int32, copy=False)


def _emit_shard_parts(
    item: tuple[str, tuple[int, np.ndarray]], sizes: tuple[int, int], seed: int, num_shards: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Train id blocks -> ``(shard, rows)`` parts; other splits produce nothing."""
    split, (_, ids) = item
    if split != "train":
        return
    rows = _both_directions(ids, sizes[1])
    shard = (_query_hash(rows[:, 0], rows[:, 1], seed, 0) % np.uint64(num_shards)).astype(np.int64)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
    for s in range(num_shards):
        if bounds[s + 1] > bounds[s]:
            yield int(s), rows[order[bounds[s] : bounds[s + 1]]]


def _group_queries(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by (hash(seed, query), answer), drop duplicates, and build CSR queries.

    The hash is a bijection of the unique 64-bit query key (head << 32 | relation), so distinct queries
    never tie and sorting by (hash, answer) keeps each query's rows together.
    """
    if len(rows) == 0:
        empty = np.zeros([0], np.int32)
        return empty, empty, np.zeros([1], np.int64), empty
    qhash = _query_hash(rows[:, 0], rows[:, 1], seed, 1)
    order = np.lexsort((rows[:, 2], qhash))
    rows, qhash = rows[order], qhash[order]
    fresh = np.ones(len(rows), bool)
    fresh[1:] = (qhash[1:] != qhash[:-1]) | (rows[1:, 2] != rows[:-1, 2])  # duplicates give one answer
    rows, qhash = rows[fresh], qhash[fresh]
    starts = np.ones(len(rows), bool)
    starts[1:] = qhash[1:] != qhash[:-1]
    first = np.flatnonzero(starts)
    row_splits = np.append(first, len(rows)).astype(np.int64)
    return rows[first, 0], rows[first, 1], row_splits, np.ascontiguousarray(rows[:, 2])


_crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")  # C implementation, a Beam[tfrecord] dependency


def _masked_crc(data: bytes) -> bytes:
    crc = _crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _write_tfrecords(path: Path, records: Iterable[bytes]) -> int:
    """Write TFRecord framing (length, masked CRC32C, data, masked CRC32C) without TensorFlow.

    Written under a temporary name and renamed, so a retried bundle never leaves half a file.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    with open(tmp, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + _masked_crc(length) + data + _masked_crc(data))
            count += 1
    os.replace(tmp, path)
    return count


def _query_blocks(
    heads: np.ndarray, relations: np.ndarray, row_splits: np.ndarray, values: np.ndarray, per_block: int
) -> Iterator[bytes]:
    counts = np.diff(row_splits)
    for start in range(0, len(heads), per_block):
        stop = min(start + per_block, len(heads))
        yield encode_query_block(
            heads[start:stop],
            relations[start:stop],
            counts[start:stop],
            values[row_splits[start] : row_splits[stop]],
        )


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
        heads, relations, row_splits, values = _group_queries(rows, self._seed)
        directory = Path(self._out_dir) / "queries"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"train-{shard:05d}-of-{self._num_shards:05d}.tfrecord"
        records = _write_tfrecords(
            directory / name, _query_blocks(heads, relations, row_splits, values, self._qpe)
        )
        counts = np.diff(row_splits)
        # Degree = number of (deduplicated) train triples an entity takes part in; each triple shows up
        # once as an answer of a tail query and once of a head query, so count answers.
        yield {
            "num_queries": int(len(heads)),
            "num_answers": int(len(values)),
            "records": int(records),
            "queries_per_relation": np.bincount(relations, minlength=2 * num_relations).astype(np.int64),
            "answers_per_relation": np.bincount(
                relations, weights=counts, minlength=2 * num_relations
            ).astype(np.int64),
            "degree": np.bincount(values, minlength=num_entities).astype(np.int64),
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


# --------------------------------------------------------------------------------------------------------
# Statistics


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
        "num_relations_with_reciprocals": 2 * len(relations),
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
    _atomic_write_text(Path(out_dir) / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------------------
# The pipeline


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
        root = str(Path(__file__).resolve().parents[1])
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
