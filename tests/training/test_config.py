"""TrainingConfig: frozen, strict from_dict, atomic to_json."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hale_tf.training import TrainingConfig


def test_round_trip_and_frozen(tmp_path: Path) -> None:
    config = TrainingConfig(batch_size=64, learning_rate=0.5, optimizer_params={"weight_decay": 0.1}, max_steps=9)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 3  # type: ignore[misc]
    path = tmp_path / "sub" / "config.json"
    config.to_json(path)
    assert TrainingConfig.from_json(path) == config
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary file left behind


def test_to_json_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text("old\n")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        TrainingConfig(max_steps=1).to_json(path)
    assert path.read_text() == "old\n"  # the old file, whole; nothing half-written
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_from_dict_refuses_unknown_fields_and_wrong_types() -> None:
    with pytest.raises(TypeError, match="^batch_sise: unknown TrainingConfig field"):
        TrainingConfig.from_dict({"batch_sise": 3})
    with pytest.raises(TypeError, match="^max_steps: expected an integer or null, got 1.5"):
        TrainingConfig.from_dict({"max_steps": 1.5})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainingConfig.from_dict({"batch_size": 0})
