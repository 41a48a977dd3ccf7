"""Pipeline configuration: per-dataset defaults in ``configs/``, overridden by flags, saved with the run.

Resolution (later wins): ``configs/defaults.json`` → the config ``<dataset>.json`` extends, if any (its
``"extends": "<other dataset>"`` key) → ``configs/<dataset>.json`` → the specific flags
(``--model``, ``--dim``, ``--time_budget`` …) → ``--set section.key=value`` overrides (any field, values
parsed as JSON when they parse, else kept as strings; ``--set phases=[…]`` replaces the phase list and
``--set phases=[]`` trains the ``loss`` alone). A single-run flag (:data:`SINGLE_RUN_FLAGS`, e.g. ``--loss``)
given with a phased configuration trains that one loss: it replaces the phases, and says so in a notice.
The typed, validated result is :class:`pipelines.run_config.RunConfig`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["FLAG_KEYS", "FLAG_PATHS", "SINGLE_RUN_FLAGS", "ConfigError", "config_sources", "load_defaults", "merge",
           "parse_duration", "parse_overrides", "resolve_config", "training_recipe"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = ("model", "model_config", "loss", "training", "phases", "transform", "evaluator")
# A dataset config may start from another's (``{"extends": "wn18rr", "training": {...}}``): one recipe, one file.
EXTENDS = "extends"
# Flags that describe a single-loss run: given on the command line, they replace the default phases (unless
# ``--set phases=…`` is given too), so that ``--loss=softmax`` trains softmax and nothing else; the
# replacement is announced (resolve_config's ``notices``).
SINGLE_RUN_FLAGS = ("loss", "negatives", "temperature", "learning_rate", "optimizer")
# Transform parameters that come from flags of their own (--runner, --beam_options, --num_workers), not the config.
PIPELINE_TRANSFORM_PARAMS = ("beam_runner", "beam_options", "num_workers")
# TrainingConfig fields that set a run's limits and schedule rather than how it learns (benchmarks set their own).
SCHEDULE_FIELDS = ("time_budget_s", "max_epochs", "max_steps", "patience", "validate_every_s",
                   "validate_every_steps", "checkpoint_every_s", "checkpoint_every_steps")

# The specific flags that set one config key (section, key); ``--time_budget``, ``--validate_every`` and
# ``--min_mrr`` are converted first (see :func:`resolve_config`) and listed in :data:`FLAG_PATHS`.
FLAG_KEYS: dict[str, tuple[str, str]] = {
    "dim": ("model_config", "dim"), "activation": ("model_config", "activation"),
    "loss": ("loss", "name"), "negatives": ("loss", "negatives"), "temperature": ("loss", "temperature"),
    "batch_size": ("training", "batch_size"), "learning_rate": ("training", "learning_rate"),
    "optimizer": ("training", "optimizer"), "max_epochs": ("training", "max_epochs"),
    "patience": ("training", "patience"), "seed": ("training", "seed"),
    "num_shards": ("transform", "num_shards"), "unseen_policy": ("transform", "unseen_policy"),
}
# Every flag that sets a config value, by the key path it sets (for error messages that name the flag).
FLAG_PATHS: dict[str, tuple[str, ...]] = {
    "model": ("model",), **FLAG_KEYS, "time_budget": ("training", "time_budget_s"),
    "validate_every": ("training", "validate_every_s"), "min_mrr": ("evaluator", "thresholds", "mrr"),
}


class ConfigError(ValueError):
    """A bad flag or config value; the message names the flag or file."""


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (dicts merge; other values replace)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - set(SECTIONS) - {EXTENDS})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {[*SECTIONS, EXTENDS]}")
    if EXTENDS in data and not (isinstance(data[EXTENDS], str) and data[EXTENDS]):
        raise ConfigError(f"{path}: {EXTENDS!r} must name another config (e.g. \"wn18rr\"), got {data[EXTENDS]!r}")
    return data


def _config_layers(dataset: str) -> list[tuple[Path, dict[str, Any]]]:
    """The files a dataset's configuration is read from and their sections, later ones winning:
    ``defaults.json``, then the chain of configs ``<dataset>.json`` extends (the furthest first), then
    ``<dataset>.json``. Each file is read once; its ``extends`` key is resolved here, not merged."""
    defaults = CONFIG_DIR / "defaults.json"
    chain: list[tuple[Path, dict[str, Any]]] = []
    path = CONFIG_DIR / f"{dataset}.json"
    while dataset != "defaults" and path.exists():
        seen = [earlier for earlier, _ in chain]
        if path in seen:
            cycle = " -> ".join(p.stem for p in [*seen, path])
            raise ConfigError(f"{chain[0][0]}: configs extend each other in a cycle ({cycle})")
        sections = _read(path)
        parent = sections.pop(EXTENDS, None)
        chain.append((path, sections))
        if parent is None:
            break
        target = CONFIG_DIR / f"{parent}.json"
        if parent == "defaults" or not target.exists():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem != "defaults")
            raise ConfigError(f"{path}: extends {parent!r}, which is not a dataset config; known: {known}")
        path = target
    base = _read(defaults)
    if EXTENDS in base:
        raise ConfigError(f"{defaults}: the defaults cannot extend another config")
    return [(defaults, base), *reversed(chain)]


def load_defaults(dataset: str) -> dict[str, Any]:
    """``defaults.json`` merged with ``<dataset>.json`` (and the configs it extends) when it exists."""
    config: dict[str, Any] = {}
    for _, sections in _config_layers(dataset):
        config = merge(config, sections)
    return config


def _leaf_paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def config_sources(dataset: str, overrides: list[str] | None) -> dict[tuple[str, ...], str]:
    """Where each key path of the resolved configuration (before the flags) was set: the config file that
    set it last, or ``--set``; for error messages that name the file a bad key came from."""
    sources: dict[tuple[str, ...], str] = {}
    for path, sections in _config_layers(dataset):
        sources.update({leaf: str(path) for leaf in _leaf_paths(sections)})
    sources.update({leaf: "--set" for leaf in _leaf_paths(parse_overrides(overrides))})
    return sources


def training_recipe(dataset: str) -> dict[str, Any]:
    """What the pipeline trains for ``dataset``: ``model_config``, ``loss``, ``phases`` and the ``training``
    fields without the run's limits and schedule (:data:`SCHEDULE_FIELDS`), for benchmarks that train the
    pipeline's recipe under their own budget."""
    config = load_defaults(dataset)
    return {
        "model_config": dict(config.get("model_config", {})), "loss": dict(config["loss"]),
        "phases": list(config.get("phases") or []),
        "training": {k: v for k, v in config.get("training", {}).items() if k not in SCHEDULE_FIELDS},
    }


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")


