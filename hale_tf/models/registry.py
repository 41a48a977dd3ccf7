"""One registry for the model family: ``get("rotH", num_entities=…, num_relations=…)``, ``available()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import keras

__all__ = ["available", "get", "get_class", "register"]

_MODELS: dict[str, type] = {}
T = TypeVar("T", bound=type)


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def register(name: str) -> Callable[[T], T]:
    """Class decorator: register a model under ``name`` (case-insensitive) and for Keras serialisation."""

    def decorate(cls: T) -> T:
        key = _key(name)
        if key in _MODELS:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[key].__name__}")
        cls.registry_name = name
        _MODELS[key] = keras.saving.register_keras_serializable(package="hale_tf")(cls)
        return cls

    return decorate


def available() -> list[str]:
    """Registered model names, in their canonical spelling (e.g. ``rotH``)."""
    return sorted((cls.registry_name for cls in _MODELS.values()), key=str.lower)


def get_class(name: str) -> type:
    try:
        return _MODELS[_key(name)]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def get(model: str, /, **config: Any) -> Any:
    """Build the model registered as ``model`` with ``config`` (the keys of its ``get_config``)."""
    return get_class(model)(**config)
