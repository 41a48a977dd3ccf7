"""The systems compared: PyKEEN's strongest d = 32 recipes and hale-tf with its defaults.

Size: every system stores 32 real numbers per entity. hale-tf's ``dim=32`` is 32 real coordinates;
PyKEEN's complex models (RotatE, ComplEx) count ``embedding_dim`` in complex numbers, so they get
``embedding_dim=16`` (= 32 real numbers, the convention of the low-dimensional KGE literature, e.g.
Chami et al. 2020). ``--pykeen-config`` overrides any field (e.g. ``{"pykeen-rotate": {"model_kwargs":
{"embedding_dim": 32}}}`` for 32 complex dimensions).

PyKEEN recipes (see README.md for the reasoning):

- ``pykeen-rotate``: RotatE (Sun et al. 2019) trained the way its paper does: sLCWA with uniform
  negatives (head or tail) and the self-adversarial NSSA loss, adversarial temperature α from the paper
  (WN18RR 0.5, FB15k-237 and others 1), Adam. Adapted to d=16 and a CPU budget, from short sweeps on
  Kinship/UMLS (15 s each): margin γ=2 (the paper's γ=6–9 suit its own initialisation at d=500–1000;
  with PyKEEN's Xavier initialisation at d=16 they stall: Kinship valid MRR 0.05 at γ=9 or 3 with lr
  5e-3, 0.55 at γ=1, lr 0.02; UMLS 0.72 at γ=2 vs 0.54–0.64 at γ=1 and 0.57 at γ=0.5), lr 0.02 (paper:
  5e-5 for hours on a GPU), and 64 negatives per positive instead of 256–1024: PyKEEN scores negatives
  by broadcasting, so 64 gives 2.3× the epochs of 256 in the same time (WN18RR, measured).
- ``pykeen-complex``: ComplEx with reciprocal relations trained 1-vs-all (LCWA: each (h, r) query
  against every entity) with softmax cross-entropy, Adam — the "1-N + CE" recipe that Ruffinelli et al.
  (2020) and Lacroix et al. (2018) found strongest; PyKEEN's default ComplEx regulariser is kept.
  lr 0.05: PyKEEN's ComplEx initialisation starts with large scores that small learning rates work off
  slowly (UMLS, 30 epochs: lr 0.01 → valid MRR 0.08, 0.05 → 0.76, 0.1 → 0.80).

Any recipe may also set ``num_workers`` (PyTorch data-loader processes; default 0).
"""

from __future__ import annotations

import copy
from typing import Any

#: Base recipes; per-dataset adjustments in ``PYKEEN_DATASET_OVERRIDES``.
PYKEEN_RECIPES: dict[str, dict[str, Any]] = {
    "pykeen-rotate": {
        "description": "RotatE + self-adversarial negative sampling (NSSA loss), sLCWA, Adam",
        "model": "RotatE",
        "model_kwargs": {"embedding_dim": 16},
        "loss": "NSSALoss",
        "loss_kwargs": {"margin": 2.0, "adversarial_temperature": 1.0},
        "training_loop": "slcwa",
        "negative_sampler": "basic",
        "negative_sampler_kwargs": {"num_negs_per_pos": 64},
        "optimizer": "Adam",
        "optimizer_kwargs": {"lr": 0.02},
        "batch_size": 512,
        "create_inverse_triples": False,
    },
    "pykeen-complex": {
        "description": "ComplEx with reciprocal relations, 1-vs-all (LCWA) + softmax cross-entropy, Adam",
        "model": "ComplEx",
        "model_kwargs": {"embedding_dim": 16},
        "loss": "CrossEntropyLoss",
        "loss_kwargs": {},
        "training_loop": "lcwa",
        "optimizer": "Adam",
        "optimizer_kwargs": {"lr": 0.05},
        "batch_size": 256,
        "create_inverse_triples": True,
    },
}

PYKEEN_DATASET_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "wn18rr": {"pykeen-rotate": {"loss_kwargs": {"adversarial_temperature": 0.5}}},
    "fb15k-237": {"pykeen-rotate": {"loss_kwargs": {"adversarial_temperature": 1.0}}},
}

