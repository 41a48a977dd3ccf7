"""The run configuration, checked once before any component runs.

:func:`validate_config` takes the resolved configuration (``configs/`` defaults, the flags and the
``--set`` overrides merged by :func:`pipelines.config.resolve_config`) and checks every section against
what will consume it, using the consumers themselves rather than a second copy of their rules:

- ``model``: a name of ``hale_tf.models.available()``, returned in its registry spelling (``roth`` →
  ``rotH``, so the fingerprint and the cache do not depend on the spelling); ``model_config``: the keys and
  value types of the model's ``get_config()``, then a tiny model is built with them (range errors);
- ``loss`` and each phase's ``loss``: a name of ``hale_tf.losses.available()`` and the keys and types of
  that loss's ``get_config()``, then the loss is built;
- ``training`` and each phase's ``training``: the fields and type hints of
  :class:`hale_tf.training.TrainingConfig` (numbers finite), ``TrainingConfig.from_dict`` (ranges), and
  the optimiser built by ``hale_tf.training.optimizers.get`` (name, ``optimizer_params`` keys and numbers);
- ``transform`` and ``evaluator``: the parameters of the Transform and Evaluator components (``thresholds``
  are headline metric names with finite minimums);
- the Beam runner (:func:`check_runner`).

Every problem is a :class:`~pipelines.config.ConfigError` with a one-line message that starts with the
key (``training.learning_rate``) or, when a flag set it, the flag (``--learning_rate (training.learning_rate)``);
an unknown key gets a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.config import FLAG_PATHS, PIPELINE_TRANSFORM_PARAMS, SECTIONS, ConfigError

__all__ = ["check_runner", "validate_config"]

Key = str | int
_POSITIVE_TRANSFORM_PARAMS = ("num_shards", "queries_per_example", "chunk_bytes")
_INT64_MAX = 2**63 - 1
_KINDS: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                          dict: "an object", list: "a list", Any: "a number, string or boolean"}


class _Labels:
    """Names a key path in messages: ``training.learning_rate``, or ``--learning_rate (…)`` for a flag; and
    remembers the last path it named, so that an error can say which file (or ``--set``) set that key."""

    def __init__(self, given_flags: Iterable[str], sources: Mapping[tuple[str, ...], str] | None = None) -> None:
        self.flags = {path: flag for flag, path in FLAG_PATHS.items() if flag in set(given_flags)}
        self.sources = dict(sources or {})
        self.last: tuple[Key, ...] = ()

    def __call__(self, *path: Key) -> str:
        self.last = path
        dotted = ""
        for part in path:
            dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else part)
        flag = self.flags.get(tuple(path))
        return f"--{flag} ({dotted})" if flag else dotted

    def origin(self) -> str | None:
        """The file or ``--set`` that set the last named key (its nearest enclosing key with a known
        origin), None when a flag set it or nothing is known."""
        path = tuple(str(p) for p in self.last if not isinstance(p, int))
        if tuple(self.last) in self.flags:
            return None
        for end in range(len(path), 0, -1):
            if path[:end] in self.sources:
                return self.sources[path[:end]]
        return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known: {', '.join(known)}"


def _check_keys(label: _Labels, path: tuple[Key, ...], values: Mapping[str, Any], known: Iterable[str]) -> None:
    known = set(known)
    for key in values:
        if key not in known:
            raise ConfigError(f"{label(*path, key)}: unknown key; {_suggest(str(key), known)}")


def _expect_object(label: _Labels, path: tuple[Key, ...], value: Any, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{label(*path)}: expected an object like {example}, got {_show(value)}")
    return value


def _check_value(where: str, value: Any, kind: Any, optional: bool) -> None:
    """``value`` is of ``kind`` (bool, int, float, str, dict, list or Any = a JSON scalar); numbers finite."""
    if value is None:
        if optional:
            return
        raise ConfigError(f"{where}: must not be null; expected {_KINDS[kind]}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = number
    elif kind in (str, dict, list):
        ok = isinstance(value, kind)
    else:
        ok = number or isinstance(value, (bool, str))
    if not ok:
        raise ConfigError(f"{where}: expected {_KINDS[kind]}, got {_show(value)}")
    if number and (isinstance(value, int) and abs(value) > _INT64_MAX
                   or isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{where}: must be a finite number in range, got {_show(value)}")


def _kind_of(default: Any) -> tuple[Any, bool]:
    """(kind, optional) of a value like ``default`` (a ``get_config()`` entry)."""
    if default is None:
        return Any, True
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float if isinstance(default, float) else int, False
    for kind in (bool, str, dict, list):
        if isinstance(default, kind):
            return kind, False
    return Any, False


def _check_like(label: _Labels, path: tuple[Key, ...], values: Mapping[str, Any], defaults: Mapping[str, Any],
                exclude: Iterable[str] = ()) -> None:
    """Keys of ``values`` among those of ``defaults`` (minus ``exclude``), each value typed like the default
    (an int default accepts only ints; a float default any finite number; a dict default numbers inside)."""
    _check_keys(label, path, values, set(defaults) - set(exclude))
    for key, value in values.items():
        kind, optional = _kind_of(defaults[key])
        if kind is int and isinstance(value, float) and value.is_integer():
            kind = float  # 2.0 for an int field is an obvious intent; the consumer gets the number
        _check_value(label(*path, key), value, kind, optional)
        if kind is dict:
            for inner, item in value.items():
                _check_value(label(*path, key, inner), item, Any, True)


def _key_in_message(message: str, keys: Iterable[str]) -> str | None:
    """The config key a consumer's error message starts with (``"dim must be even…"`` → ``dim``)."""
    for key in sorted(keys, key=len, reverse=True):
        if message.startswith(key) or message.startswith(f"'{key}'"):
            return key
    return None


