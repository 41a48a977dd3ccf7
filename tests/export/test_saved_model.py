"""SavedModel export: reload in a fresh TensorFlow-only process and compare with the Keras model.

Every model of the registry is exported once (module fixture); one fresh interpreter, which cannot import
hale_tf or keras, loads all of them and runs every signature; the tests compare its outputs with the
in-process Keras model and a NumPy argsort.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from hale_tf import models
from hale_tf.export import METADATA_FILENAME, export_saved_model, known_triple_keys
from tests.export.helpers import last_json_line, make_model, random_triples, run_fresh

N, R, DIM = 23, 3, 8
ENTITIES = [f"entity_{i}" for i in range(N)]
RELATIONS = ["likes", "part of", "near"]  # a space in a name must survive the vocab asset
QUERY_CHUNK = 16  # below the 69-query batches: the chunked path (4 full chunks + 5) is exercised too
K_OVER = N + 5  # larger than the entity count: clamped to N
ALL = models.available()
# Export name → (registry name, make_model options, export options). Besides every model: a float64
# hyperbolic model (tight comparison) and an XLA-compiled export (must reload without hale_tf as well).
VARIANTS = {name: (name, {}, {}) for name in ALL}
VARIANTS["rotH_float64"] = ("rotH", {"dtype": "float64"}, {})
VARIANTS["transE_xla"] = ("transE", {}, {"jit_compile": True})
EXPORTS = list(VARIANTS)

FRESH_SCRIPT = """
import json, sys
import numpy as np

root, out_dir = sys.argv[1], sys.argv[2]
entities = [f"entity_{i}" for i in range(23)]
relations = ["likes", "part of", "near"]
heads = np.repeat(np.arange(23), 3)
rels = np.tile(np.arange(3), 23)
e = tf.constant([entities[i] for i in heads])
r = tf.constant([relations[i] for i in rels])
summary = {}
keras_before = {m for m in sys.modules if m.split(".")[0] == "keras"}
for name in sorted(os.listdir(root)):
    loaded = tf.saved_model.load(os.path.join(root, name))
    sig = loaded.signatures
    res = {}
    for excl in (False, True):
        for fn, arg in (("topk_tails", "head"), ("topk_heads", "tail")):
            o = sig[fn](**{arg: e}, relation=r, k=tf.constant(28), exclude_known=tf.constant(excl))
            for key in ("entities", "scores", "ids"):
                res[f"{fn}_{int(excl)}_{key}"] = o[key].numpy()
            res[f"{fn}_{int(excl)}_entities"] = res[f"{fn}_{int(excl)}_entities"].astype("S")  # no pickle
            assert o["found"].numpy().all()
    one = sig["topk_tails"](head=tf.constant(["entity_4"]), relation=tf.constant(["near"]), k=tf.constant(5),
                            exclude_known=tf.constant(False))
    res["single_ids"] = one["ids"].numpy()
    res["single_scores"] = one["scores"].numpy()
    tails = (heads * 7 + 3) % 23
    o = sig["score"](head=e, relation=r, tail=tf.constant([entities[i] for i in tails]))
    res["score"] = o["score"].numpy()
    res["embed"] = sig["embed"](entity=tf.constant(entities))["embedding"].numpy()
    # Unknown names mixed with known ones in one batch.
    bad_h = tf.constant(["entity_1", "nobody", "entity_2", "entity_3"])
    bad_r = tf.constant(["likes", "likes", "unknown relation", "near"])
    for fn, arg in (("topk_tails", "head"), ("topk_heads", "tail")):
        o = sig[fn](**{arg: bad_h}, relation=bad_r, k=tf.constant(4), exclude_known=tf.constant(True))
        for key in ("entities", "scores", "ids", "found"):
            res[f"bad_{fn}_{key}"] = o[key].numpy()
        res[f"bad_{fn}_entities"] = res[f"bad_{fn}_entities"].astype("S")
    o = sig["score"](head=bad_h, relation=bad_r, tail=tf.constant(["entity_0", "entity_0", "entity_0", "x"]))
    res["bad_score"], res["bad_score_found"] = o["score"].numpy(), o["found"].numpy()
    o = sig["embed"](entity=tf.constant(["entity_0", "nobody"]))
    res["bad_embed"], res["bad_embed_found"] = o["embedding"].numpy(), o["found"].numpy()
    res["k0_shape"] = np.array(sig["topk_tails"](head=e[:2], relation=r[:2], k=tf.constant(0),
                                                 exclude_known=tf.constant(False))["ids"].shape)
    np.savez(os.path.join(out_dir, name + ".npz"), **res)
    summary[name] = sorted(sig.keys())
