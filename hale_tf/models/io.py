"""Save and load a model as a directory: its registry name and config (JSON) plus its weights.

Layout::

    <dir>/model.json          {"model": "rotH", "config": {...get_config()...}, "format": 1, "hale_tf": "0.1.0"}
    <dir>/model.weights.h5    Keras weights

The directory is written to a temporary sibling and renamed into place, so a crash never leaves a
half-written model that a later load would trust.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hale_tf import __version__
from hale_tf.models.registry import get

__all__ = ["MODEL_CONFIG_FILE", "WEIGHTS_FILE", "load_model", "model_spec", "save_model"]

MODEL_CONFIG_FILE = "model.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT = 1


def model_spec(model: Any) -> dict[str, Any]:
    """``{"model": registry name, "config": get_config()}``: enough to rebuild the model."""
    return {"model": type(model).registry_name, "config": model.get_config()}


def save_model(model: Any, directory: str | os.PathLike) -> Path:
    """Write ``model`` (config + weights) to ``directory``, replacing it atomically."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        payload = {**model_spec(model), "format": FORMAT, "hale_tf": __version__}
        (tmp / MODEL_CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        model.save_weights(str(tmp / WEIGHTS_FILE))
        if target.exists():
            shutil.rmtree(target)
        tmp.replace(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_model(directory: str | os.PathLike, **overrides: Any) -> Any:
    """Rebuild the model saved in ``directory`` and load its weights; ``overrides`` replace config keys."""
    path = Path(directory)
    config_path = path / MODEL_CONFIG_FILE
    try:
        payload = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{config_path}: no saved model here (expected {MODEL_CONFIG_FILE})") from None
    except ValueError as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from None
    if payload.get("format") != FORMAT:
        raise ValueError(f"{config_path}: unsupported model format {payload.get('format')!r} (expected {FORMAT})")
    model = get(payload["model"], **{**payload["config"], **overrides})
    model.load_weights(str(path / WEIGHTS_FILE))
    return model
