"""The synthetic generator: exact sizes, split invariants, planted structure, determinism, speed."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from hale_tf.data import (
    HaleDataError,
    check_counts,
    dataset_counts,
    generate_synthetic,
    get_info,
    read_triples,
    resolve_dataset,
    synthetic_graph,
    synthetic_info,
)
from hale_tf.data.synthetic import PRESETS, SyntheticGraph, SyntheticParams


@pytest.fixture(scope="module")
def graph() -> SyntheticGraph:
    return synthetic_graph()  # the default size: 2000 entities, 12 relations, 20000/1000/1000


def _keys(graph: SyntheticGraph, triples: np.ndarray) -> np.ndarray:
    n, r = len(graph.entity_names), len(graph.relation_names)
    return (triples[:, 0] * r + triples[:, 1]) * n + triples[:, 2]


def _assert_invariants(g: SyntheticGraph, p: dict) -> None:
    assert (len(g.train), len(g.valid), len(g.test)) == (p["num_train"], p["num_valid"], p["num_test"])
    assert len(g.entity_names) == p["num_entities"] and len(set(g.entity_names)) == p["num_entities"]
    assert len(g.relation_names) == p["num_relations"] and len(set(g.relation_names)) == p["num_relations"]
    # Every entity and relation occurs in train, so valid/test use only seen ids.
    assert len(np.unique(g.train[:, [0, 2]])) == p["num_entities"]
    assert len(np.unique(g.train[:, 1])) == p["num_relations"]
    keys = [_keys(g, g.split(s)) for s in ("train", "valid", "test")]
    everything = np.concatenate(keys)
    assert len(np.unique(everything)) == len(everything), "duplicate within or across splits"
    for split in (g.train, g.valid, g.test):
        assert np.all(split[:, 0] != split[:, 2]), "self-loop"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"num_relations": 1, "num_entities": 50, "num_train": 400, "num_valid": 20, "num_test": 20},
        {"num_relations": 2, "num_entities": 50, "num_train": 400, "num_valid": 20, "num_test": 20},
        {"num_relations": 4, "num_entities": 9, "num_train": 60, "num_valid": 5, "num_test": 5, "seed": 3},
        {"num_relations": 13, "num_entities": 300, "num_train": 313, "num_valid": 50, "num_test": 50},
        {**PRESETS["tiny"], "seed": 7},
    ],
    ids=["default", "R1", "R2", "tiny-dense", "minimal-train", "tiny-seed7"],
)
def test_exact_sizes_and_split_invariants(params: dict) -> None:
    g = synthetic_graph(**params)
    _assert_invariants(g, g.params)


def test_planted_patterns_hold(graph: SyntheticGraph) -> None:
    every = np.concatenate([graph.train, graph.valid, graph.test])
    present = set(_keys(graph, every).tolist())
    kinds = {group.kind for group in graph.groups}
    assert kinds == {"hierarchy", "symmetric", "inverse", "composition", "typed"}

    def partner_share(rows: np.ndarray, rel: int) -> float:
        swapped = np.stack([rows[:, 2], np.full(len(rows), rel), rows[:, 0]], axis=1)
        return float(np.mean([k in present for k in _keys(graph, swapped).tolist()]))

    for group in graph.groups:
        rows = [every[every[:, 1] == rel] for rel in group.relations]
        if group.kind == "symmetric":
            assert partner_share(rows[0], group.relations[0]) > 0.85
        elif group.kind == "inverse":
            assert partner_share(rows[0], group.relations[1]) > 0.85
            assert partner_share(rows[1], group.relations[0]) > 0.85
        elif group.kind == "hierarchy":
            up = rows[0]
            assert len(np.unique(up[:, 0])) == len(up), "a child has two parents"
            parent = dict(zip(up[:, 0].tolist(), up[:, 2].tolist(), strict=True))
            for child in list(parent)[:300]:  # following parents must reach a root: no cycles
                seen = set()
                while child in parent:
                    assert child not in seen
                    seen.add(child)
                    child = parent[child]
            if len(rows) > 1:
                assert partner_share(rows[1], group.relations[0]) > 0.85
        elif group.kind == "composition":
            ab = dict(zip(rows[0][:, 0].tolist(), rows[0][:, 2].tolist(), strict=True))
            bc = dict(zip(rows[1][:, 0].tolist(), rows[1][:, 2].tolist(), strict=True))
            holds = [a in ab and bc.get(ab[a]) == c for a, _, c in rows[2].tolist()]
            assert np.mean(holds) > 0.7
        elif group.kind == "typed":
            # The tail's type is a function of the head's type.
            heads, tails = graph.cluster_of[rows[0][:, 0]], graph.cluster_of[rows[0][:, 2]]
            for cluster in np.unique(heads):
                assert len(np.unique(tails[heads == cluster])) == 1


def test_test_triples_are_learnable_from_train(graph: SyntheticGraph) -> None:
    """Most held-out triples of pattern relations have their evidence (partner or path) in train."""
    train = set(_keys(graph, graph.train).tolist())
    partner = {}
    for group in graph.groups:
        rels = group.relations
        if group.kind == "symmetric":
            partner[rels[0]] = rels[0]
        elif group.kind in ("inverse", "hierarchy") and len(rels) == 2:
            partner[rels[0]], partner[rels[1]] = rels[1], rels[0]
    rows = graph.test[np.isin(graph.test[:, 1], list(partner))]
    swapped = np.stack([rows[:, 2], [partner[r] for r in rows[:, 1].tolist()], rows[:, 0]], axis=1)
    explained = np.mean([k in train for k in _keys(graph, swapped).tolist()])
    assert len(rows) > 200 and explained > 0.75


def test_heavy_tailed_degrees(graph: SyntheticGraph) -> None:
    degree = np.bincount(graph.train[:, [0, 2]].ravel(), minlength=len(graph.entity_names))
    ordered = np.sort(degree)[::-1]
    assert ordered[: len(ordered) // 100].sum() / ordered.sum() > 0.06  # top 1% hold > 6% of the edges
    assert ordered[0] > 10 * np.median(degree)
    sizes = np.sort(np.bincount(graph.train[:, 1]))[::-1]
    assert sizes[0] > 3 * sizes[-1]  # relation frequencies are skewed too


def test_deterministic_files_and_seed_sensitivity(tmp_path: Path) -> None:
    params = dict(PRESETS["tiny"])
    a = generate_synthetic(tmp_path / "a", **params)
    b = generate_synthetic(tmp_path / "b", **params)
    c = generate_synthetic(tmp_path / "c", **params, seed=1)
    for split in ("train", "valid", "test"):
        assert a.splits[split].read_bytes() == b.splits[split].read_bytes()
    assert a.train.read_bytes() != c.train.read_bytes()
    assert a.source == "synthetic" and a.train.name == "train.txt.gz"
    meta = json.loads((tmp_path / "a" / "synthetic.json").read_text())
    assert meta["params"] == {**params, "seed": 0}
    # Files agree with the in-memory graph and with the registry-style entry.
    assert read_triples(a.valid) == synthetic_graph(**params).triples("valid")
    assert check_counts(a, synthetic_info(params)) == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"num_nodes": 5}, "unknown synthetic parameter(s) num_nodes"),
        ({"num_entities": True}, "must be an integer"),
        ({"num_entities": 2.5}, "must be an integer"),
        ({"num_entities": 100, "num_train": 50}, "num_train=50 is too small"),
        ({"num_valid": 0}, "out of range"),
        ({"preset": "huge"}, "unknown synthetic preset"),
        ({"num_entities": 5, "num_relations": 1, "num_train": 9, "num_valid": 1, "num_test": 1}, "too dense"),
    ],
)
def test_bad_parameters_are_rejected(params: dict, fragment: str) -> None:
    with pytest.raises(HaleDataError) as info:
        synthetic_info(params)
    assert fragment in str(info.value)


def test_resolve_generates_once_into_the_cache(isolated_cache: Path) -> None:
    params = {"preset": "tiny", "num_train": "2500"}  # CLI-style strings are accepted
    files = resolve_dataset("synthetic", synthetic_params=params)
    assert files.source == "synthetic"
    assert files.directory == isolated_cache / SyntheticParams.from_dict(params).dirname
    assert files.directory.name == "synthetic-v1-e200-r8-tr2500-va100-te100-s0"
    assert dataset_counts(files).num_train == 2500
    stamp = files.train.stat().st_mtime_ns
    again = resolve_dataset("Synthetic", synthetic_params=params)
    assert again.train == files.train and again.train.stat().st_mtime_ns == stamp  # re-used, not rewritten
    assert sorted(p.name for p in isolated_cache.iterdir()) == [files.directory.name]  # no temp folders left
    other = resolve_dataset("synthetic", synthetic_params={**params, "seed": 1})
    assert other.directory != files.directory


def test_yago_sized_graph_is_fast(tmp_path: Path) -> None:
    params = PRESETS["yago3-10"]
    start = time.process_time()
    files = generate_synthetic(tmp_path / "yago", **params)
    elapsed = time.process_time() - start
    # About 2 s of CPU on one core; the bound leaves room for slow shared machines.
    assert elapsed < 20, f"YAGO-sized generation took {elapsed:.1f} s of CPU"
    with gzip.open(files.train, "rb") as fh:
        assert fh.read().count(b"\n") == params["num_train"]
    valid, test = read_triples(files.valid), read_triples(files.test)
    assert (len(valid), len(test)) == (params["num_valid"], params["num_test"])
    assert not set(valid) & set(test)
    assert len({h for h, _, _ in valid} | {t for _, _, t in valid}) > 5000


# SHA-256 of the uncompressed files that the generator wrote before the refactor into SyntheticParams +
# synthetic_generator (computed on main at 8e702ce): the graph for given parameters must never change
# without a GENERATOR_VERSION bump, since cached copies are found by parameters alone.
_GOLDEN = {
    "tiny": (
        {**PRESETS["tiny"]},
        {
            "train.txt.gz": "4b9a9ef28af8c3909f7fb8a377dce3cdabe484b6d1a0a9e20cbe07567fbe95bc",
            "valid.txt.gz": "7df47cff0b1f843012dddb528c8c5c1f92bee21f66d9bd98b2453e60bca783e6",
            "test.txt.gz": "0e7ba01baa8cc5b705eb76fe89034d00c21503a23344b9388e12cc8c078b2a3f",
            "synthetic.json": "232cd5f8f5434ef77a6faae6b462810d9d98b41e5f472234e8c9a74aa00fccee",
        },
    ),
    "tiny-dense": (
        {"num_relations": 4, "num_entities": 9, "num_train": 60, "num_valid": 5, "num_test": 5, "seed": 3},
        {
            "train.txt.gz": "84b93fefcf61145aa924a1084b59ec78b5d646196f5d7b07988d16d8f792558c",
            "valid.txt.gz": "1a96631abbb81db6407c33e57627dc48896d1b72c06d1d2adef33c73f05b18e9",
            "test.txt.gz": "c19519e32b13417ed4e2db40a24d8f0cd9b86c9736f571441c7ff956dc9b196f",
            "synthetic.json": "16eacd4d3900d85dd78983bce4532db5fd5f3661b75ca81f955f27511e610fbd",
        },
    ),
}


@pytest.mark.parametrize("case", sorted(_GOLDEN))
def test_generated_files_match_the_recorded_checksums(tmp_path: Path, case: str) -> None:
    params, expected = _GOLDEN[case]
    files = generate_synthetic(tmp_path / case, **params)
    found = {}
    for path in sorted(files.directory.iterdir()):
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        found[path.name] = hashlib.sha256(content).hexdigest()  # uncompressed: independent of the zlib build
    assert found == expected


def test_params_are_declared_once() -> None:
    # The dataclass is the single source: the generator, the registry entry and the cache name all follow it.
    defaults = SyntheticParams()
    assert synthetic_graph().params == defaults.as_dict() == {
        "num_entities": 2000,
        "num_relations": 12,
        "num_train": 20000,
        "num_valid": 1000,
        "num_test": 1000,
        "seed": 0,
    }
    assert get_info("synthetic") == synthetic_info() == defaults.info()
    assert PRESETS["small"] == {k: v for k, v in defaults.as_dict().items() if k != "seed"}
    assert defaults.dirname == "synthetic-v1-e2000-r12-tr20000-va1000-te1000-s0"
    # Presets, CLI strings and NumPy integers normalise to the same parameters; an instance passes through.
    same = SyntheticParams.from_dict({"preset": "tiny", "num_train": "2000", "seed": np.int64(0)})
    assert same == SyntheticParams.from_dict({"preset": "tiny"}) == SyntheticParams(**PRESETS["tiny"])
    assert type(same.seed) is int and SyntheticParams.from_dict(same) is same
    assert synthetic_graph(same, seed=1).params["seed"] == 1  # keyword overrides on top of an instance
    with pytest.raises(HaleDataError, match="num_valid >= 1"):
        SyntheticParams(num_valid=0)  # constructing directly validates too
