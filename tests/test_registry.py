"""The one Registry class, and a templated test over every entry of every family.

Each family lists a construction case per registered name below; ``test_every_entry_has_a_case`` fails when
an entry is registered without one (PyKEEN's MetaTestCase idea), so a new model, loss, activation, optimiser
or dataset cannot land untested by the templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from hale_tf import activations, losses, models
from hale_tf.data import registry as datasets
from hale_tf.data.errors import UnknownDatasetError
from hale_tf.registry import Registry, normalize_name
from hale_tf.training import optimizers

# -- the Registry class ------------------------------------------------------------------------------------


def test_one_normalisation_rule() -> None:
    assert normalize_name(" Rot_H ") == normalize_name("roth") == normalize_name("ROT-H") == "roth"
    reg: Registry[int] = Registry("thing")
    reg.register("FB15k-237", 1, aliases=("fb237",))
    assert reg.entry("fb15k_237") == 1 and reg.entry("FB237") == 1
    assert reg.canonical("fb15k237") == "FB15k-237"
    assert reg.available() == ["FB15k-237"]  # aliases are not listed
    assert "fb-15k-237" in reg and "fb15k" not in reg and 3 not in reg


def test_duplicates_are_refused_also_through_aliases() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a_b", 1, aliases=("c",))
    with pytest.raises(ValueError, match="thing name 'A-B' is already registered"):
        reg.register("A-B", 2)
    with pytest.raises(ValueError, match="'c' is already registered"):
        reg.register("d", 3, aliases=("c",))


def test_unknown_names_list_the_family_and_suggest_the_closest() -> None:
    reg: Registry[Callable[..., Any]] = Registry("widget", error=KeyError, hint=" (or build your own)")
    reg.register("sprocket", dict)
    reg.register("gear", dict)
    with pytest.raises(KeyError, match=r"unknown widget 'sprockett' \(did you mean 'sprocket'\?\); "
                                       r"available: gear, sprocket \(or build your own\)"):
        reg.entry("sprockett")


def test_build_turns_a_bad_keyword_into_a_one_line_value_error() -> None:
    reg: Registry[Callable[..., Any]] = Registry("widget")
    reg.register("pair", lambda a, b=2: (a, b))
    assert reg.build("PAIR", a=1) == (1, 2)
    with pytest.raises(ValueError, match=r"bad parameters for widget 'pair': .*'c'"):
        reg.build("pair", a=1, c=3)


def test_registration_order_is_kept_when_asked() -> None:
    reg: Registry[int] = Registry("thing", sort=False)
    for i, name in enumerate(["zeta", "alpha", "Mid"]):
        reg.register(name, i)
    assert reg.available() == ["zeta", "alpha", "Mid"]
    assert Registry("thing").available() == []


# -- every entry of every family ------------------------------------------------------------------------------
# A case per registered name: the keyword arguments that build it. Keep these tables complete.

MODEL_SIZES = {"num_entities": 7, "num_relations": 4, "dim": 4}
MODEL_CASES: dict[str, dict[str, Any]] = {
    name: dict(MODEL_SIZES) for name in ["transE", "muRE", "rotE", "refE", "attE", "rotH", "refH", "attH"]
}
LOSS_CASES: dict[str, dict[str, Any]] = {
    "hale": {"negatives": "sampled", "num_samples": 3},
    "negative_sampling": {"num_negatives": 3},
    "self_adversarial": {"num_negatives": 3},
    "one_vs_all": {},
    "softmax": {},
    "bce": {},
}
ACTIVATION_CASES: dict[str, dict[str, Any]] = {
    "identity": {}, "power": {"p": 1.5}, "exp": {"beta": 2.0}, "a_lin": {"beta": 10.0}, "a_non": {"gamma": 5.0},
}
OPTIMIZER_CASES: dict[str, dict[str, Any]] = {"adam": {}, "adamw": {"weight_decay": 0.01}, "lazy_adam": {}}
DATASET_CASES: dict[str, dict[str, Any]] = {
    name: {} for name in ["yago3-10", "wn18rr", "fb15k-237", "codex-s", "codex-m", "kinship", "umls", "nations"]
}


def _build_model(name: str, case: dict[str, Any]) -> Any:
    return models.get(name, **case)


def _build_optimizer(name: str, case: dict[str, Any]) -> Any:
    return optimizers.get(name, learning_rate=0.01, **case)


FAMILIES: dict[str, tuple[Registry[Any], dict[str, dict[str, Any]], Callable[[str, dict[str, Any]], Any]]] = {
    "model": (models.registry.MODELS, MODEL_CASES, _build_model),
    "loss": (losses.base.LOSSES, LOSS_CASES, lambda name, case: losses.get(name, **case)),
    "activation": (activations.ACTIVATIONS, ACTIVATION_CASES, lambda name, case: activations.get(name, **case)),
    "optimizer": (optimizers.OPTIMIZERS, OPTIMIZER_CASES, _build_optimizer),
    "dataset": (datasets.DATASETS, DATASET_CASES, lambda name, case: datasets.get_info(name)),
}
ENTRIES = [(family, name) for family, (reg, _, _) in FAMILIES.items() for name in reg.available()]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_entry_has_a_case(family: str) -> None:
    registry, cases, _ = FAMILIES[family]
    assert sorted(cases, key=str.lower) == sorted(registry.available(), key=str.lower), (
        f"every registered {family} needs a case in tests/test_registry.py (and only registered ones)"
    )


def _config(obj: Any) -> dict[str, Any]:
    """What an entry says about itself: ``get_config()`` or a dataset record's fields (without the
    instance names Keras makes unique: ``lazy_adam_1``)."""
    if hasattr(obj, "get_config"):
        config = dict(obj.get_config())
        if hasattr(obj, "variables"):  # a Keras object
            config.pop("name", None)
        return config
    return dict(vars(obj))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


@pytest.mark.parametrize(("family", "name"), ENTRIES)
def test_each_entry_builds_under_any_spelling_and_keeps_its_case(family: str, name: str) -> None:
    registry, cases, build = FAMILIES[family]
    case = cases[name]
    built = build(name, case)
    # Any spelling finds the same entry (case, "-", "_" do not matter).
    respelled = name.upper().replace("-", "_")
    assert registry.canonical(respelled) == name
    again = build(respelled, case)
    assert type(again) is type(built) and _same(_config(again), _config(built))
    # The case's own parameters arrived (not silently dropped).
    config = _config(built)
    for key, value in case.items():
        if key in config:
            assert _same(config[key], value), (family, name, key)
    if family == "loss":  # a saved loss config rebuilds the same loss (bce/softmax are one_vs_all kinds)
        assert _same(losses.get(config).get_config(), config)
    if family == "activation":
        assert _same(activations.get(**config).get_config(), config)


@pytest.mark.parametrize(
    ("family", "bad", "error"),
    [
        ("model", "rotHH", ValueError),
        ("loss", "halee", ValueError),
        ("activation", "exq", ValueError),
        ("dataset", "wn18", UnknownDatasetError),
    ],
)
def test_unknown_names_fail_with_the_family_and_a_suggestion(family: str, bad: str, error: type) -> None:
    registry, _, _ = FAMILIES[family]
    with pytest.raises(error, match=rf"unknown {family} '{bad}' \(did you mean '[^']+'\?\); available: "):
        registry.entry(bad)


def test_each_familys_get_reports_bad_parameters_as_one_line() -> None:
    with pytest.raises(ValueError, match=r"RotH: \{'nonsense': 1\}"):  # Keras' own one-line message
        models.get("roth", num_entities=3, num_relations=2, dim=4, nonsense=1)
    with pytest.raises(ValueError, match=r"bad parameters for loss 'hale'"):
        losses.get("HaLE", nonsense=1)
    with pytest.raises(ValueError, match=r"not recognized: \{'nonsense': 1\}"):  # Keras' own message
        optimizers.get("lazy-adam", learning_rate=0.1, nonsense=1)