def parse_duration(text: str, flag: str = "--time_budget") -> float:
    """``"90s"``, ``"10m"``, ``"1.5h"``, ``"600"`` (seconds) → seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"{flag}: cannot read {text!r} as a duration (examples: 90s, 10m, 1.5h)")
    value = float(match.group(1)) * {"ms": 1e-3, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[match.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{flag}: must be a positive, finite duration, got {text!r}")
    return value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["training.batch_size=1000", "loss.negatives=in_batch"]`` → nested dict."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts) or parts[0] not in SECTIONS:
            raise ConfigError(f"--set: expected section.key=value with section in {list(SECTIONS)}, got {item!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _same_loss(name: str, other: Any) -> bool:
    """Whether two loss names (any spelling or alias) name the same registered loss."""
    from hale_tf.losses.base import LOSSES

    if not isinstance(other, str) or name not in LOSSES or other not in LOSSES:
        return name == other
    return LOSSES.canonical(name) == LOSSES.canonical(other)


def resolve_config(dataset: str, flag_values: dict[str, Any], overrides: list[str] | None,
                   notices: list[str] | None = None) -> dict[str, Any]:
    """The run's configuration: defaults, then the specific flags (None = not given), then ``--set``.

    A single-run flag (:data:`SINGLE_RUN_FLAGS`) with a phased configuration and no ``--set phases=…``
    replaces the phases with that one loss; a one-line notice saying so is appended to ``notices``.
    """
    config = load_defaults(dataset)
    updates: dict[str, Any] = {}
    if flag_values.get("model"):
        updates["model"] = flag_values["model"]
    for flag, (section, key) in FLAG_KEYS.items():
        if flag_values.get(flag) is not None:
            updates.setdefault(section, {})[key] = flag_values[flag]
    if flag_values.get("time_budget") is not None:
        updates.setdefault("training", {})["time_budget_s"] = parse_duration(flag_values["time_budget"])
    if flag_values.get("validate_every") is not None:
        updates.setdefault("training", {})["validate_every_s"] = parse_duration(
            flag_values["validate_every"], "--validate_every")
    if flag_values.get("min_mrr") is not None:
        updates.setdefault("evaluator", {}).setdefault("thresholds", {})["mrr"] = flag_values["min_mrr"]
    flag_loss = flag_values.get("loss")
    if flag_loss is not None and not _same_loss(flag_loss, config.get("loss", {}).get("name")):
        # The configured loss parameters belong to another loss (wn18rr's HaLE keys mean nothing to
        # softmax): --loss=<other> starts from that loss's own defaults (the other loss flags still apply).
        if notices is not None and len(config.get("loss", {})) > 1:
            notices.append(f"--loss={flag_loss}: the configured {config['loss'].get('name')} parameters of {dataset} "
                           f"do not apply; {flag_loss} uses its own defaults (--set loss.KEY=VALUE to change them)")
        config["loss"] = {}
    config = merge(config, updates)
    explicit = parse_overrides(overrides)
    single = [f"--{flag}" for flag in SINGLE_RUN_FLAGS if flag_values.get(flag) is not None]
    if config.get("phases") and "phases" not in explicit and single:
        if notices is not None:
            notices.append(f"{', '.join(single)} trains one loss: the {len(config['phases'])} configured phases "
                           f"of {dataset} are replaced (--set='phases=[...]' keeps phases)")
        config["phases"] = []
    return merge(config, explicit)
