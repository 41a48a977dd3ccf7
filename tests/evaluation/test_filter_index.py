"""FilterIndex: CSR contents, both directions, de-duplication, persistence, validation."""

from __future__ import annotations

import numpy as np
import pytest

from hale_tf.evaluation import FILTER_INDEX_FILENAME, FilterIndex

from .reference import known_answers

R = 3
TRAIN = np.array([[0, 0, 1], [0, 0, 2], [0, 0, 2], [1, 1, 2], [3, 2, 0]])
VALID = np.array([[0, 0, 3]])
TEST = np.array([[4, 1, 0], [0, 0, 1]])


def test_csr_matches_python_sets_in_both_directions() -> None:
    idx = FilterIndex.from_triples([TRAIN, VALID, TEST], R, names=["train", "valid", "test"])
    ref = known_answers([TRAIN, VALID, TEST], R)
    assert idx.sources == ("train", "valid", "test")
    assert idx.num_entities == 5 and idx.num_relations == R
    assert idx.num_pairs == sum(len(v) for v in ref.values())  # duplicates stored once
    for (h, r), answers in ref.items():
        np.testing.assert_array_equal(idx.known_answers(h, r), sorted(answers))
    assert idx.known_answers(0, 0 + R).size == 0  # nobody has 0 as a tail of relation 0
    np.testing.assert_array_equal(idx.known_answers(2, 0 + R), [0])  # reciprocal of (0, 0, 2)
    assert np.all(np.diff(idx.keys) > 0)


def test_pairs_expand_rows_in_order() -> None:
    idx = FilterIndex.from_triples([TRAIN, VALID], R)
    rows, ents = idx.pairs(np.array([0, 4, 0]), np.array([0, 1, 0]))
    np.testing.assert_array_equal(rows, [0, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(ents, [1, 2, 3, 1, 2, 3])
    rows, ents = idx.pairs(np.array([], np.int64), np.array([], np.int64))
    assert rows.size == 0 and ents.size == 0


def test_save_load_roundtrip(tmp_path) -> None:
    idx = FilterIndex.from_triples({"train": TRAIN, "test": TEST}, R, num_entities=9)
    path = idx.save(tmp_path / "filters")
    assert path.name == FILTER_INDEX_FILENAME
    assert [p.name for p in path.parent.iterdir()] == [FILTER_INDEX_FILENAME]  # no temp file left
    back = FilterIndex.load(tmp_path / "filters")
    assert back.sources == ("train", "test") and back.num_entities == 9 and back.num_relations == R
    for a, b in ((idx.keys, back.keys), (idx.offsets, back.offsets), (idx.answers, back.answers)):
        np.testing.assert_array_equal(a, b)
    assert FilterIndex.load(path).num_pairs == idx.num_pairs


def test_empty_index_has_no_answers() -> None:
    idx = FilterIndex.from_triples([np.zeros((0, 3), np.int64)], R, num_entities=4)
    starts, counts = idx.spans(np.array([0, 1]), np.array([0, 4]))
    assert counts.tolist() == [0, 0]


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0, 3, 1]]), "relation ids"),
        (np.array([[0, -1, 1]]), "relation ids"),
        (np.array([[-1, 0, 1]]), "entity ids"),
        (np.array([[0, 0]]), "shape"),
        (np.array([[0.0, 0.0, 1.0]]), "integer"),
    ],
)
def test_invalid_triples_are_rejected(bad: np.ndarray, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        FilterIndex.from_triples([bad], R)


def test_entity_ids_beyond_num_entities_are_rejected() -> None:
    with pytest.raises(ValueError, match="entity ids"):
        FilterIndex.from_triples([TRAIN], R, num_entities=3)
