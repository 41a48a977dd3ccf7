"""The typed run configuration: one declared object, loaded once, that refuses unknown keys and wrong types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hale_tf.training import LossSpec, Phase, TrainingConfig
from pipelines import config as config_module
from pipelines.config import CONFIG_DIR, ConfigError, load_defaults, resolve_config
from pipelines.run_config import RunConfig, load_run_config

DATASETS = sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem != "defaults")


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_shipped_config_loads_typed_and_round_trips(dataset: str) -> None:
    config = load_run_config(dataset, {}, [])
    assert isinstance(config.training, TrainingConfig) and isinstance(config.loss, LossSpec)
    assert all(isinstance(p, Phase) for p in config.phases)
    assert RunConfig.from_dict(config.to_dict()) == config
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # through JSON text
    # The file's values arrive typed: what the file says, the object holds.
    raw = load_defaults(dataset)
    assert config.loss.to_dict() == raw["loss"]
    for key, value in raw["training"].items():
        assert getattr(config.training, key) == value, key
    assert [p.to_dict()["until"] for p in config.phases] == [p["until"] for p in raw.get("phases") or []]


@pytest.mark.parametrize(("values", "message"), [
    ({"training": {"lerning_rate": 0.1}}, "x.json: training.lerning_rate: unknown TrainingConfig field"),
    ({"trainig": {}}, "x.json: trainig: unknown section"),
    ({"phases": [{"until": 1.0, "los": "hale"}]}, "x.json: phases: unknown phase keys ['los']"),
    ({"transform": {"num_shard": 2}}, "x.json: transform: Transform: unknown parameter(s) ['num_shard']"),
    ({"transform": {"beam_runner": "DirectRunner"}}, "x.json: transform.beam_runner: unknown key"),
    ({"evaluator": {"treshold": {}}}, "x.json: evaluator: Evaluator: unknown parameter(s) ['treshold']"),
])
def test_an_unknown_key_is_refused_in_one_line_naming_it(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(values, source="x.json")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"training": {"batch_size": "500"}}, "x.json: training.batch_size: expected an integer, got '500'"),
    ({"training": {"batch_size": True}}, "x.json: training.batch_size: expected an integer, got True"),
    ({"training": {"learning_rate": "0.1"}}, "x.json: training.learning_rate: expected a number"),
    ({"training": {"restore_best": 1}}, "x.json: training.restore_best: expected true or false"),
    ({"training": {"time_budget_s": "10m"}}, "x.json: training.time_budget_s: expected a number or null"),
    ({"model": 5}, "x.json: model: expected a model name"),
    ({"loss": "hale"}, "x.json: loss: expected an object"),
    ({"evaluator": {"split": 3}}, "x.json: evaluator: parameter 'split' must be str"),
])
def test_a_wrong_type_is_refused_in_one_line_naming_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(values, source="x.json")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_integers_are_valid_floats_and_come_back_as_floats() -> None:
    config = RunConfig.from_dict({"training": {"learning_rate": 1, "time_budget_s": 60}})
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert isinstance(config.training.time_budget_s, float)


def test_a_bad_key_names_the_file_or_set_that_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "defaults.json").write_text((CONFIG_DIR / "defaults.json").read_text())
    (tmp_path / "mine.json").write_text('{"training": {"batch_sise": 10}}')
    monkeypatch.setattr(config_module, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"^training\.batch_sise: unknown key; did you mean 'batch_size'\? "
                                          rf"\(set in {tmp_path / 'mine.json'}\)$"):
        load_run_config("mine", {}, [])
    with pytest.raises(ConfigError, match=r"^training\.seed: expected an integer, got 'x' \(set by --set\)$"):
        load_run_config("defaults", {}, ['training.seed="x"'])
    # A flag is named as the flag (no file).
    with pytest.raises(ConfigError, match=r"^--batch_size \(training\.batch_size\): batch_size must be >= 1, got 0$"):
        load_run_config("defaults", {"batch_size": 0}, [], ["batch_size"])


def test_a_single_run_flag_with_phases_says_that_it_replaces_them() -> None:
    notices: list[str] = []
    config = load_run_config("wn18rr", {"learning_rate": 0.1}, [], ["learning_rate"], notices)
    assert config.phases == () and config.training.learning_rate == 0.1
    configured = len(resolve_config("wn18rr", {}, [])["phases"])
    assert configured >= 2
    assert len(notices) == 1 and notices[0].startswith(
        f"--learning_rate trains one loss: the {configured} configured phases of wn18rr are replaced")
    # No phases to replace, or phases given explicitly: nothing to say.
    for dataset, sets in (("kinship", []), ("wn18rr", ['phases=[{"until": 1.0}]'])):
        notices.clear()
        resolve_config(dataset, {"learning_rate": 0.1}, sets, notices=notices)
        assert notices == []


def test_the_trainer_spec_takes_the_typed_sections() -> None:
    from components.base import compute_fingerprint, resolve_params
    from components.trainer import TRAINER_SPEC

    config = load_run_config("wn18rr", {}, [])
    typed = {"model": config.model, "loss": config.loss, "training": config.training, "phases": config.phases,
             "run_dir": "/r"}
    as_json = {**typed, "loss": config.loss.to_dict(), "training": config.training.to_dict(),
               "phases": [p.to_dict() for p in config.phases]}
    resolved = resolve_params(TRAINER_SPEC, as_json)
    assert resolved["training"] == config.training and resolved["phases"] == config.phases  # read into objects
    assert compute_fingerprint(TRAINER_SPEC, resolved, {}) == compute_fingerprint(
        TRAINER_SPEC, resolve_params(TRAINER_SPEC, typed), {})
    with pytest.raises(Exception, match="parameter 'training': lerning_rate: unknown TrainingConfig field"):
        resolve_params(TRAINER_SPEC, {**typed, "training": {"lerning_rate": 1.0}})
