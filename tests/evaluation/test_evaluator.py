"""The evaluator against a brute-force NumPy reference, plus protocol, memory and JSON checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hale_tf import models
from hale_tf.evaluation import (
    TIE_RULES,
    EvaluationResult,
    FilterIndex,
    MemoryBudgetError,
    compute_metrics,
    evaluate,
    parse_memory,
    plan_memory,
)
from hale_tf.reciprocal import relation_ids

from .reference import TableScorer, brute_force_ranks, known_answers, random_graph

HITS = (1, 3, 10)


def _check_against_reference(result: EvaluationResult, ref: dict[str, np.ndarray]) -> None:
    assert result.ranks is not None
    np.testing.assert_array_equal(result.ranks["side"], ref["side"])
    np.testing.assert_array_equal(result.ranks["relation"], ref["relation"])
    for tie in TIE_RULES:
        np.testing.assert_array_equal(result.ranks[tie], ref[tie], err_msg=tie)
    groups = {"head": ref["side"] == 0, "tail": ref["side"] == 1, "both": np.ones(len(ref["side"]), bool)}
    for side in result.metrics:
        for tie in TIE_RULES:
            expected = compute_metrics(ref[tie][groups[side]], HITS)
            for name, value in expected.items():
                assert result.metrics[side][tie][name] == pytest.approx(value, rel=1e-12), (side, tie, name)


# ------------------------------------------------------------------------------ correctness vs brute force
@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("seed, n, r, chunk", [(0, 23, 3, 7), (1, 17, 2, 5), (2, 31, 1, None)])
def test_filtered_ranks_match_brute_force(seed: int, n: int, r: int, chunk: int | None, jit: bool) -> None:
    rng = np.random.default_rng(seed)
    table, splits, test = random_graph(rng, n, r)
    index = FilterIndex.from_triples(splits, r, num_entities=n, names=["train", "valid", "test"])
    result = evaluate(TableScorer(table), test, num_relations=r, filter_index=index, query_chunk_size=chunk,
                      jit_compile=jit, return_ranks=True, hits_at=HITS)
    # Chunk sizes were chosen not to divide the entity or query counts.
    assert chunk is None or (n % chunk and len(test) * 2 % chunk)
    ref = brute_force_ranks(table, test, r, known_answers(splits, r))
    _check_against_reference(result, ref)
    # The generator really produced the hard cases this test is about.
    assert np.any(ref["optimistic"] != ref["pessimistic"]), "no ties with the target"
    assert max(len(v) for v in known_answers(splits, r).values()) >= n // 2, "no query with many answers"
    assert result.protocol["execution"]["jit_compile"] is jit


def test_raw_setting_matches_brute_force_and_is_never_better() -> None:
    rng = np.random.default_rng(5)
    table, splits, test = random_graph(rng, 19, 2)
    index = FilterIndex.from_triples(splits, 2)
    scorer = TableScorer(table)
    raw = evaluate(scorer, test, num_relations=2, setting="raw", jit_compile=False, return_ranks=True,
                   query_chunk_size=4)
    filt = evaluate(scorer, test, num_relations=2, filter_index=index, jit_compile=False, return_ranks=True,
                    query_chunk_size=4)
    _check_against_reference(raw, brute_force_ranks(table, test, 2, None))
    assert raw.protocol["setting"] == "raw" and raw.protocol["filter_splits"] == []
    for tie in TIE_RULES:
        assert np.all(raw.ranks[tie] >= filt.ranks[tie])
    assert np.any(raw.ranks["pessimistic"] > filt.ranks["pessimistic"])
    assert raw.mrr <= filt.mrr


def test_target_is_never_filtered_and_constant_scores_give_the_tie_extremes() -> None:
    # All scores equal; the query (0, 0, ?) has answers {1, 2, 3} and the target 1 is one of them.
    n = 10
    table = np.zeros((n, 2, n), np.float32)
    splits = [np.array([[0, 0, 1], [0, 0, 2], [0, 0, 3]])]
    index = FilterIndex.from_triples(splits, 1, num_entities=n)
    res = evaluate(TableScorer(table), np.array([[0, 0, 1]]), num_relations=1, filter_index=index,
                   sides=("tail",), jit_compile=False, return_ranks=True)
    # Candidates: all but the target and the 2 other known answers = 7 tied entities.
    assert res.ranks["optimistic"].tolist() == [1]
    assert res.ranks["pessimistic"].tolist() == [1 + (n - 1 - 2)]
    assert res.ranks["realistic"].tolist() == [(1 + 8) / 2]
    assert res.get("mrr", tie_rule="optimistic") == 1.0
    assert res.mrr == pytest.approx(1 / 8)  # headline = pessimistic


def test_unseen_target_and_duplicates_are_ranked_once_each() -> None:
    rng = np.random.default_rng(3)
    n, r = 12, 2
    table = rng.integers(0, 3, size=(n, 2 * r, n)).astype(np.float32)
    train = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 2], [5, 1, 6]])
    test = np.array([[0, 0, 3], [0, 0, 3], [7, 1, 8]])  # 0→3 and 7→8 not in the filter at all
    index = FilterIndex.from_triples([train, train], r, num_entities=n)  # duplicate split on purpose
    res = evaluate(TableScorer(table), test, num_relations=r, filter_index=index, jit_compile=False,
                   return_ranks=True)
    _check_against_reference(res, brute_force_ranks(table, test, r, known_answers([train], r)))
    assert res.num_queries == {"head": 3, "tail": 3, "both": 6}
    # The duplicate test triple is two queries with identical ranks.
    tail = res.ranks["side"] == 1
    assert res.ranks["pessimistic"][tail][0] == res.ranks["pessimistic"][tail][1]


def test_float64_scores() -> None:
    rng = np.random.default_rng(8)
    table, splits, test = random_graph(rng, 15, 2)

    class Float64Scorer(TableScorer):
        def score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
            # 1e-9 steps tie in float32 but not in float64: the ranking must use the scorer's precision.
            return tf.cast(super().score_all(h, r), tf.float64) + 1e-9 * tf.cast(tf.range(15), tf.float64)

    exact = table.astype(np.float64) + 1e-9 * np.arange(15)
    res = evaluate(Float64Scorer(table), test, num_relations=2, filter_index=FilterIndex.from_triples(splits, 2),
                   jit_compile=False, return_ranks=True)
    _check_against_reference(res, brute_force_ranks(exact, test, 2, known_answers(splits, 2)))
    assert np.array_equal(res.ranks["optimistic"], res.ranks["pessimistic"])  # no ties left


def test_nan_scores_rank_last() -> None:
    n = 6
    table = np.ones((n, 2, n), np.float32)
    table[0, 0, 2] = np.nan  # target of the first query is NaN
    table[1, 0, 4] = np.nan  # a competitor of the second query is NaN
    test = np.array([[0, 0, 2], [1, 0, 3]])
    res = evaluate(TableScorer(table), test, num_relations=1, setting="raw", sides=("tail",),
                   jit_compile=False, return_ranks=True)
    _check_against_reference(res, brute_force_ranks(table, test, 1, None, sides=("tail",)))
    assert res.ranks["optimistic"][0] == n  # NaN target: everything else is better
    assert res.ranks["pessimistic"][1] == n - 1  # NaN competitor no longer ties with the target


# ------------------------------------------------------------------------------------ aggregation
def test_per_relation_and_sides_average_back_to_the_totals() -> None:
    rng = np.random.default_rng(11)
    table, splits, test = random_graph(rng, 29, 4)
    index = FilterIndex.from_triples(splits, 4)
    res = evaluate(TableScorer(table), test, num_relations=4, filter_index=index, query_chunk_size=6,
                   jit_compile=False)
    assert len(res.per_relation) > 1
    for side in ("head", "tail", "both"):
        counts = {rel: e["num_queries"][side] for rel, e in res.per_relation.items()}
        assert sum(counts.values()) == res.num_queries[side]
        for tie in TIE_RULES:
            for name, total in res.metrics[side][tie].items():
                weighted = sum(counts[rel] * e["metrics"][side][tie][name] for rel, e in res.per_relation.items())
                assert weighted / res.num_queries[side] == pytest.approx(total, rel=1e-12)
    # both = mean over all queries of both directions (equal counts here, so the mean of head and tail)
    for name, value in res.metrics["both"]["pessimistic"].items():
        h, t = res.metrics["head"]["pessimistic"][name], res.metrics["tail"]["pessimistic"][name]
        assert value == pytest.approx((res.num_queries["head"] * h + res.num_queries["tail"] * t)
                                      / res.num_queries["both"])


def test_single_side_and_custom_hits() -> None:
    rng = np.random.default_rng(2)
    table, splits, test = random_graph(rng, 13, 2)
    res = evaluate(TableScorer(table), test, num_relations=2, filter_index=FilterIndex.from_triples(splits, 2),
                   sides=("head",), hits_at=(5, 2), jit_compile=False, return_ranks=True)
    assert set(res.metrics) == {"head"} and res.headline_side == "head"
    assert set(res.metrics["head"]["pessimistic"]) == {"mrr", "mr", "hits@2", "hits@5"}
    ref = brute_force_ranks(table, test, 2, known_answers(splits, 2), sides=("head",))
    np.testing.assert_array_equal(res.ranks["pessimistic"], ref["pessimistic"])
    assert res.hits(5) == pytest.approx(np.mean(ref["pessimistic"] <= 5))


# ------------------------------------------------------------------------------------ property test
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    n=st.integers(2, 14),
    r=st.integers(1, 3),
    levels=st.integers(1, 4),
    chunk=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    raw=st.booleans(),
)
def test_property_matches_brute_force(n: int, r: int, levels: int, chunk: int, seed: int, raw: bool) -> None:
    rng = np.random.default_rng(seed)
    table, splits, test = random_graph(rng, n, r, levels=levels)
    index = None if raw else FilterIndex.from_triples(splits, r, num_entities=n)
    res = evaluate(TableScorer(table), test, num_relations=r, filter_index=index,
                   setting="raw" if raw else "filtered", query_chunk_size=chunk, jit_compile=False,
                   return_ranks=True)
    _check_against_reference(res, brute_force_ranks(table, test, r, None if raw else known_answers(splits, r)))
    for tie in TIE_RULES:
        assert np.all((res.ranks[tie] >= 1) & (res.ranks[tie] <= n))
    assert np.all(res.ranks["optimistic"] <= res.ranks["pessimistic"])


# ------------------------------------------------------------------------------------ memory
def test_memory_budget_sizes_chunks_and_refuses_what_cannot_fit() -> None:
    counts = np.full(1000, 3)
    plan = plan_memory(100_000, counts, memory_budget="64MiB", bytes_per_score=24)
    assert 1 <= plan.query_chunk_size < 1000
    assert plan.estimated_peak_bytes <= plan.budget_bytes == 64 * 2**20
    bigger = plan_memory(100_000, counts, memory_budget="256MiB", bytes_per_score=24)
    assert bigger.query_chunk_size > plan.query_chunk_size
    with pytest.raises(MemoryBudgetError, match="memory_budget"):
        plan_memory(100_000, counts, memory_budget="1MiB")
    with pytest.raises(MemoryBudgetError, match="query_chunk_size"):
        plan_memory(100_000, counts, memory_budget="64MiB", query_chunk_size=1000)


def test_evaluate_refuses_before_scoring() -> None:
    class Exploding(TableScorer):
        def score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
            raise AssertionError("scored although the memory check should have refused")

    rng = np.random.default_rng(0)
    table, splits, test = random_graph(rng, 10, 1)
    with pytest.raises(MemoryBudgetError, match="memory_budget"):
        evaluate(Exploding(table), test, num_relations=1, setting="raw", memory_budget=200)
    with pytest.raises(MemoryBudgetError, match="query_chunk_size"):
        evaluate(Exploding(table), test, num_relations=1, setting="raw", memory_budget="4KiB",
                 query_chunk_size=20)


def test_heavy_filter_chunks_shrink_the_chunk() -> None:
    counts = np.zeros(64, np.int64)
    counts[:8] = 20_000  # a few queries with very many known answers
    light = plan_memory(1000, np.zeros(64, np.int64), memory_budget="2MiB")
    heavy = plan_memory(1000, counts, memory_budget="2MiB")
    assert heavy.query_chunk_size < light.query_chunk_size
    assert heavy.estimated_peak_bytes <= heavy.budget_bytes


@pytest.mark.parametrize("text, value", [("1GiB", 2**30), ("512 MB", 512 * 10**6), ("2g", 2 * 10**9),
                                         (12345, 12345), ("1.5KiB", 1536)])
def test_parse_memory(text: str | int, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("bad", ["lots", "-1GiB", 0, "1 parsec"])
def test_parse_memory_rejects(bad: str | int) -> None:
    with pytest.raises(ValueError):
        parse_memory(bad)


# ------------------------------------------------------------------------------------ protocol / JSON
def test_json_states_the_protocol(tmp_path) -> None:
    rng = np.random.default_rng(7)
    table, splits, test = random_graph(rng, 11, 2)
    index = FilterIndex.from_triples({"train": splits[0], "valid": splits[1], "test": splits[2]}, 2)
    res = evaluate(TableScorer(table, name="tabular"), test, num_relations=2, filter_index=index,
                   jit_compile=False, split="test", checkpoint="/ckpt/model-100",
                   relation_names=["likes", "knows"])
    path = res.to_json(tmp_path / "out" / "metrics.json")
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
    d = json.loads(path.read_text())
    p = d["protocol"]
    assert p["setting"] == "filtered" and p["filter_splits"] == ["train", "valid", "test"]
    assert p["headline_tie_rule"] == "pessimistic" and p["headline_side"] == "both"
    assert p["sides"] == ["head", "tail"] and p["num_queries"] == 2 * len(test)
    assert p["num_entities"] == 11 and p["num_relations"] == 2 and p["split"] == "test"
    assert p["model"]["name"] == "tabular" and p["model"]["config"]["num_entities"] == 11
    assert p["checkpoint"] == "/ckpt/model-100" and p["seconds"] > 0
    assert set(p["tie_rules"]) == set(TIE_RULES)
    assert p["execution"]["estimated_peak_bytes"] <= p["execution"]["memory_budget_bytes"]
    assert d["headline"] == d["metrics"]["both"]["pessimistic"]
    assert set(d["metrics"]) == {"head", "tail", "both"}
    names = {e["name"] for e in d["per_relation"].values()}
    assert names <= {"likes", "knows"}
    back = EvaluationResult.from_json(path)
    assert back.mrr == pytest.approx(res.mrr) and back.per_relation.keys() == res.per_relation.keys()
    assert "MRR" in res.summary() and "filtered pessimistic both" in res.summary()


def test_empty_split_gives_nan_metrics_and_valid_json(tmp_path) -> None:
    table = np.zeros((4, 2, 4), np.float32)
    res = evaluate(TableScorer(table), np.zeros((0, 3), np.int64), num_relations=1, setting="raw")
    assert res.num_queries["both"] == 0 and math.isnan(res.mrr)
    d = json.loads(res.to_json(tmp_path / "m.json").read_text())
    assert d["headline"]["mrr"] is None


# ------------------------------------------------------------------------------------ errors / fallback
def test_input_errors_are_explained() -> None:
    table = np.zeros((5, 2, 5), np.float32)
    scorer = TableScorer(table)
    test = np.array([[0, 0, 1]])
    with pytest.raises(ValueError, match="filter_index"):
        evaluate(scorer, test, num_relations=1)
    with pytest.raises(ValueError, match="relation ids"):
        evaluate(scorer, np.array([[0, 1, 1]]), num_relations=1, setting="raw")
    with pytest.raises(ValueError, match="entity ids"):
        evaluate(scorer, np.array([[0, 0, 5]]), num_relations=1, setting="raw")
    with pytest.raises(ValueError, match="relation_ids\\(2\\)=4"):
        evaluate(scorer, test, num_relations=2, setting="raw")  # scorer has only 2 relation ids
    with pytest.raises(ValueError, match="sides"):
        evaluate(scorer, test, num_relations=1, setting="raw", sides=("up",))
    with pytest.raises(ValueError, match="built for 3 relations"):
        evaluate(scorer, test, num_relations=1, filter_index=FilterIndex.from_triples([test], 3))


def test_small_jobs_skip_xla_by_default() -> None:
    rng = np.random.default_rng(4)
    table, splits, test = random_graph(rng, 9, 1)
    res = evaluate(TableScorer(table), test, num_relations=1, filter_index=FilterIndex.from_triples(splits, 1))
    assert res.protocol["execution"]["jit_compile"] is False
    assert res.protocol["execution"]["jit_fallback"] is None


def test_non_xla_scorer_falls_back_to_graph_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import hale_tf.evaluation.evaluator as evaluator_module

    monkeypatch.setattr(evaluator_module, "XLA_MIN_SCORES", 0)  # try XLA even on this tiny job

    class PyScorer(TableScorer):
        def score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
            out = tf.numpy_function(lambda a, b: self.table_np[a, b], [h, r], tf.float32)
            return tf.reshape(out, [-1, self.num_entities])

    rng = np.random.default_rng(4)
    table, splits, test = random_graph(rng, 9, 1)
    index = FilterIndex.from_triples(splits, 1)
    res = evaluate(PyScorer(table), test, num_relations=1, filter_index=index, return_ranks=True)
    assert res.protocol["execution"]["jit_compile"] is False
    assert "jit_fallback" in res.protocol["execution"] and res.protocol["execution"]["jit_fallback"]
    _check_against_reference(res, brute_force_ranks(table, test, 1, known_answers(splits, 1)))


# ------------------------------------------------------------------------------------ real models
@pytest.mark.parametrize("model_name", ["rotH", "transE"])
def test_real_model_matches_brute_force(model_name: str) -> None:
    n, r = 40, 3
    model = models.get(model_name, num_entities=n, num_relations=relation_ids(r), dim=8)
    rng = np.random.default_rng(9)
    for w in model.weights:  # trained-looking scale: the default 1e-3 init makes nearly all scores tie
        if "float" in str(w.dtype):
            w.assign(rng.normal(0.0, 0.5, size=w.shape).astype(str(w.dtype)))
    table = np.stack(
        [model.score_all(tf.range(n, dtype=tf.int32), tf.fill([n], rel)).numpy() for rel in range(2 * r)], axis=1
    )
    _, splits, test = random_graph(rng, n, r)
    index = FilterIndex.from_triples(splits, r, num_entities=n)
    ref = brute_force_ranks(table, test, r, known_answers(splits, r))
    for jit in (False, True):
        res = evaluate(model, test, num_relations=r, filter_index=index, query_chunk_size=6, jit_compile=jit,
                       return_ranks=True)
        _check_against_reference(res, ref)
        assert res.protocol["model"]["config"]["num_entities"] == n
        assert res.protocol["execution"]["jit_compile"] is jit


def test_cached_kernel_sees_updated_weights() -> None:
    """Early stopping evaluates the same model object repeatedly while it trains."""
    n, r = 30, 2
    model = models.get("transE", num_entities=n, num_relations=relation_ids(r), dim=4)
    rng = np.random.default_rng(1)
    _, splits, test = random_graph(rng, n, r)
    index = FilterIndex.from_triples(splits, r, num_entities=n)
    for _ in range(2):
        for w in model.weights:
            if "float" in str(w.dtype):
                w.assign(rng.normal(0.0, 0.5, size=w.shape).astype(str(w.dtype)))
        table = np.stack([model.score_all(tf.range(n, dtype=tf.int32), tf.fill([n], rel)).numpy()
                          for rel in range(2 * r)], axis=1)
        res = evaluate(model, test, num_relations=r, filter_index=index, query_chunk_size=8, jit_compile=True,
                       return_ranks=True)
        _check_against_reference(res, brute_force_ranks(table, test, r, known_answers(splits, r)))
