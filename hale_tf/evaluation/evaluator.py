"""Filtered link-prediction ranking against all entities (METHOD.md §4, unchanged).

For a test triple ``(h, r, t)`` there are two queries: the tail query ``(h, r, ?)`` with target ``t`` and
the head query, asked as the tail query ``(t, r + R, ?)`` of the reciprocal relation, with target ``h``.
With scores ``s(e)`` (higher is better) over all N entities and ``F`` the known answers of the query
(train ∪ valid ∪ test) *other than the target* (empty in the raw setting)::

    optimistic  = 1 + #{e ≠ target, e ∉ F : s(e) >  s(target)}
    pessimistic = 1 + #{e ≠ target, e ∉ F : s(e) ≥ s(target)}      (headline; what published tables use)
    realistic   = (optimistic + pessimistic) / 2

    MRR = mean 1/rank,  MR = mean rank,  Hits@k = mean [rank ≤ k]   (the realistic rank may be x.5)

for ``head``, ``tail`` and ``both`` (the mean over all queries of both directions), overall and per base
relation. NaN scores count as −∞ so that a broken model cannot rank its targets first.

How it runs: queries are processed in chunks of B (chosen from a memory budget, checked before scoring).
Each chunk calls ``scorer.score_all(h, r) -> [B, N]`` inside one ``tf.function`` that also counts, per
row, the entities scoring above / at least the target. The filter is applied *sparsely*: the known answers
of the chunk's queries arrive as flat ``(row, entity)`` pairs from the CSR :class:`FilterIndex`; their
scores are gathered from the chunk, compared with the target's, and those counts are subtracted. No
dense mask is built, the target itself is never removed (pairs equal to the target are ignored), and
duplicate answers cannot be subtracted twice because the index stores each answer once per query.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from hale_tf.reciprocal import inverse, relation_ids

from .filter_index import FilterIndex, validate_triples
from .memory import (
    DEFAULT_BYTES_PER_SCORE,
    PAIR_BYTES,
    QUERY_BYTES,
    RANKING_BYTES_PER_SCORE,
    MemoryBudgetError,
    MemoryPlan,
    format_bytes,
    parse_memory,
)
from .result import TIE_RULES, EvaluationResult, compute_metrics

__all__ = [
    "Scorer", "evaluate", "plan_memory", "build_queries", "DEFAULT_MEMORY_BUDGET", "DEFAULT_CPU_CHUNK_BYTES",
    "MAX_QUERY_CHUNK", "MIN_QUERY_CHUNK",
]

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = "1GiB"
# On CPU the [B, N] score chunk is written once and read by the counting reductions: keeping it within the
# last-level cache is worth ~2x (measured on a 2-core EPYC with 32 MiB L3 at N = 123,182: B = 32 ran at
# 6 CPU-s per 10k TransE queries, B >= 64 at 15). Accelerators get bigger chunks (budget-bound only).
DEFAULT_CPU_CHUNK_BYTES = 16 * 2**20
# Above this the per-call overhead is amortised everywhere; larger chunks only cost memory.
MAX_QUERY_CHUNK = 1024
# Below this the per-call overhead dominates; used unless the memory budget forces fewer.
MIN_QUERY_CHUNK = 8
# Filter-pair buffers are padded to a power of two (at least this) so the compiled kernel sees few shapes.
_PAIR_BUCKET = 1024
_SIDE_CODE = {"head": 0, "tail": 1}


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores all entities as tails: ``score_all(h, r) -> [B, N]`` float, higher = better."""

    num_entities: int

    def score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor: ...


# ---------------------------------------------------------------------------------------------- queries
def build_queries(
    triples: np.ndarray, num_relations: int, sides: Sequence[str] = ("head", "tail")
) -> dict[str, np.ndarray]:
    """Turn ``[M, 3]`` triples into tail-form queries ``(head, relation', target)``.

    Tail side: ``(h, r, t)``; head side: ``(t, r + R, h)``. Returns int64 arrays ``head``, ``relation``,
    ``target``, ``base_relation``, ``side`` (0 = head, 1 = tail) and ``triple`` (row in ``triples``),
    in the order of ``sides`` (all queries of one side, then the other).
    """
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("head", "relation", "target", "base_relation",
                                                         "side", "triple")}
    rows = np.arange(len(triples), dtype=np.int64)
    for side in sides:
        if side == "tail":
            qh, qr, qt = h, r, t
        else:
            qh, qr, qt = t, inverse(r, num_relations), h
        parts["head"].append(qh)
        parts["relation"].append(qr)
        parts["target"].append(qt)
        parts["base_relation"].append(r)
        parts["side"].append(np.full(len(triples), _SIDE_CODE[side], np.int64))
        parts["triple"].append(rows)
    return {k: (np.concatenate(v) if v else np.zeros(0, np.int64)).astype(np.int64) for k, v in parts.items()}