def _consumer_error(label: _Labels, path: tuple[Key, ...], values: Mapping[str, Any], err: Exception) -> ConfigError:
    key = _key_in_message(str(err), values)
    where = label(*path, key) if key is not None else label(*path)
    return ConfigError(f"{where}: {err}")


# ------------------------------------------------------------------------------------------ sections
def _check_model(label: _Labels, config: dict[str, Any]) -> str:
    from hale_tf import activations, models

    name = config.get("model")
    if not isinstance(name, str):
        raise ConfigError(f"{label('model')}: expected a model name ({', '.join(models.available())}), "
                          f"got {_show(name)}")
    try:
        canonical: str = models.get_class(name).registry_name
    except ValueError as err:
        raise ConfigError(f"{label('model')}: {err}") from None
    model_config = _expect_object(label, ("model_config",), config.get("model_config", {}), '{"dim": 32}')
    size = {"num_entities": 4, "num_relations": 4}
    defaults = models.get(canonical, **size).get_config()
    _check_like(label, ("model_config",), model_config, defaults, exclude=size)
    activation = model_config.get("activation")
    if activation is not None and (not isinstance(activation, str) or activation not in activations.ACTIVATIONS):
        raise ConfigError(f"{label('model_config', 'activation')}: {activations.ACTIVATIONS.unknown(activation)}")
    try:
        models.get(canonical, **size, **model_config)
    except (TypeError, ValueError) as err:
        raise _consumer_error(label, ("model_config",), model_config, err) from None
    return canonical


def _check_loss(label: _Labels, path: tuple[Key, ...], loss: Any) -> None:
    from hale_tf import losses

    example = '{"name": "hale", "negatives": "in_batch"}'
    loss = _expect_object(label, path, loss, example)
    name = loss.get("name")
    name_label = label(*path, "name") if label(*path, "name").startswith("--") else label(*path)
    if not isinstance(name, str):
        raise ConfigError(f"{name_label}: expected a loss name ({', '.join(losses.available())}), got {_show(name)}")
    try:
        defaults = losses.get(name).get_config()
    except ValueError as err:
        raise ConfigError(f"{name_label}: {err}") from None
    params = {k: v for k, v in loss.items() if k != "name"}
    _check_like(label, path, params, defaults, exclude=("name",))
    try:
        losses.get(dict(loss))
    except (TypeError, ValueError) as err:
        raise _consumer_error(label, path, params, err) from None


def _training_fields() -> dict[str, tuple[Any, bool]]:
    """(kind, optional) of every TrainingConfig field, from its type hints."""
    from hale_tf.training.config import training_fields

    return dict(training_fields())


