"""The model family's registry: ``get("rotH", num_entities=…, num_relations=…)``, ``available()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import keras

from hale_tf.registry import Registry

__all__ = ["MODELS", "available", "get", "get_class", "register"]

#: Every registered model class (case, ``-`` and ``_`` insensitive: ``roth`` is ``rotH``).
MODELS: Registry[type] = Registry("model")
T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: register a model under ``name`` and for Keras serialisation."""

    def decorate(cls: T) -> T:
        cls.registry_name = name
        MODELS.register(name, keras.saving.register_keras_serializable(package="hale_tf")(cls))
        return cls

    return decorate


def available() -> list[str]:
    """Registered model names, in their canonical spelling (e.g. ``rotH``)."""
    return MODELS.available()


def get_class(name: str) -> type:
    """The class registered as ``name``."""
    return MODELS.entry(name)


def get(model: str, /, **config: Any) -> Any:
    """Build the model registered as ``model`` with ``config`` (the keys of its ``get_config``)."""
    return MODELS.build(model, **config)