#: hale-tf systems at d = 32, trained as the pipeline trains them (loss, settings and phases of
#: ``pipelines/configs/<dataset>.json``; see hale_runner.py). ``fit`` overrides training settings.
HALE_SYSTEMS: dict[str, dict[str, Any]] = {
    "hale-rotH": {"model": "rotH", "model_kwargs": {"dim": 32}, "fit": {}},
    "hale-attH": {"model": "attH", "model_kwargs": {"dim": 32}, "fit": {}},
}

#: Models for the evaluator-only timing (random weights, test split). TransE d=32 exists in both
#: libraries and is the like-for-like comparison; the others are each side's benchmarked models.
EVALBENCH_HALE: list[dict[str, Any]] = [
    {"name": "TransE-d32", "model": "transE", "model_kwargs": {"dim": 32}},
    {"name": "RotH-d32", "model": "rotH", "model_kwargs": {"dim": 32}},
]
EVALBENCH_PYKEEN: list[dict[str, Any]] = [
    {"name": "TransE-d32", "model": "TransE", "model_kwargs": {"embedding_dim": 32, "scoring_fct_norm": 2},
     "create_inverse_triples": True},
    {"name": "RotatE-d16c", "model": "RotatE", "model_kwargs": {"embedding_dim": 16},
     "create_inverse_triples": False, "sweep": False},
]

SYSTEMS: list[str] = [*HALE_SYSTEMS, *PYKEEN_RECIPES]
#: Default training budgets (seconds) per dataset; others use ``DEFAULT_BUDGET_S``.
DATASET_BUDGETS: dict[str, float] = {"wn18rr": 600.0, "fb15k-237": 600.0, "codex-m": 900.0}
DEFAULT_BUDGET_S = 600.0
DEFAULT_DATASETS: list[str] = ["wn18rr", "fb15k-237", "codex-m"]


def deep_merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def add_variants(pykeen_config: dict[str, Any], hale_config: dict[str, Any]) -> list[str]:
    """Register extra systems given as ``{"NAME": {"base": "pykeen-rotate", ...overrides}}`` in the config
    overrides (e.g. a learning-rate sweep of a PyKEEN recipe); returns their names."""
    added = []
    for table, config in ((PYKEEN_RECIPES, pykeen_config), (HALE_SYSTEMS, hale_config)):
        for name, value in list(config.items()):
            if name in table or not isinstance(value, dict) or "base" not in value:
                continue
            if value["base"] not in table:
                raise ValueError(f"variant {name!r}: unknown base {value['base']!r}")
            table[name] = {"base": value["base"]}
            added.append(name)
    return added


def _resolve(table: dict[str, dict[str, Any]], system: str) -> tuple[str, dict[str, Any]]:
    """(root recipe name, recipe) with a variant's ``base`` chain resolved."""
    entry = table[system]
    if "base" in entry:
        root, base = _resolve(table, entry["base"])
        return root, deep_merge(base, {k: v for k, v in entry.items() if k != "base"})
    return system, copy.deepcopy(entry)


def library_of(system: str) -> str:
    if system in HALE_SYSTEMS:
        return "hale_tf"
    if system in PYKEEN_RECIPES:
        return "pykeen"
    raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")


def pykeen_recipe(system: str, dataset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exact PyKEEN recipe for ``dataset``: base, then the dataset adjustment, then the user's override."""
    root, recipe = _resolve(PYKEEN_RECIPES, system)
    recipe = deep_merge(recipe, PYKEEN_DATASET_OVERRIDES.get(dataset, {}).get(root))
    override = {k: v for k, v in ((overrides or {}).get(system) or {}).items() if k != "base"}
    return {**deep_merge(recipe, override), "base_recipe": root}


def hale_config(system: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hale-tf system's config; ``overrides`` either per system (``{"hale-rotH": {...}}``) or for all."""
    overrides = overrides or {}
    per_system = overrides.get(system) if any(k in HALE_SYSTEMS for k in overrides) else overrides
    _, config = _resolve(HALE_SYSTEMS, system)
    return deep_merge(config, {k: v for k, v in (per_system or {}).items() if k != "base"})
