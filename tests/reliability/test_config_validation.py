"""The run configuration is validated before any component runs: one line naming the flag or key, exit 2."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import ConfigError, parse_duration, resolve_config
from pipelines.validate import check_runner, validate_config
from tests.reliability.helpers import assert_one_line_error, run_cli


def _validate(flags: dict[str, Any], sets: list[str], dataset: str = "kinship") -> dict[str, Any]:
    return validate_config(resolve_config(dataset, flags, sets), list(flags))


# Each probe of the issue: (flags, --set overrides, what the message must say).
PROBES = [
    ({}, ["training.learning_rat=0.1"], "training.learning_rat: unknown key; did you mean 'learning_rate'?"),
    ({}, ['training.batch_size="abc"'], "training.batch_size: expected an integer, got 'abc'"),
    ({}, ["training.batch_size=abc"], "training.batch_size: expected an integer"),
    ({}, ["training.batch_size=null"], "training.batch_size: must not be null"),
    ({}, ['model_config.dim="abc"'], "model_config.dim: expected an integer"),
    ({}, ["model_config.dimm=32"], "model_config.dimm: unknown key; did you mean 'dim'?"),
    ({}, ["training.optimizer_params=5"], "training.optimizer_params: expected an object"),
    ({}, ['training.optimizer_params={"weight_decay":"x"}'],
     "training.optimizer_params.weight_decay: expected a number"),
    ({}, ['training.optimizer_params={"weight_decai":0.1}'], "did you mean 'weight_decay'?"),
    ({}, ["loss=5"], "loss: expected an object"),
    ({}, ["loss.negativs=all"], "loss.negativs: unknown key; did you mean 'negatives'?"),
    ({}, ["model_config=[]"], "model_config: expected an object"),
    ({}, ["evaluator=5"], "evaluator: expected an object"),
    ({}, ['evaluator.threshold={"mrr": 0.1}'], "evaluator.threshold: unknown key; did you mean 'thresholds'?"),
    ({}, ['evaluator.thresholds={"mrrr": 0.1}'], "evaluator.thresholds.mrrr: unknown key; did you mean 'mrr'?"),
    ({}, ['evaluator.memory_budget="lots"'], "evaluator.memory_budget: cannot parse memory size"),
    ({}, ["model=5"], "model: expected a model name"),
    ({}, ["model.x=1"], "model: expected a model name"),
    ({}, ["training.time_budget_s=1e400"], "training.time_budget_s: must be a finite number"),
    ({}, ["training.learning_rate=NaN"], "training.learning_rate: must be a finite number"),
    ({}, ["training.learning_rate=-1"], "training.learning_rate: learning_rate must be > 0"),
    ({}, ["transform.num_shard=3"], "transform.num_shard: unknown key; did you mean 'num_shards'?"),
    ({}, ["transform.num_shards=0"], "transform.num_shards: must be >= 1"),
    ({}, ['phases=[{"until": 1, "training": {"learning_rat": 1}}]'],
     "phases[0].training.learning_rat: unknown key; did you mean 'learning_rate'?"),
    ({}, ['phases=[{"until": 1, "loss": {"name": "hale", "negatives": "x"}}]'], "phases[0].loss.negatives:"),
    ({"negatives": "bogus"}, [], "--negatives (loss.negatives): negatives must be one of"),
    ({"min_mrr": float("nan")}, [], "--min_mrr (evaluator.thresholds.mrr): must be a finite number"),
    ({"min_mrr": float("inf")}, [], "--min_mrr (evaluator.thresholds.mrr): must be a finite number"),
    ({"dim": 3}, [], "--dim (model_config.dim): dim must be even"),
    ({"optimizer": "adamx"}, [], "--optimizer (training.optimizer): unknown optimizer 'adamx'"),
    ({"loss": "nce"}, [], "--loss (loss.name): unknown loss 'nce'"),
    ({"activation": "tanh"}, [], "--activation (model_config.activation): unknown activation 'tanh'"),
]


@pytest.mark.parametrize(("flags", "sets", "message"), PROBES)
def test_bad_configs_are_named(flags: dict[str, Any], sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _validate(flags, sets)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_shipped_config_is_valid_and_model_names_take_their_registry_spelling() -> None:
    for dataset in ("kinship", "wn18rr", "fb15k-237", "codex-m", "yago3-10", "synthetic"):
        assert _validate({}, [], dataset)["model"] == "rotH"
    assert _validate({"model": "roth"}, [])["model"] == "rotH"  # the fingerprint matches --model=rotH's
    assert _validate({"model": "ATT_H"}, [])["model"] == "attH"
    # Valid values of every kind pass: ints for floats, optional fields, nested phase changes.
    config = _validate({}, ["training.learning_rate=1", "training.max_steps=100", "evaluator.thresholds.mrr=0",
                            'phases=[{"until": 0.5, "training": {"learning_rate": 0.005}}, {"until": 1}]'])
    assert config["evaluator"]["thresholds"] == {"mrr": 0.0}


def test_durations_and_runners() -> None:
    with pytest.raises(ConfigError, match="--time_budget: must be a positive, finite duration"):
        parse_duration("9" * 400)
    for runner in ("FnApiRunner", "DirectRunner", "direct", "Flink", "DaskRunner", "my.package.CustomRunner"):
        check_runner(runner)
    with pytest.raises(ConfigError, match="--runner: unknown Beam runner 'FnApiRuner'; did you mean 'FnApiRunner'"):
        check_runner("FnApiRuner")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set=training.learning_rate=NaN"], "training.learning_rate"),
        (["--set=training.learning_rat=0.1"], "did you mean 'learning_rate'"),
        (["--runner=Bogus"], "--runner"),
        (["--negatives=bogus"], "--negatives"),
        (["--min_mrr=nan"], "--min_mrr"),
    ],
)
def test_cli_fails_in_seconds_before_example_gen(tmp_path: Path, args: list[str], expected: str) -> None:
    root = tmp_path / "root"
    started = time.monotonic()
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", *args, timeout=120)
    assert_one_line_error(proc, expected, code=2)
    assert time.monotonic() - started < 60
    assert not root.exists()  # nothing ran, not even ExampleGen
