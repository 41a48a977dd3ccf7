"""Pusher: exports the blessed model as a self-contained serving SavedModel.

Output artifact (type ``PushedModel``)::

    push.json       {"pushed": bool, "saved_model": path or null, "reason": ...}
    saved_model/    the SavedModel of hale_tf.export (only when pushed)

When blessed, the SavedModel is also copied to ``<serving_dir>/<version>/`` (TensorFlow Serving's
layout: integer version directories) when ``serving_dir`` is given. ``serving_dir`` does not change the
artifact, so a cached Pusher makes no copy: the pipeline then copies the cached SavedModel itself
(:func:`copy_to_serving`, see ``pipelines.pipeline``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from components._transformed import TransformedData
from components.base import Artifact, Component, ComponentSpec, Parameter, write_json
from components.evaluator import is_blessed
from hale_tf.atomic import publish_directory

__all__ = ["PUSHER", "PUSHER_SPEC", "copy_to_serving"]

logger = logging.getLogger(__name__)

PUSHER_SPEC = ComponentSpec(
    name="Pusher",
    artifact_type="PushedModel",
    inputs={"model": "Model", "transformed": "Transformed", "evaluation": "ModelEvaluation"},
    outputs=("push.json",),
    parameters={
        "serving_dir": Parameter(str, None, "copy the SavedModel to <serving_dir>/<version>/", optional=True,
                                 affects_output=False),
        "exclude_known_from": Parameter(str, "train", "facts that topk(..., exclude_known) leaves out",
                                        choices=("train", "none")),
    },
    version="1",
)


def _execute(inputs: dict[str, Artifact], output_dir: Path, params: dict[str, Any]) -> None:
    if not is_blessed(inputs["evaluation"]):
        write_json(output_dir / "push.json", {"pushed": False, "saved_model": None,
                                              "reason": "model not blessed by the Evaluator"})
        logger.warning("Pusher: model not blessed; nothing exported")
        return
    from hale_tf import models
    from hale_tf.export import export_saved_model

    data = TransformedData(inputs["transformed"])
    model = models.load_model(inputs["model"].path("model"))
    known = data.triples("train") if params["exclude_known_from"] == "train" else None
    export_saved_model(model, data.entity_vocab, data.relation_vocab, output_dir / "saved_model",
                       known_triples=known)
    served = None
    if params["serving_dir"]:
        served = str(copy_to_serving(output_dir / "saved_model", params["serving_dir"]))
    write_json(output_dir / "push.json", {"pushed": True, "saved_model": "saved_model", "serving_copy": served})


def copy_to_serving(saved_model: Path, serving_dir: str | os.PathLike[str]) -> Path:
    """Copy ``saved_model`` to ``<serving_dir>/<version>/`` and return that directory.

    The version is the current Unix time, or one more than the newest version already there; the copy is
    made in a hidden sibling and renamed into place (:func:`hale_tf.atomic.publish_directory`), so TensorFlow
    Serving never sees a partial model.
    """
    root = Path(serving_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    existing = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    version = max([int(time.time()), *(v + 1 for v in existing)])
    tmp = root / f".{version}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    shutil.copytree(saved_model, tmp)
    try:
        while not publish_directory(tmp, root / str(version)):  # a concurrent copy took this version
            version += 1
        return root / str(version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

PUSHER = Component(spec=PUSHER_SPEC, executor=_execute)