def _check_training(label: _Labels, path: tuple[Key, ...], training: Mapping[str, Any],
                    changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``training`` (the run's fields, or a phase's ``changes`` applied to them, with ``path`` naming the
    phase's ``training``) as a TrainingConfig and its optimiser; returns the checked fields (``training``
    or ``changes``) with integers in float fields as floats (Keras refuses ``learning_rate=1``)."""
    from hale_tf.training import TrainingConfig, optimizers

    fields = _training_fields()
    own = dict(training if changes is None else changes)
    _check_keys(label, path, own, fields)
    for key, value in own.items():
        kind, optional = fields[key]
        _check_value(label(*path, key), value, kind, optional)
        if kind is float and value is not None:
            own[key] = float(value)
    merged = {**training, **own}
    try:
        config = TrainingConfig.from_dict(merged)
    except (TypeError, ValueError) as err:
        raise _consumer_error(label, path, own, err) from None
    where = path if changes is None or "optimizer" in own or "optimizer_params" in own else ("training",)
    try:
        defaults = optimizers.get(config.optimizer, config.learning_rate).get_config()
    except ValueError as err:
        raise ConfigError(f"{label(*where, 'optimizer')}: {err}") from None
    params = config.optimizer_params
    _check_keys(label, (*where, "optimizer_params"), params, set(defaults) - {"name", "learning_rate"})
    for key, value in params.items():
        kind, optional = _kind_of(defaults[key])
        if kind is not bool:  # every numeric optimiser parameter: a finite number (or null where allowed)
            kind, optional = float, optional or defaults[key] is None
        _check_value(label(*where, "optimizer_params", key), value, kind, optional)
    try:
        optimizers.get(config.optimizer, config.learning_rate, **params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{label(*where, 'optimizer_params')}: {err}") from None
    return own


def _check_phases(label: _Labels, config: dict[str, Any]) -> list[dict[str, Any]]:
    from hale_tf.training import parse_phases

    phases = config.get("phases") or []
    if not isinstance(phases, list):
        raise ConfigError(f"phases: expected a list of {{until, loss, training}} objects, got {_show(phases)}")
    for i, phase in enumerate(phases):
        phase = _expect_object(label, ("phases", i), phase, '{"until": 1.0, "loss": "hale"}')
        _check_keys(label, ("phases", i), phase, ("until", "loss", "training"))
        changes = _expect_object(label, ("phases", i, "training"), phase.get("training", {}),
                                 '{"learning_rate": 0.005}')
        _check_keys(label, ("phases", i, "training"), changes, _training_fields())
    try:
        parsed = parse_phases(phases) if phases else []
    except (TypeError, ValueError) as err:
        raise ConfigError(f"phases: {err}") from None
    checked = []
    for i, phase in enumerate(parsed):
        if phase.loss is not None:
            _check_loss(label, ("phases", i, "loss"), dict(phase.loss))
        out = dict(phases[i])
        if phase.training:
            out["training"] = _check_training(label, ("phases", i, "training"), config["training"],
                                              dict(phase.training))
        checked.append(out)
    return checked


def _check_transform(label: _Labels, config: dict[str, Any]) -> None:
    from components.base import ComponentError, resolve_params
    from components.transform import TRANSFORM_SPEC

    transform = _expect_object(label, ("transform",), config.get("transform", {}), '{"num_shards": 8}')
    _check_keys(label, ("transform",), transform, set(TRANSFORM_SPEC.parameters) - set(PIPELINE_TRANSFORM_PARAMS))
    for key, value in transform.items():
        _check_value(label("transform", key), value, TRANSFORM_SPEC.parameters[key].type,
                     TRANSFORM_SPEC.parameters[key].optional)
        if key in _POSITIVE_TRANSFORM_PARAMS and value < 1:
            raise ConfigError(f"{label('transform', key)}: must be >= 1, got {value!r}")
    try:
        resolve_params(TRANSFORM_SPEC, transform)
    except ComponentError as err:
        raise _consumer_error(label, ("transform",), transform, err) from None


def _headline_metrics() -> list[str]:
    from hale_tf.evaluation import evaluate
    from hale_tf.evaluation.result import compute_metrics

    hits_at = inspect.signature(evaluate).parameters["hits_at"].default
    return list(compute_metrics([1.0], tuple(hits_at)))


def _check_evaluator(label: _Labels, config: dict[str, Any]) -> dict[str, Any]:
    from components.base import ComponentError, resolve_params
    from components.evaluator import EVALUATOR_SPEC
    from hale_tf.evaluation.memory import parse_memory

    evaluator = _expect_object(label, ("evaluator",), config.get("evaluator", {}), '{"thresholds": {"mrr": 0.3}}')
    _check_keys(label, ("evaluator",), evaluator, EVALUATOR_SPEC.parameters)
    try:
        resolve_params(EVALUATOR_SPEC, evaluator)
    except ComponentError as err:
        raise ConfigError(f"{label('evaluator')}: {err}") from None
    thresholds = evaluator.get("thresholds", {})
    _check_keys(label, ("evaluator", "thresholds"), thresholds, _headline_metrics())
    for name, minimum in thresholds.items():
        _check_value(label("evaluator", "thresholds", name), minimum, float, False)
    if "memory_budget" in evaluator:
        try:
            parse_memory(evaluator["memory_budget"])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{label('evaluator', 'memory_budget')}: {err}") from None
    return {**evaluator, "thresholds": {k: float(v) for k, v in thresholds.items()}}


def check_runner(name: str) -> None:
    """``name`` is a Beam runner Beam knows (``DirectRunner``, ``flink`` …) or a dotted class path."""
    from apache_beam.options.pipeline_options import StandardOptions

    from components.transform import runner_class

    if runner_class(name).endswith(".DaskRunner"):
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise ConfigError("--runner=DaskRunner needs dask and distributed: pip install "
                              "'apache-beam[dask]==2.77.0'") from None
        return
    known = {n.lower() for n in StandardOptions.KNOWN_RUNNER_NAMES}
    key = name.strip().lower()
    if "." in name or key in known or f"{key}runner" in known:
        return
    raise ConfigError(f"--runner: unknown Beam runner {name!r}; "
                      f"{_suggest(name, [*StandardOptions.KNOWN_RUNNER_NAMES, 'DaskRunner'])} "
                      f"(or the dotted path of a PipelineRunner class)")


def validate_config(config: Mapping[str, Any], given_flags: Iterable[str] = (),
                    sources: Mapping[tuple[str, ...], str] | None = None) -> dict[str, Any]:
    """Check the resolved run configuration (see the module docstring) and return it normalised.

    Args:
        config: the output of :func:`pipelines.config.resolve_config`.
        given_flags: names of the flags given on the command line (without ``--``), so that an error in a
            value a flag set names that flag.
        sources: where each key path was set (:func:`pipelines.config.config_sources`), so that an error in
            a value a file or ``--set`` set ends with ``(set in <file>)`` or ``(set by --set)``.

    Raises:
        ConfigError: the first problem found, as one line naming the key (and flag, or file).
    """
    label = _Labels(given_flags, sources)
    try:
        return _validate(label, config)
    except ConfigError as err:
        origin = label.origin() if sources else None
        if origin is None:
            raise
        raise ConfigError(f"{err} ({'set by --set' if origin == '--set' else f'set in {origin}'})") from None


def _validate(label: _Labels, config: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(config)
    _check_keys(label, (), out, SECTIONS)
    out["model"] = _check_model(label, out)
    _check_loss(label, ("loss",), out.get("loss"))
    out["training"] = _expect_object(label, ("training",), out.get("training", {}), '{"batch_size": 500}')
    out["training"] = _check_training(label, ("training",), out["training"])
    out["phases"] = _check_phases(label, out)
    _check_transform(label, out)
    out["evaluator"] = _check_evaluator(label, out)
    return out


def check_multi_worker_losses(config: dict[str, Any]) -> None:
    """Refuse, before any component runs, a loss that cannot train across worker processes.

    HaLE's in-batch negatives gather every replica's answers, whose count differs per replica; between
    processes (MultiWorkerMirroredStrategy) the collective then aborts mid-training with a shape mismatch.
    """
    losses = [config.get("loss") or {}, *[(p.get("loss") or {}) for p in config.get("phases") or []]]
    for i, loss in enumerate(losses):
        if loss.get("name", "hale") != "hale":
            continue
        in_batch = loss.get("negatives", "in_batch") == "in_batch" or loss.get("add_in_batch", False)
        if in_batch and (i == 0 and not config.get("phases") or i > 0):
            where = "loss" if i == 0 else f"phases[{i - 1}].loss"
            raise ConfigError(
                f"{where}: HaLE's in-batch negatives do not train across worker processes yet (their count "
                "differs per worker); use --negatives=all or --negatives=sampled (with --set='phases=[]' when "
                "the default phases use in-batch HaLE)")