# ----------------------------------------------------------------------------------------------- memory
def _chunk_capacity(counts: np.ndarray, chunk: int) -> int:
    """Largest number of filter pairs in any chunk, padded to a bucket (0 when there are none)."""
    if len(counts) == 0 or chunk <= 0:
        return 0
    per_chunk = np.add.reduceat(counts, np.arange(0, len(counts), chunk))
    mx = int(per_chunk.max())
    return 0 if mx == 0 else max(_PAIR_BUCKET, 1 << (mx - 1).bit_length())


def plan_memory(
    num_entities: int,
    pair_counts: np.ndarray,
    *,
    memory_budget: int | str = DEFAULT_MEMORY_BUDGET,
    query_chunk_size: int | None = None,
    bytes_per_score: float = DEFAULT_BYTES_PER_SCORE,
    chunk_bytes: int | str | None = None,
) -> MemoryPlan:
    """Choose the query chunk size B from the budget and estimate the peak (see :mod:`.memory`).

    ``pair_counts[i]`` is the number of known answers of query i (0 everywhere in the raw setting).
    Without an explicit ``query_chunk_size``, B is the largest size that fits the budget, capped at
    ``MAX_QUERY_CHUNK`` and, when ``chunk_bytes`` is given, at ``chunk_bytes / (4 N)`` (but not below
    ``MIN_QUERY_CHUNK`` unless the budget demands it).
    Raises :class:`MemoryBudgetError` before any work when no configuration fits, or when an explicit
    ``query_chunk_size`` does not.
    """
    budget = parse_memory(memory_budget)
    counts = np.asarray(pair_counts, np.int64)
    q = len(counts)
    per_row = num_entities * (bytes_per_score + RANKING_BYTES_PER_SCORE)

    def make(chunk: int) -> MemoryPlan:
        cap = _chunk_capacity(counts, chunk)
        s, p, qb, total = MemoryPlan.estimate(chunk, num_entities, cap, q, bytes_per_score)
        return MemoryPlan(
            query_chunk_size=chunk, pair_capacity=cap, num_chunks=-(-q // chunk) if q else 0,
            num_entities=num_entities, num_queries=q, bytes_per_score=bytes_per_score, score_bytes=s,
            pair_bytes=p, query_bytes=qb, estimated_peak_bytes=total, budget_bytes=budget,
        )

    if query_chunk_size is not None:
        if query_chunk_size < 1:
            raise ValueError(f"query_chunk_size must be ≥ 1; got {query_chunk_size}")
        plan = make(max(1, min(int(query_chunk_size), max(q, 1))))
        if plan.estimated_peak_bytes > budget:
            raise MemoryBudgetError(
                f"evaluation with query_chunk_size={plan.query_chunk_size} against {num_entities} entities "
                f"needs an estimated {format_bytes(plan.estimated_peak_bytes)} (scores "
                f"{format_bytes(plan.score_bytes)}, filter pairs {format_bytes(plan.pair_bytes)}, queries "
                f"{format_bytes(plan.query_bytes)}) but memory_budget is {format_bytes(budget)}: lower "
                f"query_chunk_size (or leave it unset to size it from the budget) or raise memory_budget"
            )
        return plan

    avail = budget - q * QUERY_BYTES
    mean_pairs = float(counts.mean()) if q else 0.0
    chunk = int(avail // (per_row + mean_pairs * PAIR_BYTES)) if avail > 0 else 0
    cap = MAX_QUERY_CHUNK
    if chunk_bytes is not None:
        cap = min(cap, max(MIN_QUERY_CHUNK, parse_memory(chunk_bytes) // (4 * num_entities)))
    chunk = min(chunk, cap, max(q, 1))
    while chunk >= 1:
        plan = make(chunk)
        if plan.estimated_peak_bytes <= budget:
            return plan
        # A chunk with many known answers was heavier than the average: shrink proportionally.
        chunk = min(chunk - 1, int(chunk * budget / plan.estimated_peak_bytes))
    one = make(1)
    raise MemoryBudgetError(
        f"evaluation against {num_entities} entities cannot fit memory_budget={format_bytes(budget)}: even "
        f"query_chunk_size=1 needs an estimated {format_bytes(one.estimated_peak_bytes)} ({bytes_per_score:g} "
        f"+ {RANKING_BYTES_PER_SCORE:g} bytes per score, {q} queries, {one.pair_capacity} filter pairs); "
        f"raise memory_budget (e.g. memory_budget='{max(1, -(-one.estimated_peak_bytes * 2 // 2**20))}MiB')"
    )


# ----------------------------------------------------------------------------------------------- kernel
_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# Below this many (query, entity) scores an evaluation runs in graph mode by default (no XLA compile).
XLA_MIN_SCORES = 50_000_000


def _make_kernel(scorer: Scorer, jit: bool, filtered: bool) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """One compiled step: score a chunk, return (optimistic, pessimistic) int32 ranks per row."""

    # Float sums vectorise better than int32 ones on CPU (measured ~25 % faster end to end under XLA)
    # and are exact while every partial sum is an integer below 2^24.
    count_dtype = tf.float32 if scorer.num_entities < 2**24 else tf.float64

    def _count(mask: tf.Tensor) -> tf.Tensor:
        ones = tf.ones_like(mask, count_dtype)
        return tf.cast(tf.reduce_sum(tf.where(mask, ones, tf.zeros_like(ones)), axis=1), tf.int32)

    def kernel(h: tf.Tensor, r: tf.Tensor, t: tf.Tensor, prow: tf.Tensor, pent: tf.Tensor,
               pvalid: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        s = tf.convert_to_tensor(scorer.score_all(h, r))
        # NaN compares false with everything; as −∞ it can never outrank a real score.
        s = tf.where(tf.math.is_nan(s), tf.constant(-np.inf, s.dtype), s)
        st = tf.gather(s, t[:, None], batch_dims=1)  # [B, 1] target scores
        gt = _count(s > st)
        ge = _count(s >= st)  # includes the target itself
        if filtered:
            b = tf.shape(h)[0]
            ps = tf.gather_nd(s, tf.stack([prow, pent], axis=1))  # scores of the known answers
            pst = tf.gather(st[:, 0], prow)
            # Padding pairs are invalid; a known answer equal to the target must stay in the ranking.
            keep = pvalid & tf.not_equal(pent, tf.gather(t, prow))
            gt -= tf.math.unsorted_segment_sum(tf.cast(keep & (ps > pst), tf.int32), prow, b)
            ge -= tf.math.unsorted_segment_sum(tf.cast(keep & (ps >= pst), tf.int32), prow, b)
        return 1 + gt, ge  # optimistic = 1 + #greater; pessimistic = 1 + (#≥ − target) = ge

    return tf.function(kernel, jit_compile=jit)


def _kernel(scorer: Scorer, jit: bool, filtered: bool) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """Cached per scorer so repeated validation (early stopping) does not retrace or recompile."""
    try:
        cache = _KERNELS.setdefault(scorer, {})
    except TypeError:  # not weak-referenceable / hashable: no caching
        return _make_kernel(scorer, jit, filtered)
    key = (jit, filtered)
    if key not in cache:
        cache[key] = _make_kernel(scorer, jit, filtered)
    return cache[key]


# ------------------------------------------------------------------------------------------- aggregation
def _aggregate(
    ranks: dict[str, np.ndarray], side: np.ndarray, base_rel: np.ndarray, sides: Sequence[str],
    hits_at: tuple[int, ...], num_relations: int, relation_names: Sequence[str] | None,
) -> tuple[dict, dict, dict]:
    groups = {s: side == _SIDE_CODE[s] for s in sides}
    if len(sides) == 2:
        groups["both"] = np.ones(len(side), bool)
    metrics = {g: {tie: compute_metrics(ranks[tie][m], hits_at) for tie in TIE_RULES} for g, m in groups.items()}
    num_queries = {g: int(m.sum()) for g, m in groups.items()}

    # Per base relation with bincount: sums of 1/x, x and [x ≤ k] divided by the counts.
    present = np.unique(base_rel)
    per_relation: dict[int, dict[str, Any]] = {
        int(r): {"name": relation_names[r] if relation_names is not None else None, "num_queries": {},
                 "metrics": {}}
        for r in present
    }
    for g, m in groups.items():
        rel = base_rel[m]
        n = np.bincount(rel, minlength=num_relations).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            for tie in TIE_RULES:
                x = ranks[tie][m].astype(np.float64)
                cols = {
                    "mrr": np.bincount(rel, weights=1.0 / x, minlength=num_relations) / n,
                    "mr": np.bincount(rel, weights=x, minlength=num_relations) / n,
                }
                for k in hits_at:
                    cols[f"hits@{k}"] = np.bincount(rel, weights=(x <= k).astype(np.float64),
                                                    minlength=num_relations) / n
                for r in present:
                    entry = per_relation[int(r)]
                    entry["num_queries"][g] = int(n[r])
                    entry["metrics"].setdefault(g, {})[tie] = {name: float(v[r]) for name, v in cols.items()}
    return metrics, num_queries, per_relation


def _model_info(scorer: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"class": f"{type(scorer).__module__}.{type(scorer).__qualname__}",
                            "name": getattr(scorer, "name", None)}
    get_config = getattr(scorer, "get_config", None)
    if callable(get_config):
        try:
            info["config"] = get_config()
        except Exception as e:  # a model without a serialisable config still gets evaluated
            info["config_error"] = repr(e)
    return info


# ------------------------------------------------------------------------------------------------ public
def evaluate(
    scorer: Scorer,
    triples: np.ndarray,
    *,
    num_relations: int,
    filter_index: FilterIndex | None = None,
    setting: str = "filtered",
    sides: Sequence[str] = ("head", "tail"),
    hits_at: Sequence[int] = (1, 3, 10),
    memory_budget: int | str = DEFAULT_MEMORY_BUDGET,
    query_chunk_size: int | None = None,
    bytes_per_score: float | None = None,
    chunk_bytes: int | str | None = "auto",
    jit_compile: bool | None = None,
    split: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    relation_names: Sequence[str] | None = None,
    return_ranks: bool = False,
) -> EvaluationResult:
    """Rank every query's target against all entities and summarise (see the module docstring).

    Args:
        scorer: object with ``num_entities`` and ``score_all(h, r) -> [B, N]`` (int32 ids, higher = better).
            Its relation ids must cover ``2 · num_relations`` (head queries use ``r + R``).
        triples: ``[M, 3]`` int array of ``(head, base relation, tail)`` to evaluate (e.g. the test split).
        num_relations: number of base relations R.
        filter_index: known answers (train ∪ valid ∪ test) for the filtered setting; required unless
            ``setting="raw"``. Build once with :meth:`FilterIndex.from_triples`.
        setting: ``"filtered"`` (default, standard) or ``"raw"``.
        sides: any of ``"head"``, ``"tail"``; ``both`` is reported when both are given.
        hits_at: the k of Hits@k.
        memory_budget: bytes or a string like ``"1GiB"`` for the evaluator's working memory; the query
            chunk size is derived from it and a configuration that cannot fit is refused up front.
        query_chunk_size: fix the chunk size instead (still checked against ``memory_budget``).
        chunk_bytes: cache-friendly target size of one float32 score chunk, capping the chunk size chosen
            from the budget; ``"auto"`` = 16 MiB on CPU-only hosts and no cap when a GPU/TPU is visible,
            ``None`` = no cap.
        bytes_per_score: the scorer's own memory per (query, entity) score, output included; defaults to
            ``scorer.score_all_bytes_per_score`` or ``DEFAULT_BYTES_PER_SCORE`` (32).
        jit_compile: XLA-compile the chunk step; ``None`` uses XLA for jobs of at least ``XLA_MIN_SCORES``
            scores (graph mode below: compiling would cost more than it saves) and falls back to graph mode if the
            scorer cannot be compiled.
        split: name of the evaluated split, recorded in the protocol.
        checkpoint: model checkpoint path, recorded in the protocol.
        relation_names: optional names for the per-relation breakdown.
        return_ranks: keep per-query ranks in ``result.ranks`` (not serialised).

    Returns:
        :class:`EvaluationResult` whose headline is MRR / MR / Hits@k of ``both`` with pessimistic ties.

    Raises:
        MemoryBudgetError: the configuration cannot fit ``memory_budget`` (nothing has been scored).
        ValueError: inconsistent ids, sides, setting or filter index.
    """
    t_start = time.perf_counter()
    if setting not in ("filtered", "raw"):
        raise ValueError(f"setting must be 'filtered' or 'raw'; got {setting!r}")
    sides = tuple(sides)
    if not sides or len(set(sides)) != len(sides) or any(s not in _SIDE_CODE for s in sides):
        raise ValueError(f"sides must be a non-empty subset of ('head', 'tail'); got {sides!r}")
    hits = tuple(sorted({int(k) for k in hits_at}))
    if any(k < 1 for k in hits):
        raise ValueError(f"hits_at values must be ≥ 1; got {hits_at!r}")
    n_ent = int(scorer.num_entities)
    if n_ent <= 0:
        raise ValueError(f"scorer.num_entities must be positive; got {n_ent}")
    scorer_rels = getattr(scorer, "num_relations", None)
    needed = relation_ids(num_relations) if "head" in sides else num_relations
    if isinstance(scorer_rels, (int, np.integer)) and scorer_rels < needed:
        raise ValueError(
            f"scorer has {scorer_rels} relation ids but head queries need the reciprocal ids r + R: build the "
            f"model with num_relations=relation_ids({num_relations})={relation_ids(num_relations)}"
        )
    if relation_names is not None and len(relation_names) != num_relations:
        raise ValueError(f"relation_names has {len(relation_names)} names for {num_relations} relations")
    trip = validate_triples(triples, num_relations, n_ent, what="evaluation triples")
    filtered = setting == "filtered"
    if filtered:
        if filter_index is None:
            raise ValueError(
                "the filtered setting needs filter_index=FilterIndex.from_triples([train, valid, test], R); "
                "pass setting='raw' for raw ranks"
            )
        if filter_index.num_relations != num_relations:
            raise ValueError(
                f"filter_index was built for {filter_index.num_relations} relations, not {num_relations}"
            )
        if filter_index.num_entities > n_ent:
            raise ValueError(
                f"filter_index knows {filter_index.num_entities} entities but the scorer only {n_ent}"
            )

    q = build_queries(trip, num_relations, sides)
    nq = len(q["head"])
    if filtered:
        starts, counts = filter_index.spans(q["head"], q["relation"])
    else:
        starts = counts = np.zeros(nq, np.int64)
    bps = float(bytes_per_score if bytes_per_score is not None
                else getattr(scorer, "score_all_bytes_per_score", DEFAULT_BYTES_PER_SCORE))
    if chunk_bytes == "auto":
        accel = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
        chunk_bytes = None if accel else DEFAULT_CPU_CHUNK_BYTES
    plan = plan_memory(n_ent, counts, memory_budget=memory_budget, query_chunk_size=query_chunk_size,
                       bytes_per_score=bps, chunk_bytes=chunk_bytes)

    opt = np.zeros(nq, np.int64)
    pess = np.zeros(nq, np.int64)
    jit_used: bool | None = None
    fallback: str | None = None
    if nq:
        # Eager call on one query: builds lazily-created Keras weights outside tf.function and checks shape.
        probe = scorer.score_all(tf.constant(q["head"][:1], tf.int32), tf.constant(q["relation"][:1], tf.int32))
        if tuple(probe.shape) != (1, n_ent):
            raise ValueError(f"scorer.score_all returned shape {tuple(probe.shape)} for one query, expected "
                             f"(1, {n_ent}) (num_entities)")
        chunk, cap = plan.query_chunk_size, plan.pair_capacity
        # XLA by default: it fuses the scorer's element-wise work with the counting reductions. Measured at
        # N = 123,182, B = 32 (CPU-seconds per 10k queries): TransE 5.9 vs 41.8 in graph mode, RotH 14 vs 60.
        # Compiling costs ~10–15 s on 2 CPU cores, more than a small evaluation takes in graph mode
        # (kinship valid: 4.5 s first call in graph mode vs 15 s with XLA), so small jobs skip it.
        jit_used = bool(jit_compile) if jit_compile is not None else nq * n_ent >= XLA_MIN_SCORES
        step = _kernel(scorer, jit_used, filtered)
        prow = np.zeros(cap, np.int32)
        pent = np.zeros(cap, np.int32)
        pvalid = np.zeros(cap, bool)
        for lo in range(0, nq, chunk):
            hi = min(lo + chunk, nq)
            # Pad the last chunk to the full size: one shape, one trace / XLA compilation.
            idx = np.arange(lo, lo + chunk).clip(max=hi - 1)
            args = [tf.constant(q[k][idx], tf.int32) for k in ("head", "relation", "target")]
            if filtered:
                rows, ents = filter_index.expand(starts[lo:hi], counts[lo:hi])
                m = len(rows)
                prow[:m], pent[:m], pvalid[:m] = rows, ents, True
                prow[m:], pent[m:], pvalid[m:] = 0, 0, False
            args += [tf.constant(prow), tf.constant(pent), tf.constant(pvalid)]
            try:
                o, p = step(*args)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError) as e:
                if not (jit_compile is None and jit_used and lo == 0):
                    raise
                fallback = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                log.warning("XLA compilation of the scorer failed (%s); evaluating in graph mode", fallback)
                jit_used = False
                step = _kernel(scorer, False, filtered)
                o, p = step(*args)
            opt[lo:hi] = o.numpy()[: hi - lo]
            pess[lo:hi] = p.numpy()[: hi - lo]

    ranks = {"optimistic": opt, "pessimistic": pess, "realistic": (opt + pess) / 2.0}
    metrics, num_queries, per_relation = _aggregate(ranks, q["side"], q["base_relation"], sides, hits,
                                                    num_relations, relation_names)
    seconds = time.perf_counter() - t_start
    from hale_tf import __version__ as lib_version

    protocol: dict[str, Any] = {
        "task": "link prediction: rank the target among all entities",
        "reference": "standard protocol of METHOD.md §4, used unchanged",
        "setting": setting,
        "filter_splits": list(filter_index.sources) if filtered else [],
        "filter_num_pairs": filter_index.num_pairs if filtered else 0,
        "filter_rule": ("known answers of the query from the filter splits are removed, except the target"
                        if filtered else "none (raw)"),
        "headline_tie_rule": "pessimistic",
        "headline_side": "both" if len(sides) == 2 else sides[0],
        "tie_rules": {
            "pessimistic": "1 + #{e != target, not filtered: s(e) >= s(target)}",
            "optimistic": "1 + #{e != target, not filtered: s(e) > s(target)}",
            "realistic": "(optimistic + pessimistic) / 2",
        },
        "sides": list(sides),
        "head_queries": "asked as tail queries (t, r + R, ?) with the reciprocal relation",
        "both": "mean over all queries of both directions",
        "nan_scores": "treated as -inf",
        "hits_at": list(hits),
        "split": split,
        "num_triples": int(len(trip)),
        "num_queries": int(nq),
        "num_entities": n_ent,
        "num_relations": int(num_relations),
        "model": _model_info(scorer),
        "checkpoint": os.fspath(checkpoint) if checkpoint is not None else None,
        "seconds": seconds,
        "queries_per_second": nq / seconds if seconds > 0 else None,
        "execution": {
            "jit_compile": jit_used,
            "jit_fallback": fallback,
            "chunk_bytes": chunk_bytes,
            "memory_budget_bytes": plan.budget_bytes,
            **{k: v for k, v in plan.to_dict().items() if k not in ("budget_bytes", "num_entities",
                                                                     "num_queries")},
        },
        "library": {"hale_tf": lib_version, "tensorflow": tf.__version__, "numpy": np.__version__},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    result_ranks = None
    if return_ranks:
        result_ranks = {**ranks, "side": q["side"], "relation": q["base_relation"], "triple": q["triple"],
                        "target": q["target"]}
    return EvaluationResult(metrics=metrics, num_queries=num_queries, per_relation=per_relation,
                            protocol=protocol, ranks=result_ranks)
