"""Id splits: train names numbered first (sorted), then valid/test-only names; every triple maps back to its names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hale_tf import data


def test_id_splits_round_trip_to_the_files(tmp_path: Path) -> None:
    for split, text in {"train": "b\tr2\ta\na\tr1\tc\n", "valid": "c\tr1\tb\n", "test": "d\tr2\ta\n"}.items():
        (tmp_path / f"{split}.txt").write_text(text, encoding="utf-8")
    files = data.resolve_dataset("mine", data_dir=tmp_path)
    splits = data.load_id_splits(files)
    assert splits.entities == ["a", "b", "c", "d"] and splits.relations == ["r1", "r2"]
    assert (splits.num_entities, splits.num_relations) == (4, 2)
    np.testing.assert_array_equal(splits.triples["train"], [[1, 1, 0], [0, 0, 2]])
    assert splits.triples["test"].dtype == np.int64 and splits.triples["valid"].shape == (1, 3)


def test_kinship_counts(shared_datasets: Path) -> None:
    splits = data.load_id_splits("kinship")
    assert (splits.num_entities, splits.num_relations) == (104, 25)
    assert len(splits.triples["train"]) == 8544
    for name, rows in zip(("train", "valid", "test"), data.resolve_dataset("kinship").splits.values(), strict=True):
        names = data.read_triples(rows)
        h, r, t = splits.triples[name][0]
        assert (splits.entities[h], splits.relations[r], splits.entities[t]) == tuple(names[0])
