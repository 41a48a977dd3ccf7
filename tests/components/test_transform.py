"""Transform alone: vocabularies, id triples, query round trip, filters, statistics, policies, caching."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from components.base import Artifact, ComponentError, resolve_params, run_component
from components.example_gen import EXAMPLE_GEN
from components.transform import TRANSFORM, TRANSFORM_SPEC, run_transform
from components.transform.errors import _error_from_pipeline
from components.transform.queries import _emit_shard_parts
from components.transform.read import _plan_chunks, _read_chunk
from hale_tf.data import DataFormatError, load_id_splits, read_triples, resolve_dataset
from hale_tf.data.queries import group_queries
from hale_tf.data.records import load_query_set
from hale_tf.evaluation import FilterIndex
from tests.components.conftest import TINY_TRAIN, TINY_VALID, write_dataset, write_split

SPLITS = ("train", "valid", "test")


def _examples(root: Path, raw: Path) -> Artifact:
    return run_component(EXAMPLE_GEN, root, params={"dataset": "tiny", "data_dir": str(raw)})


def _transform(root: Path, examples: Artifact, **params) -> Artifact:
    return run_component(TRANSFORM, root, {"examples": examples}, params=params)


def _vocab(art: Artifact, name: str) -> list[str]:
    return art.path("vocab", name).read_text(encoding="utf-8").splitlines()


def _expected_queries(triples, ent: dict[str, int], rel: dict[str, int]) -> dict[tuple[int, int], list[int]]:
    """The reference: a plain Python group-by of the training triples, both directions."""
    groups: dict[tuple[int, int], set[int]] = defaultdict(set)
    num_rel = len(rel)
    for h, r, t in triples:
        groups[(ent[h], rel[r])].add(ent[t])
        groups[(ent[t], rel[r] + num_rel)].add(ent[h])
    return {k: sorted(v) for k, v in groups.items()}


def _loaded_queries(art: Artifact) -> dict[tuple[int, int], list[int]]:
    qs = load_query_set(str(art.path("queries", "train-*.tfrecord")))
    out = {}
    for i, (h, r) in enumerate(zip(qs.heads, qs.relations, strict=True)):
        key = (int(h), int(r))
        assert key not in out, f"query {key} appears twice"
        out[key] = qs.answers[qs.offsets[i] : qs.offsets[i + 1]].tolist()
    return out


def _digest(art: Artifact) -> str:
    digest = hashlib.sha256()
    for sub in ("vocab", "queries", "triples"):
        for path in sorted(art.path(sub).rglob("*")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


# SHA-256 of every output file (but filters/, hale_tf.evaluation's format) for the tiny graph, computed with
# the single-module Transform before it became a package and before the query builder moved to
# hale_tf.data.queries: the files are part of the artifacts' contract (fingerprints, trained models).
PINNED_DROP = {  # num_shards=3, queries_per_example=2, seed 0 (the ``tiny`` fixture)
    "queries/train-00000-of-00003.tfrecord": "00b260784cb347fc749795a237dfeab056da2f776e9676b21561d5292ff44fb7",
    "queries/train-00001-of-00003.tfrecord": "44e58e1819e452aebac9973f6f14c264ae3d0fbb8ba29164f379e7ca58eb7c6d",
    "queries/train-00002-of-00003.tfrecord": "079225c71e077dedd06d72a1c2bb1a879faa93c82b2fb7ee7969a60e23943781",
    "stats.json": "fa50f451f803cb8cb8d18789cfaff0719c0ede54180da00c7cef6dd8b206ca41",
    "triples/test.npy": "a018a853d0b419d1ee8c45581ed28d63c0966fb6b58918dfba90328074c1c903",
    "triples/train.npy": "1c1dd102a0ff596cb6a62f98789ebf216fc92f981be7dcd3f51938d22cedb713",
    "triples/valid.npy": "47c857766ed8a01d1d006120d32e4662590ba85aee4f4c42ae0253bdfa54fcfa",
    "vocab/entities.tsv": "c6b39a37aa42bdd454f15806269ca1d0d417cd4823ec7a3db809908d6214f4dc",
    "vocab/relations.tsv": "9268ad18d115c079d79b80b7f55cbac07692b2cdc4ad4cb550cb15429e90b5c5",
}
PINNED_KEEP = {  # unseen_policy="keep", default parameters (8 shards, 512 queries per example, seed 0)
    "queries/train-00000-of-00008.tfrecord": "22884ab2abe9106996a8486c041809a3b38f04ded0cf510ff16c5d7395db8ea3",
    "queries/train-00001-of-00008.tfrecord": "eacfc0fb2666be546c7345d73972b127634b44e9d10545249b5c8a4f1f8233a9",
    "queries/train-00002-of-00008.tfrecord": "c9b64cd0984043bbd2d2e3920fc1f5c19d2c50bc4e5e4dceefa5da11235c8ac6",
    "queries/train-00003-of-00008.tfrecord": "89e1b3903f4c97d57eb0bcfb4b6b3e0ac690fc2e475a0208a652269b27653749",
    "queries/train-00004-of-00008.tfrecord": "a1176cbddb324839d198de237e0807e601383e5caa6ad7334998020e512664fc",
    "queries/train-00005-of-00008.tfrecord": "f14bb22dd4d72f10b1db3bda42b42526af8b0f3c3d662a3a2262192231d06de8",
    "queries/train-00006-of-00008.tfrecord": "d18624b4f07c1cf9163efb0d4a06f20630f5264162136963eac2bcafbee41169",
    "queries/train-00007-of-00008.tfrecord": "481fd87d7718c491630864a6c90aba404fa6ee3c8fccf9240d1de4dcb756cf6b",
    "stats.json": "4187ad78d9efb050ea73f7630259778ca099ff4df56d822c20cbeb3a20190fe1",
    "triples/test.npy": "5230bae197d5f1ddea598644abee86e265e314d4653d47216efd58dddce8202c",
    "triples/train.npy": "1c1dd102a0ff596cb6a62f98789ebf216fc92f981be7dcd3f51938d22cedb713",
    "triples/valid.npy": "8e8fe620c6709adbf7386cbe912b5fb69e4a1ef702733c98869b4c2a2d7b02fe",
    "vocab/entities.tsv": "c7936dc3ec8297296fdc9c8131cf8da0b59e8cac09e40e78f9affc1526269d6d",
    "vocab/relations.tsv": "f4fe4af61eefb86b740c172ddd6c2ffedf4f464a8c2386f78e10064ccde98e8b",
}


def _file_hashes(art: Artifact) -> dict[str, str]:
    return {
        path.relative_to(art.uri).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for sub in ("queries", "triples", "vocab", "stats.json")
        for path in sorted([art.path(sub)] if art.path(sub).is_file() else art.path(sub).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Artifact, Artifact]:
    base = tmp_path_factory.mktemp("tiny")
    raw = write_dataset(base / "raw")
    root = base / "root"
    examples = _examples(root, raw)
    return root, examples, _transform(root, examples, num_shards=3, queries_per_example=2)


def test_layout_and_vocabularies(tiny) -> None:
    _, _, art = tiny
    assert art.type == "Transformed"
    assert _vocab(art, "entities.tsv") == ["a", "b", "c", "d", "e", "f"]  # train only, sorted
    assert _vocab(art, "relations.tsv") == ["friend", "likes", "parent_of"]  # base relations only
    names = sorted(p.name for p in art.path("queries").iterdir())
    assert names == [f"train-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert (art.uri / "filters" / "filter_index.npz").is_file()


def test_output_bytes_are_pinned(tiny) -> None:
    _, _, art = tiny
    assert _file_hashes(art) == PINNED_DROP


def test_queries_round_trip_equals_python_groupby(tiny) -> None:
    _, _, art = tiny
    ent = {n: i for i, n in enumerate(_vocab(art, "entities.tsv"))}
    rel = {n: i for i, n in enumerate(_vocab(art, "relations.tsv"))}
    assert _loaded_queries(art) == _expected_queries(TINY_TRAIN, ent, rel)


def test_id_triples_and_drop_policy(tiny) -> None:
    _, examples, art = tiny
    ent = {n: i for i, n in enumerate(_vocab(art, "entities.tsv"))}
    rel = {n: i for i, n in enumerate(_vocab(art, "relations.tsv"))}
    for split in SPLITS:
        ids = np.load(art.path("triples", f"{split}.npy"))
        assert ids.dtype == np.int32 and ids.ndim == 2 and ids.shape[1] == 3
        raw = read_triples(examples.path("splits", f"{split}.tsv"))
        kept = [(ent[h], rel[r], ent[t]) for h, r, t in raw if h in ent and t in ent and r in rel]
        assert ids.tolist() == [list(t) for t in kept]  # file order, unseen rows dropped
    stats = json.loads(art.path("stats.json").read_text())
    assert stats["unseen"]["valid"]["dropped_triples"] == 1
    assert stats["unseen"]["test"]["dropped_triples"] == 1
    assert stats["unseen"]["test"]["unseen_relations"] == 1
    assert stats["unseen"]["entities_in_valid_test_unseen_in_train"] == 1
    assert stats["triples"] == {"train": 9, "valid": 2, "test": 1}


def test_statistics(tiny) -> None:
    _, _, art = tiny
    stats = json.loads(art.path("stats.json").read_text())
    assert stats["num_entities"] == 6 and stats["num_relations"] == 3 and stats["reciprocal_offset"] == 3
    q = stats["queries"]
    assert q["num_queries"] == q["num_tail_queries"] + q["num_head_queries"] == 13
    assert q["num_answers"] == 16 and stats["train_unique_triples"] == 8
    assert sum(b["count"] for b in q["answers_per_query"]["histogram"]) == 13
    cats = stats["relation_categories"]["relations"]
    assert cats["likes"]["category"] == "1-1" and cats["parent_of"]["category"] == "N-1"
    assert cats["friend"]["category"] == "1-1"
    degree = stats["entity_degree"]
    assert (
        sum(b["count"] for b in degree["histogram"]) == 6 and degree["max"] == 4
    )  # a: in 4 distinct triples


def test_filter_index_covers_all_splits(tiny) -> None:
    _, _, art = tiny
    index = FilterIndex.load(art.uri / "filters")
    ent = {n: i for i, n in enumerate(_vocab(art, "entities.tsv"))}
    rel = {n: i for i, n in enumerate(_vocab(art, "relations.tsv"))}
    assert ent["c"] in index.known_answers(ent["b"], rel["parent_of"]).tolist()  # a valid triple
    assert ent["a"] in index.known_answers(ent["b"], rel["friend"]).tolist()  # a test triple
    assert ent["a"] in index.known_answers(ent["d"], rel["parent_of"] + 3).tolist()  # reciprocal, train


def test_cache_ignores_runner_options(tiny) -> None:
    root, examples, art = tiny
    again = _transform(
        root, examples, num_shards=3, queries_per_example=2, beam_options=["--direct_num_workers=1"]
    )
    assert again.uri == art.uri  # runner options do not affect the output, so the cache holds


def test_seed_changes_order_not_content() -> None:
    rng = np.random.default_rng(0)
    ids = np.stack([rng.integers(0, 50, 400), rng.integers(0, 4, 400), rng.integers(0, 50, 400)], 1)
    item = ("train", (0, ids.astype(np.int32)))
    results = {}
    for seed in (0, 1):
        parts = dict(_emit_shard_parts(item, (50, 4), seed, 3))
        queries = [group_queries(parts.get(s, np.zeros([0, 3], np.int32)), seed) for s in range(3)]
        results[seed] = [(q.heads.tolist(), q.relations.tolist(), q.answers.tolist()) for q in queries]
        again = [group_queries(parts.get(s, np.zeros([0, 3], np.int32)), seed) for s in range(3)]
        assert all(np.array_equal(a.heads, b.heads) for a, b in zip(queries, again, strict=True))  # deterministic
    flat = {
        seed: sorted(zip(*[sum((q[i] for q in res), []) for i in (0, 1)], strict=True))
        for seed, res in results.items()
    }
    assert flat[0] == flat[1]  # the same queries ...
    assert results[0] != results[1]  # ... in other shards / another order
    assert not any(
        train_only for train_only in _emit_shard_parts(("valid", (0, ids.astype(np.int32))), (50, 4), 0, 3)
    )


def test_deterministic_across_runs_and_chunking(tmp_path: Path, tiny) -> None:
    _, examples, art = tiny
    # A fresh root (no cache) with tiny chunks: many Beam elements, same bytes.
    rerun = _transform(tmp_path, examples, num_shards=3, queries_per_example=2, chunk_bytes=16)
    assert rerun.uri != art.uri and rerun.fingerprint == art.fingerprint
    assert _digest(rerun) == _digest(art)


@pytest.mark.slow
def test_two_worker_processes_give_identical_output(tmp_path: Path, tiny) -> None:
    _, examples, art = tiny
    multi = _transform(tmp_path, examples, num_shards=3, queries_per_example=2, num_workers=2)
    assert _digest(multi) == _digest(art)


def test_bench_and_pipeline_number_train_names_alike(tmp_path: Path) -> None:
    """load_id_splits (benches) numbers all splits, Transform train alone: train names get the same ids."""
    valid = [*TINY_VALID, ("0_only_in_valid", "aa_only_in_valid", "a")]  # sort before every train name
    raw = write_dataset(tmp_path / "raw", valid=valid)
    run_transform(_split_paths(raw), tmp_path / "out", resolve_params(TRANSFORM_SPEC, {}))
    entities = (tmp_path / "out" / "vocab" / "entities.tsv").read_text(encoding="utf-8").splitlines()
    relations = (tmp_path / "out" / "vocab" / "relations.tsv").read_text(encoding="utf-8").splitlines()
    bench = load_id_splits(resolve_dataset("tiny", data_dir=raw))
    assert bench.entities[: len(entities)] == entities == ["a", "b", "c", "d", "e", "f"]
    assert bench.relations[: len(relations)] == relations == ["friend", "likes", "parent_of"]
    assert bench.entities[len(entities) :] == ["0_only_in_valid", "x"]  # appended after train's, sorted
    assert bench.relations[len(relations) :] == ["aa_only_in_valid", "unknown_rel"]
    np.testing.assert_array_equal(bench.triples["train"], np.load(tmp_path / "out" / "triples" / "train.npy"))


def test_keep_policy_extends_vocabularies(tmp_path: Path, tiny) -> None:
    _, examples, _ = tiny
    art = _transform(tmp_path, examples, unseen_policy="keep")
    assert _file_hashes(art) == PINNED_KEEP
    assert _vocab(art, "entities.tsv") == ["a", "b", "c", "d", "e", "f", "x"]
    assert "unknown_rel" in _vocab(art, "relations.tsv")
    assert len(np.load(art.path("triples", "valid.npy"))) == 3
    stats = json.loads(art.path("stats.json").read_text())
    assert (
        stats["unseen"]["valid"]["triples_with_unseen"] == 1
        and stats["unseen"]["valid"]["dropped_triples"] == 0
    )
    assert stats["relation_categories"]["relations"]["unknown_rel"]["category"] == "none"
    assert stats["entity_degree"]["histogram"][0] == {"min": 0, "max": 0, "count": 1}  # x has no train triple


def test_error_policy_names_file_and_line(tmp_path: Path, tiny) -> None:
    _, examples, _ = tiny
    with pytest.raises(DataFormatError) as info:
        _transform(tmp_path, examples, unseen_policy="error")
    message = str(info.value)
    # The user's file (ExampleGen's source), not the canonical copy inside the pipeline root.
    sources = json.loads(examples.path("stats.json").read_text())["source_files"]
    assert message.startswith(f"{sources['valid']}:2: entity 'x'") or message.startswith(
        f"{sources['test']}:2: relation 'unknown_rel'"
    ), message
    assert str(examples.uri) not in message
    assert "\n" not in message
    assert not any((tmp_path / "Transform").iterdir())  # nothing published, temp directory removed


def _split_paths(directory: Path) -> dict[str, str]:
    return {s: str(directory / f"{s}.txt") for s in SPLITS}


def test_malformed_line_through_beam(tmp_path: Path) -> None:
    raw = write_dataset(tmp_path / "raw", train=[*TINY_TRAIN] * 5)
    params = resolve_params(TRANSFORM_SPEC, {"chunk_bytes": 40})  # several chunks: line numbers must add up
    with open(raw / "train.txt", "a", encoding="utf-8") as f:
        f.write("a\tlikes\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:46: expected 3 tab-separated fields"):
        run_transform(_split_paths(raw), tmp_path / "out", params)
    (raw / "valid.txt").unlink()
    with pytest.raises(ComponentError, match="valid split not found"):
        run_transform(_split_paths(raw), tmp_path / "out", params)


def _worker_error(fn, *args) -> Exception:
    with pytest.raises(Exception) as info:
        list(fn(*args))
    return _error_from_pipeline(info.value)  # what the executor makes of a failed pipeline


def test_chunk_reader_errors(tmp_path: Path) -> None:
    path = write_split(tmp_path / "valid.txt", [])
    err = _worker_error(_plan_chunks, ("valid", str(path)), 40)
    assert isinstance(err, DataFormatError) and str(
        err
    ) == f"{path}:1: empty valid split: expected lines " + ("'head<TAB>relation<TAB>tail'")
    for content, message in (
        (b"a\tb\tc\n\n", "valid.txt:2: blank line"),
        (b"a\tb\tc\na\tb\t\xff\n", "valid.txt:2: invalid UTF-8"),
        (b"a\tb\tc\na\t\tc\n", "valid.txt:2: empty field"),
        (b"a\tb\tc\na b c\n", "valid.txt:2: expected 3 tab-separated fields"),
    ):
        path.write_bytes(content)
        chunk = next(_plan_chunks(("valid", str(path)), 1 << 20))
        assert message in str(_worker_error(_read_chunk, chunk))
    # Chunks end at line breaks and number their lines; CRLF and a missing final newline are accepted.
    path.write_text("a\tb\tc\r\nd\te\tf\r\ng\th\ti")
    chunks = list(_plan_chunks(("valid", str(path)), 4))
    assert [c.first_line for c in chunks] == [1, 2, 3]
    assert [b.text for c in chunks for b in _read_chunk(c)] == ["a\tb\tc", "d\te\tf", "g\th\ti"]
    assert isinstance(_error_from_pipeline(RuntimeError("boom")), ComponentError)


def test_kinship(tmp_path: Path, shared_datasets: Path) -> None:
    examples = run_component(EXAMPLE_GEN, tmp_path, params={"dataset": "kinship"})
    art = _transform(tmp_path, examples)
    stats = json.loads(art.path("stats.json").read_text())
    assert stats["num_entities"] == 104 and stats["num_relations"] == 25
    assert stats["triples"] == {"train": 8544, "valid": 1068, "test": 1074}
    assert stats["unseen"]["valid"]["dropped_triples"] == 0
    ent = {n: i for i, n in enumerate(_vocab(art, "entities.tsv"))}
    rel = {n: i for i, n in enumerate(_vocab(art, "relations.tsv"))}
    train = read_triples(examples.path("splits", "train.tsv"))
    assert _loaded_queries(art) == _expected_queries(train, ent, rel)
    assert stats["queries"]["num_queries"] == len(_expected_queries(train, ent, rel))
