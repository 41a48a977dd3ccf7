"""The run configuration as one typed, frozen object, loaded and checked once at the command line.

:class:`RunConfig` declares the sections of ``configs/*.json`` and holds each as the object its consumer
takes: ``training`` a :class:`hale_tf.training.TrainingConfig`, ``loss`` a :class:`hale_tf.training.LossSpec`,
``phases`` :class:`hale_tf.training.Phase` objects; ``model``/``model_config`` the model's registry name and
keyword arguments; ``transform`` and ``evaluator`` the parameters of those components (declared by their
specs). :meth:`RunConfig.from_dict` refuses an unknown section or key and a value of the wrong type with one
line naming it; :meth:`RunConfig.to_dict` is the JSON form (the config files' format, ``run_config.json``,
``--print_config``) and reads back to an equal object.

:func:`load_run_config` is what the CLI calls: the files, the flags and ``--set`` merged
(:func:`pipelines.config.resolve_config`), every value checked against its consumer
(:func:`pipelines.validate.validate_config`, whose messages name the flag, or the file or ``--set`` that
set the key), then this object, which the pipeline passes down to the components.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.config import PIPELINE_TRANSFORM_PARAMS, SECTIONS, ConfigError, config_sources, resolve_config

if TYPE_CHECKING:
    from hale_tf.training import LossSpec, Phase, TrainingConfig

__all__ = ["RunConfig", "load_run_config"]

def _loss_spec_default() -> LossSpec:
    from hale_tf.training import LossSpec

    return LossSpec("hale")


def _training_default() -> TrainingConfig:
    from hale_tf.training import TrainingConfig

    return TrainingConfig()


@dataclass(frozen=True)
class RunConfig:
    """What a pipeline run trains and how it is judged (where and how it runs are ``PipelineOptions``)."""

    model: str = "rotH"
    model_config: Mapping[str, Any] = field(default_factory=dict)
    # Built on first use: hale_tf.training imports TensorFlow, which reading a config file does not need.
    loss: LossSpec = field(default_factory=_loss_spec_default)
    training: TrainingConfig = field(default_factory=_training_default)
    phases: tuple[Phase, ...] = ()
    transform: Mapping[str, Any] = field(default_factory=dict)
    evaluator: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON data, in the config files' format."""
        return {
            "model": self.model, "model_config": dict(self.model_config), "loss": self.loss.to_dict(),
            "training": self.training.to_dict(), "phases": [p.to_dict() for p in self.phases],
            "transform": dict(self.transform), "evaluator": dict(self.evaluator),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> RunConfig:
        """The configuration from JSON data (absent sections take their defaults).

        Raises:
            ConfigError: an unknown section or key, or a value of the wrong type; one line that starts with
                ``source`` (a file name, ``--set`` …) and names the key.
        """
        from components.base import ComponentError, resolve_params
        from components.evaluator import EVALUATOR_SPEC
        from components.transform import TRANSFORM_SPEC
        from hale_tf.training import LossSpec, TrainingConfig, parse_phases

        def fail(key: str, message: str) -> ConfigError:
            return ConfigError(f"{source}: {key}: {message}")

        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: expected a JSON object with the sections {list(SECTIONS)}")
        unknown = sorted(set(values) - set(SECTIONS))
        if unknown:
            raise fail(unknown[0], f"unknown section; known: {', '.join(SECTIONS)}")
        out: dict[str, Any] = {}
        if "model" in values:
            if not isinstance(values["model"], str):
                raise fail("model", f"expected a model name, got {values['model']!r}")
            out["model"] = values["model"]
        for name in ("model_config", "transform", "evaluator"):
            if not isinstance(values.get(name, {}), Mapping):
                raise fail(name, f"expected an object, got {values[name]!r}")
            out[name] = dict(values.get(name, {}))
        for name, reader in (("loss", LossSpec.from_dict), ("training", TrainingConfig.from_dict)):
            if name in values:
                if not isinstance(values[name], Mapping):
                    raise fail(name, f"expected an object, got {values[name]!r}")
                try:
                    out[name] = reader(dict(values[name]))
                except (TypeError, ValueError) as err:  # TrainingConfig's messages start with the field
                    field_name, sep, rest = str(err).partition(": ")
                    if sep and field_name.isidentifier():
                        raise fail(f"{name}.{field_name}", rest) from None
                    raise fail(name, str(err)) from None
        phases = values.get("phases") or []
        try:
            out["phases"] = tuple(parse_phases(phases)) if phases else ()
        except (TypeError, ValueError, AttributeError) as err:
            raise fail("phases", str(err)) from None
        for name, spec, exclude in (("transform", TRANSFORM_SPEC, PIPELINE_TRANSFORM_PARAMS),
                                    ("evaluator", EVALUATOR_SPEC, ())):
            bad = sorted(set(out[name]) & set(exclude))
            if bad:
                raise fail(f"{name}.{bad[0]}", "unknown key (set by a flag of its own)")
            try:
                resolve_params(spec, out[name])
            except ComponentError as err:
                raise fail(name, str(err)) from None
        return cls(**out)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` (section names as keyword arguments)."""
        return dataclasses.replace(self, **changes)


def load_run_config(dataset: str, flag_values: Mapping[str, Any], overrides: list[str] | None,
                    given_flags: Iterable[str] = (), notices: list[str] | None = None) -> RunConfig:
    """The run's configuration for ``dataset``: ``configs/`` files, then the flags (``flag_values``, None =
    not given), then ``--set`` ``overrides``, validated against the consumers and typed.

    Args:
        given_flags: the flags given on the command line, so that a bad value names its flag.
        notices: collects one-line notices about the resolution (a single-run flag replacing the phases).

    Raises:
        ConfigError: the first problem, one line naming the flag, or the key and the file or ``--set``.
    """
    from pipelines.validate import validate_config

    resolved = resolve_config(dataset, dict(flag_values), overrides, notices=notices)
    checked = validate_config(resolved, given_flags, sources=config_sources(dataset, overrides))
    return RunConfig.from_dict(checked, source="configuration")
