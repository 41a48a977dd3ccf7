"""Pipeline configuration: defaults, per-dataset files, flags, ``--set`` and the phase list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hale_tf import training
from pipelines.config import ConfigError, load_defaults, resolve_config


def test_default_run_is_hale_then_negative_sampling_and_small_datasets_train_hale_alone() -> None:
    # WN18RR (ablation, eleventh round): HaLE, then 256 shared negatives at a constant rate, then 50 per
    # triple annealed; FB15k-237 keeps the two phases measured there.
    phases = training.parse_phases(load_defaults("wn18rr")["phases"])
    assert [p.loss["name"] for p in phases] == ["hale", "negative_sampling", "negative_sampling"]
    assert [p.until for p in phases] == [0.05, 0.15, 1.0]
    assert [p.loss.get("shared_samples") for p in phases[1:]] == [256, None]
    assert [training.TrainingConfig(**p.training).lr_decay for p in phases[1:]] == ["none", "cosine"]
    fb = training.parse_phases(load_defaults("fb15k-237")["phases"])
    assert [(p.loss["name"], p.until) for p in fb] == [("hale", 0.05), ("negative_sampling", 1.0)]
    assert training.TrainingConfig(**fb[1].training).lr_decay == "cosine"  # the NS phase anneals
    for small in ("kinship", "nations", "umls"):
        assert load_defaults(small)["phases"] == []
    # Both share the HaLE phase and the annealed NS phase but for its rate (wn18rr pins phase 0's schedule,
    # because its HaLE-alone training section — what --loss=hale trains — differs from the defaults). The
    # NS rates are the fourteenth round's: 1e-3 on WN18RR and in defaults.json (CoDEx-M: 0.294 against 0.278
    # at 5e-3), 1.5e-3 on FB15k-237 (sixteenth round, two seeds).
    wn, fb_effective = _effective_phases("wn18rr"), _effective_phases("fb15k-237")
    codex = _effective_phases("codex-m")
    assert (wn[2][2]["learning_rate"], fb_effective[1][2]["learning_rate"]) == (0.001, 0.0015)
    assert [(until, loss["name"], train["learning_rate"]) for until, loss, train in codex][1:] == [
        (1.0, "negative_sampling", 0.001)]
    assert fb_effective == [wn[0], (wn[2][0], wn[2][1], {**wn[2][2], "learning_rate": 0.0015})]


def _effective_phases(dataset: str) -> list[tuple[float, dict, dict]]:
    config = load_defaults(dataset)
    base = {"optimizer": "adam", "optimizer_params": {}, "learning_rate": None, "lr_decay": "none"}
    base.update({k: v for k, v in config["training"].items() if k in base})
    return [(p["until"], p["loss"], {**base, **p.get("training", {})}) for p in config["phases"]]


@pytest.mark.parametrize("flag", ["loss", "negatives", "temperature", "learning_rate", "optimizer"])
def test_a_single_loss_flag_replaces_the_phases(flag: str) -> None:
    value = {"loss": "softmax", "negatives": "all", "temperature": 1.0, "learning_rate": 0.1,
             "optimizer": "adagrad"}[flag]
    assert resolve_config("wn18rr", {flag: value}, [])["phases"] == []
    assert resolve_config("wn18rr", {"model": "attH"}, [])["phases"]  # other flags keep them


def test_another_loss_flag_drops_the_configured_loss_parameters() -> None:
    """wn18rr configures HaLE keys (negatives, num_samples, ...): --loss=softmax must not inherit them (it
    failed validation with "loss.negatives: unknown key"); --loss=hale, in any spelling, keeps them."""
    from pipelines.validate import validate_config

    notices: list[str] = []
    config = resolve_config("wn18rr", {"loss": "softmax", "temperature": None}, [], notices)
    assert config["loss"] == {"name": "softmax"}
    assert any("do not apply" in notice for notice in notices)
    validate_config(config)
    assert resolve_config("wn18rr", {"loss": "softmax"}, ["loss.label_smoothing=0.1"])["loss"] == {
        "name": "softmax", "label_smoothing": 0.1}
    for spelling in ("hale", "HaLE"):
        kept = resolve_config("wn18rr", {"loss": spelling}, [])["loss"]
        assert kept["num_samples"] == load_defaults("wn18rr")["loss"]["num_samples"], spelling
    with_temperature = resolve_config("wn18rr", {"loss": "negative_sampling", "temperature": None}, [])["loss"]
    assert with_temperature == {"name": "negative_sampling"}


def test_set_phases_wins_over_the_single_loss_rule() -> None:
    config = resolve_config("wn18rr", {"loss": "softmax"}, ['phases=[{"until": 0.5}, {"until": 1.0}]'])
    assert config["phases"] == [{"until": 0.5}, {"until": 1.0}]
    assert resolve_config("wn18rr", {}, ["phases=[]"])["phases"] == []


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match="phase"):
        resolve_config("wn18rr", {}, ["phase.until=1"])


def test_fb15k237_extends_wn18rr_and_changes_only_its_budget_hale_alone_sample_and_phases() -> None:
    from pipelines.config import config_sources

    fb, wn = load_defaults("fb15k-237"), load_defaults("wn18rr")
    assert "extends" not in fb and fb["training"]["time_budget_s"] == 900 != wn["training"]["time_budget_s"]
    # HaLE alone (--loss=hale): WN18RR's measured recipe samples 256 entities ∝ answer count^0.75 with
    # λ3 = 1; FB15k-237 keeps the 4,096 uniform samples / 0.3 it was measured with (frequency sampling
    # costs 0.025 there; docs/ablation.md, tenth and twelfth rounds).
    assert (wn["loss"]["num_samples"], wn["loss"]["n3_weight"], wn["loss"]["sampling"]) == (256, 1.0, "frequency")
    assert (fb["loss"]["num_samples"], fb["loss"]["n3_weight"], fb["loss"]["sampling"]) == (4096, 0.3, "uniform")
    # The default run: WN18RR's shared-negatives middle phase is not FB15k-237's (eleventh round), and the
    # NS phase's rate differs (fourteenth round).
    wn_last = wn["phases"][2]
    assert fb["phases"] == [wn["phases"][0],
                            {**wn_last, "training": {**wn_last["training"], "learning_rate": 0.0015}}]
    same = {**fb, "training": {**fb["training"], "time_budget_s": wn["training"]["time_budget_s"]},
            "loss": {**fb["loss"], "num_samples": 256, "n3_weight": 1.0, "sampling": "frequency"},
            "phases": wn["phases"]}
    assert same == wn
    sources = config_sources("fb15k-237", None)  # a key's source is the file in the chain that set it last
    assert sources[("loss", "name")].endswith("wn18rr.json")
    assert sources[("loss", "num_samples")].endswith("fb15k-237.json")
    assert sources[("training", "time_budget_s")].endswith("fb15k-237.json")


def _configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **files: dict) -> None:
    monkeypatch.setattr("pipelines.config.CONFIG_DIR", tmp_path)
    (tmp_path / "defaults.json").write_text(json.dumps({"training": {"batch_size": 10, "seed": 1}}))
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))


def test_extends_chains_resolve_the_furthest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _configs(tmp_path, monkeypatch, a={"training": {"batch_size": 20, "seed": 2}},
             b={"extends": "a", "training": {"seed": 3}}, c={"extends": "b", "loss": {"name": "softmax"}})
    assert load_defaults("c") == {"training": {"batch_size": 20, "seed": 3}, "loss": {"name": "softmax"}}


@pytest.mark.parametrize(("files", "message"), [
    ({"a": {"extends": "nope"}}, r"a\.json: extends 'nope', which is not a dataset config; known: \['a'\]"),
    ({"a": {"extends": "defaults"}}, r"a\.json: extends 'defaults', which is not a dataset config"),
    ({"a": {"extends": 3}}, r"a\.json: 'extends' must name another config"),
    ({"a": {"extends": "b"}, "b": {"extends": "a"}}, r"a\.json: configs extend each other in a cycle \(a -> b -> a\)"),
    ({"a": {"extends": "a"}}, r"cycle \(a -> a\)"),
])
def test_a_bad_extends_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict,
                                      message: str) -> None:
    _configs(tmp_path, monkeypatch, **files)
    with pytest.raises(ConfigError, match=message):
        load_defaults("a")


def test_the_defaults_cannot_extend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _configs(tmp_path, monkeypatch, a={})
    (tmp_path / "defaults.json").write_text(json.dumps({"extends": "a"}))
    with pytest.raises(ConfigError, match=r"defaults\.json: the defaults cannot extend another config"):
        load_defaults("a")


def test_training_recipe_is_the_pipeline_config_without_the_run_schedule() -> None:
    from pipelines.config import SCHEDULE_FIELDS, training_recipe

    config, recipe = load_defaults("wn18rr"), training_recipe("wn18rr")
    assert recipe["loss"] == config["loss"] and recipe["phases"] == config["phases"]
    assert not set(recipe["training"]) & set(SCHEDULE_FIELDS)
    assert recipe["training"] == {k: v for k, v in config["training"].items() if k not in SCHEDULE_FIELDS}
    assert {"time_budget_s", "patience"} <= set(config["training"])  # so the filter is exercised
    assert training_recipe("kinship")["phases"] == []


def test_multi_worker_refuses_in_batch_hale_before_any_component() -> None:
    from pipelines.config import ConfigError, load_defaults
    from pipelines.validate import check_multi_worker_losses

    # The default recipe's first phase is in-batch HaLE; kinship trains in-batch HaLE alone.
    for dataset, where in (("wn18rr", "phases[0].loss"), ("kinship", "loss")):
        with pytest.raises(ConfigError, match=rf"^{re.escape(where)}: HaLE's in-batch negatives"):
            check_multi_worker_losses(load_defaults(dataset))
    sampled = {**load_defaults("wn18rr"), "phases": []}  # wn18rr's HaLE alone: sampled negatives
    check_multi_worker_losses(sampled)
    check_multi_worker_losses({"loss": {"name": "hale", "negatives": "all"}, "phases": []})
    with pytest.raises(ConfigError):
        check_multi_worker_losses({"loss": {"name": "hale", "negatives": "sampled", "add_in_batch": True}})
