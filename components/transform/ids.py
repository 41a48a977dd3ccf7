"""Id mapping: text blocks -> int32 (head, relation, tail) blocks, the unseen policy, ``triples/*.npy``
and the filter index."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np

from components.example_gen import SPLITS
from components.transform.errors import _fail
from components.transform.read import _Block, _fields
from components.transform.vocab import _read_vocab, _split_names
from hale_tf.atomic import atomic_open


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


def _concat_split(item: tuple[str, Iterable[tuple[int, np.ndarray]]]) -> tuple[str, np.ndarray]:
    split, parts = item
    ordered = [ids for _, ids in sorted(parts, key=lambda p: p[0])]  # file order
    return split, np.concatenate(ordered).astype(np.int32, copy=False).reshape(-1, 3)



def _write_npy(item: tuple[str, np.ndarray], out_dir: str) -> tuple[str, int]:
    split, ids = item
    with atomic_open(Path(out_dir) / "triples" / f"{split}.npy", "wb") as f:
        np.save(f, ids)
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
    num_entities = len(_read_vocab(out_dir / "vocab" / "entities.tsv"))
    num_relations = len(_read_vocab(out_dir / "vocab" / "relations.tsv"))
    FilterIndex.from_triples(arrays, num_relations, num_entities=num_entities).save(out_dir / "filters")