summary["_hale_tf_imported"] = any(m.split(".")[0] == "hale_tf" for m in sys.modules)
# TensorFlow's own import touches a few keras modules; loading must not have needed any more.
keras_after = {m for m in sys.modules if m.split(".")[0] == "keras"}
summary["_keras_modules_added"] = sorted(keras_after - keras_before)
print(json.dumps(summary))
"""


@pytest.fixture(scope="module")
def known() -> np.ndarray:
    return random_triples(N, R, 40)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, known) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("exports")
    built = {}
    for name, (registry_name, model_options, export_options) in VARIANTS.items():
        model = make_model(registry_name, N, R, DIM, **model_options)
        export_saved_model(
            model,
            ENTITIES,
            RELATIONS,
            root / name,
            known_triples=known,
            query_chunk_size=QUERY_CHUNK,
            **export_options,
        )
        built[name] = model
    return built, root


@pytest.fixture(scope="module")
def fresh(exported, tmp_path_factory) -> tuple[dict, Path]:
    """Run every signature of every export in one fresh TensorFlow-only process."""
    _, root = exported
    out_dir = tmp_path_factory.mktemp("fresh_out")
    elsewhere = tmp_path_factory.mktemp("cwd")
    proc = run_fresh(FRESH_SCRIPT, cwd=elsewhere, args=[str(root), str(out_dir)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return last_json_line(proc.stdout), out_dir


def queries() -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(N), R).astype(np.int32), np.tile(np.arange(R), N).astype(np.int32)


def tolerance(model) -> float:
    """Relative tolerance of SavedModel vs eager Keras scores.

    Euclidean: float32 rounding. Hyperbolic float32: graph and eager kernels round differently in the
    last bits (vectorised vs scalar transcendental functions), and artanh near the ball's boundary clamp
    amplifies that to ~1e-4 relative (the same 1e-3 bound tests/models uses against float64). float64: tight.
    """
    if model.entities.embeddings.dtype == "float64":
        return 1e-9
    return 1e-3 if model.geometry == "poincare" else 1e-5


def assert_ranking(ids: np.ndarray, scores: np.ndarray, reference: np.ndarray, rtol: float = 1e-5) -> None:
    """ids/scores ``[B, k]`` equal the stable NumPy argsort of ``reference`` ``[B, N]`` (−inf = excluded).

    The returned scores must match the argsort's scores within ``rtol``; where the order differs from the
    argsort, the two reference scores must tie within that tolerance (rounding, not a wrong ranking).
    """
    expected = np.argsort(-reference, axis=1, kind="stable")[:, : ids.shape[1]]
    exp_scores = np.take_along_axis(reference, expected, axis=1)
    valid = np.isfinite(exp_scores)
    np.testing.assert_array_equal(ids == -1, ~valid)  # excluded slots (no candidate left) are −1
    exp_scores = np.where(valid, exp_scores, 0)
    np.testing.assert_allclose(np.where(valid, scores, 0), exp_scores, rtol=rtol, atol=rtol)
    differs = (ids != expected) & valid
    got = np.take_along_axis(reference, np.where(differs, ids, 0), axis=1)
    gap = np.abs(np.where(differs, got, 0) - np.where(differs, exp_scores, 0))
    assert np.all(gap <= 2 * rtol * np.abs(exp_scores) + rtol), f"order differs at {np.argwhere(differs)[:5]}"


def test_fresh_process_has_no_hale_tf_and_serves_all_signatures(fresh):
    summary, _ = fresh
    assert summary.pop("_hale_tf_imported") is False
    assert summary.pop("_keras_modules_added") == []
    assert set(summary) == set(EXPORTS)
    for keys in summary.values():
        assert keys == ["embed", "score", "serving_default", "topk_heads", "topk_tails"]


def test_signature_def_map_is_what_tf_serving_sees(exported):
    _, root = exported
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((root / "rotH" / "saved_model.pb").read_bytes())
    sigs = proto.meta_graphs[0].signature_def
    # (TF Serving also reads "__saved_model_init_op", which initialises the vocabulary tables.)
    assert {k for k in sigs if not k.startswith("__")} == {
        "serving_default",
        "topk_tails",
        "topk_heads",
        "score",
        "embed",
    }

    def io(sig, which):
        return {
            k: (tf.as_dtype(v.dtype).name, [d.size for d in v.tensor_shape.dim])
            for k, v in getattr(sig, which).items()
        }

    assert io(sigs["topk_tails"], "inputs") == {
        "head": ("string", [-1]),
        "relation": ("string", [-1]),
        "k": ("int32", []),
        "exclude_known": ("bool", []),
    }
    assert set(io(sigs["topk_heads"], "inputs")) == {"tail", "relation", "k", "exclude_known"}
    assert io(sigs["topk_tails"], "outputs") == {
        "entities": ("string", [-1, -1]),
        "scores": ("float32", [-1, -1]),
        "ids": ("int64", [-1, -1]),
        "found": ("bool", [-1]),
    }
    assert io(sigs["serving_default"], "outputs") == io(sigs["topk_tails"], "outputs")
    assert io(sigs["score"], "inputs") == {k: ("string", [-1]) for k in ("head", "relation", "tail")}
    assert io(sigs["score"], "outputs") == {"score": ("float32", [-1]), "found": ("bool", [-1])}
    assert io(sigs["embed"], "outputs") == {"embedding": ("float32", [-1, DIM]), "found": ("bool", [-1])}


@pytest.mark.parametrize("name", EXPORTS)
def test_fresh_outputs_equal_keras_model(name, exported, fresh):
    models_by_name, _ = exported
    model = models_by_name[name]
    res = np.load(fresh[1] / f"{name}.npz")
    h, r = queries()
    tail_ref = model.score_all(h, r).numpy()
    head_ref = model.score_all(h, r + R).numpy()  # (?, r, t) is answered as (t, r + R, ?)
    for fn, ref in (("topk_tails", tail_ref), ("topk_heads", head_ref)):
        ids, scores = res[f"{fn}_0_ids"], res[f"{fn}_0_scores"]
        assert ids.shape == (N * R, N)  # k = N + 5 clamped to N
        assert_ranking(ids, scores, ref, tolerance(model))
        names = res[f"{fn}_0_entities"]
        assert [n.decode() for n in names[5]] == [ENTITIES[i] for i in ids[5]]
    single_ref = model.score_all(np.array([4]), np.array([2])).numpy()
    # The one-query call takes the unchunked path.
    assert_ranking(res["single_ids"], res["single_scores"], single_ref, tolerance(model))
    tails = (h * 7 + 3) % N
    rtol = tolerance(model)
    np.testing.assert_allclose(res["score"], model.score(h, r, tails).numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(res["embed"], model.entities.embeddings.numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["transE", "rotH"])
def test_exclude_known_drops_known_facts(name, exported, fresh, known):
    model = exported[0][name]
    res = np.load(fresh[1] / f"{name}.npz")
    h, r = queries()
    for fn, offset in (("topk_tails", 0), ("topk_heads", R)):
        ref = model.score_all(h, r + offset).numpy()
        masked = ref.copy()
        for a, rel, b in known:
            query_entity, answer = (a, b) if fn == "topk_tails" else (b, a)
            masked[query_entity * R + rel, answer] = -np.inf
        assert np.isinf(masked).sum() == len(known)  # every known fact masks exactly one (query, answer)
        assert_ranking(res[f"{fn}_1_ids"], res[f"{fn}_1_scores"], masked, tolerance(model))
        # Unfiltered, the same known answers are present (so the test above can fail).
        unfiltered = res[f"{fn}_0_ids"]
        assert any(
            (b if fn == "topk_tails" else a) in unfiltered[(a if fn == "topk_tails" else b) * R + rel]
            for a, rel, b in known
        )
        # Slots without a candidate (k = N with some answers excluded) are marked, not filled.
        names = res[f"{fn}_1_entities"]
        assert ((names == b"") == (res[f"{fn}_1_ids"] == -1)).all()
        assert np.isneginf(res[f"{fn}_1_scores"][res[f"{fn}_1_ids"] == -1]).all()


@pytest.mark.parametrize("name", ["transE", "attH"])
def test_unknown_names_are_flagged_not_answered(name, exported, fresh):
    model = exported[0][name]
    res = np.load(fresh[1] / f"{name}.npz")
    for fn in ("topk_tails", "topk_heads"):
        found = res[f"bad_{fn}_found"]
        np.testing.assert_array_equal(found, [True, False, False, True])
        assert np.isnan(res[f"bad_{fn}_scores"][~found]).all()
        assert (res[f"bad_{fn}_entities"][~found] == b"").all()
        assert (res[f"bad_{fn}_ids"][~found] == -1).all()
        assert (res[f"bad_{fn}_ids"][found] >= 0).all()
    # The known rows in the same batch are answered as usual.
    ref = model.score_all(np.array([1, 3]), np.array([0, 2])).numpy()
    ids = res["bad_topk_tails_ids"][[0, 3]]
    np.testing.assert_allclose(
        res["bad_topk_tails_scores"][[0, 3]], np.take_along_axis(ref, ids, 1), rtol=tolerance(model)
    )
    np.testing.assert_array_equal(res["bad_score_found"], [True, False, False, False])
    assert np.isnan(res["bad_score"][1:]).all() and np.isfinite(res["bad_score"][0])
    np.testing.assert_array_equal(res["bad_embed_found"], [True, False])
    assert np.isnan(res["bad_embed"][1]).all()
    np.testing.assert_array_equal(res["bad_embed"][0], model.entities.embeddings.numpy()[0])


def test_k_is_clamped(fresh):
    res = np.load(fresh[1] / "refE.npz")
    assert res["topk_tails_0_ids"].shape[1] == N  # asked for N + 5
    np.testing.assert_array_equal(res["k0_shape"], [2, 0])


def test_known_triple_keys_cover_both_directions():
    triples = np.array([[0, 1, 2], [2, 0, 0], [0, 1, 2]])
    keys = known_triple_keys(triples, num_entities=3, num_base_relations=2)
    # (h·2R + r)·N + t with 2R = 4, N = 3; reciprocal relation r + R.
    expected = sorted({(0 * 4 + 1) * 3 + 2, (2 * 4 + 3) * 3 + 0, (2 * 4 + 0) * 3 + 0, (0 * 4 + 2) * 3 + 2})
    np.testing.assert_array_equal(keys, expected)
    assert keys.dtype == np.int64
    with pytest.raises(ValueError, match="relation ids"):
        known_triple_keys(np.array([[0, 2, 1]]), 3, 2)  # 2 is a reciprocal id, not a base relation
    with pytest.raises(ValueError, match="entity ids"):
        known_triple_keys(np.array([[0, 0, 3]]), 3, 2)
    with pytest.raises(ValueError, match="overflow"):
        known_triple_keys(np.zeros([0, 3], np.int64), 2**31, 2**3)


def test_metadata_and_assets(exported, known):
    _, root = exported
    meta = json.loads((root / "attH" / "assets" / METADATA_FILENAME).read_text())
    assert meta["model"] == "attH" and meta["geometry"] == "poincare"
    assert (meta["num_entities"], meta["num_relations"], meta["num_model_relations"], meta["dim"]) == (
        N,
        R,
        2 * R,
        DIM,
    )
    assert meta["config"]["num_entities"] == N
    assert meta["num_known_keys"] == 2 * len(known)
    assert meta["signatures"] == ["topk_tails", "topk_heads", "score", "embed"]
    assert (root / "attH" / "assets" / "entities.tsv").read_text().splitlines() == ENTITIES
    assert (root / "attH" / "assets" / "relations.tsv").read_text().splitlines() == RELATIONS


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path, monkeypatch):
    model = make_model("transE", 5, 1, 4)
    names, rels = [f"e{i}" for i in range(5)], ["r"]
    target = tmp_path / "serving" / "1"
    export_saved_model(model, names, rels, target)
    first = (target / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        export_saved_model(model, names, rels, target)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    # A crash while writing leaves the previous export untouched and no temporary directory behind.
    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, names, rels, target, overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, names, rels, tmp_path / "serving" / "2")
    monkeypatch.undo()
    assert (target / "saved_model.pb").stat().st_mtime_ns == first
    assert sorted(os.listdir(tmp_path / "serving")) == ["1"]
    # A vocabulary given as the Transform's file, and an overwrite that succeeds.
    vocab = tmp_path / "entities.tsv"
    vocab.write_text("".join(f"e{i}\n" for i in range(5)))
    export_saved_model(model, vocab, rels, target, overwrite=True)
    assert sorted(os.listdir(tmp_path / "serving")) == ["1"]
    loaded = tf.saved_model.load(str(target))
    out = loaded.signatures["topk_tails"](
        head=tf.constant(["e1"]),
        relation=tf.constant(["r"]),
        k=tf.constant(2),
        exclude_known=tf.constant(True),
    )
    ref = model.score_all(np.array([1]), np.array([0])).numpy()
    assert_ranking(out["ids"].numpy(), out["scores"].numpy(), ref)


def test_invalid_inputs_are_rejected(tmp_path):
    model = make_model("transE", 4, 2, 4)
    names, rels = ["a", "b", "c", "d"], ["r", "s"]
    cases = [
        (names[:3], rels, "3 entity names"),
        (names, rels[:1], "num_relations=2"),
        (["a", "b", "a", "d"], rels, "duplicate entity name 'a'"),
        (["a", "", "c", "d"], rels, "empty or contains a line break"),
        (names, ["r", "s\nt"], "line break"),
    ]
    for ents, rs, message in cases:
        with pytest.raises(ValueError, match=message):
            export_saved_model(model, ents, rs, tmp_path / "x")
    with pytest.raises(ValueError, match=r"integer array \[M, 3\]"):
        export_saved_model(model, names, rels, tmp_path / "x", known_triples=np.zeros([2, 2], np.int32))
    assert not (tmp_path / "x").exists()
