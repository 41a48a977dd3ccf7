"""Embedding export: projector TSVs and config, degree/main-relation metadata, the Poincaré-disk picture."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.plugins.projector import ProjectorConfig

from hale_tf.export import export_embeddings
from hale_tf.export.embeddings import degree_and_main_relation, disk_projection
from hale_tf.geometry import expmap0
from tests.export.helpers import make_model, random_triples

N, R, DIM = 30, 3, 6
ENTITIES = [f"e{i}" for i in range(N)]
RELATIONS = ["r0", "r1", "r2"]


def read_tsv(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def projector_config(log_dir) -> ProjectorConfig:
    return text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())


def test_degree_and_main_relation():
    triples = np.array([[0, 1, 2], [0, 1, 3], [0, 0, 2], [2, 0, 0], [4, 2, 4]])
    degree, main = degree_and_main_relation(triples, num_entities=6, num_base_relations=3)
    np.testing.assert_array_equal(degree, [4, 0, 3, 1, 2, 0])
    # Entity 0: r1 twice, r0 twice → tie → lower id r0; entity 2: r0 twice, r1 once.
    np.testing.assert_array_equal(main, [0, -1, 0, 1, 2, -1])


def test_disk_projection_keeps_norms_inside_the_unit_disk():
    rng = np.random.default_rng(0)
    c = 2.5
    points = expmap0(rng.normal(size=(50, 6)), np.float64(c)).numpy()
    disk = disk_projection(points, c)
    assert disk.shape == (50, 2)
    np.testing.assert_allclose(np.linalg.norm(disk, axis=1), np.linalg.norm(points, axis=1) * np.sqrt(c))
    assert np.linalg.norm(disk, axis=1).max() < 1.0
    # Points spanning a 2-D plane are mapped isometrically (PCA finds that plane): inner products kept.
    flat = np.zeros((4, 6))
    flat[:, 2:4] = [[0.3, 0.1], [0, 0.4], [-0.2, 0], [0.1, -0.1]]
    projected = disk_projection(flat, 1.0)
    np.testing.assert_allclose(projected @ projected.T, flat @ flat.T, atol=1e-12)


def test_hyperbolic_export_writes_projector_files_and_picture(tmp_path):
    model = make_model("rotH", N, R, DIM)
    triples = random_triples(N, R, 60)
    triples = np.concatenate([triples, np.tile([[1, 2, 5]], (30, 1))])  # r2 is the most frequent relation
    written = export_embeddings(model, ENTITIES, RELATIONS, tmp_path / "logs", triples=triples)
    log_dir = tmp_path / "logs"

    vectors = np.loadtxt(written["entities"], delimiter="\t")
    np.testing.assert_allclose(vectors, model.entities.embeddings.numpy(), rtol=1e-6)
    meta = read_tsv(written["entities_metadata"])
    assert meta[0] == ["name", "id", "degree", "main_relation"]
    degree, _ = degree_and_main_relation(triples, N, R)
    assert meta[2] == ["e1", "1", str(degree[1]), "r2"] and len(meta) == N + 1

    c = float(model.curvature.all_curvatures().numpy()[2])  # the curvature of r2
    ball = np.loadtxt(written["entities_ball"], delimiter="\t")
    np.testing.assert_allclose(ball, expmap0(model.entities.embeddings, c).numpy(), rtol=1e-5, atol=1e-7)

    rel_meta = read_tsv(written["relations_metadata"])
    assert rel_meta[0] == ["name", "id", "direction", "curvature", "count"]
    assert rel_meta[1 + R][:3] == ["r0 (inverse)", str(R), "inverse"] and len(rel_meta) == 2 * R + 1
    translation = np.loadtxt(written["relations_translation"], delimiter="\t")
    assert translation.shape == (2 * R, 2 * DIM)
    assert np.loadtxt(written["relations_rotation"], delimiter="\t").shape == (2 * R, DIM)

    config = projector_config(log_dir)
    by_name = {e.tensor_name: e for e in config.embeddings}
    assert set(by_name) == {
        "entities",
        "entities_poincare_ball",
        "relations_translation",
        "relations_rotation",
    }
    for embedding in config.embeddings:  # relative paths inside the log dir, as the projector requires
        assert (log_dir / embedding.tensor_path).is_file() and (log_dir / embedding.metadata_path).is_file()
    assert list(by_name["entities"].tensor_shape) == [N, DIM]

    png = written["poincare_disk"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000

    # Colour by relation, and no triples at all (single colour, mean curvature): both still draw.
    export_embeddings(model, ENTITIES, RELATIONS, tmp_path / "by_rel", triples=triples, color_by="relation")
    plain = export_embeddings(model, ENTITIES, RELATIONS, tmp_path / "plain", max_plot_points=10)
    assert read_tsv(plain["entities_metadata"])[0] == ["name", "id"]
    assert plain["poincare_disk"].is_file() and (tmp_path / "by_rel" / "poincare_disk.png").is_file()


def test_euclidean_export_has_no_ball_or_picture(tmp_path):
    model = make_model("attE", N, R, DIM)
    written = export_embeddings(model, ENTITIES, RELATIONS, tmp_path)
    assert "poincare_disk" not in written and "entities_ball" not in written
    names = {e.tensor_name for e in projector_config(tmp_path).embeddings}
    assert names == {
        "entities",
        "relations_translation",
        "relations_attention_rotation",
        "relations_attention_reflection",
        "relations_attention_context",
    }
    assert read_tsv(written["relations_metadata"])[0] == ["name", "id", "direction"]


def test_invalid_arguments(tmp_path):
    model = make_model("transE", N, R, DIM)
    with pytest.raises(ValueError, match="color_by"):
        export_embeddings(model, ENTITIES, RELATIONS, tmp_path, color_by="size")
    with pytest.raises(ValueError, match="entity names"):
        export_embeddings(model, ENTITIES[:-1], RELATIONS, tmp_path)


def test_large_graphs_are_sampled_for_the_projector_and_the_picture_zooms(tmp_path):
    model = make_model("rotH", N, R, DIM)
    triples = random_triples(N, R, 60)
    written = export_embeddings(model, ENTITIES, RELATIONS, tmp_path, triples=triples, max_projector_entities=12)
    meta = read_tsv(written["entities_metadata"])
    ids = [int(row[1]) for row in meta[1:]]
    assert len(ids) == 12 and ids == sorted(ids) and len(set(ids)) == 12
    assert all(row[0] == f"e{int(row[1])}" for row in meta[1:])  # names and ids stay together
    np.testing.assert_allclose(np.loadtxt(written["entities"], delimiter="\t"),
                               model.entities.embeddings.numpy()[ids], rtol=1e-6)
    names = {e.tensor_name: list(e.tensor_shape) for e in projector_config(tmp_path).embeddings}
    assert names["entities (sample of 12 of 30)"] == [12, DIM]
    assert names["entities_poincare_ball (sample of 12 of 30)"] == [12, DIM]


def test_picture_helpers_zoom_to_the_data_and_keep_labels_apart():
    from hale_tf.export.embeddings import _extent, _readable_labels

    points = np.array([[0.01, 0.0], [0.0105, 0.0], [-0.02, 0.01], [0.0, -0.015]])
    extent = _extent(points)
    assert 0.02 < extent < 0.05  # a small cloud at the centre fills the view instead of 2 % of it
    assert _extent(np.array([[0.99, 0.0]])) == 1.05  # never more than the whole disk
    # Entity 1 sits on entity 0: its label is skipped; the limit holds.
    assert _readable_labels(points, np.array([0, 1, 2, 3]), 5, extent) == [0, 2, 3]
    assert _readable_labels(points, np.array([0, 1, 2, 3]), 2, extent) == [0, 2]
