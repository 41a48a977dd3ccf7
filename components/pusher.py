"""Pusher: exports the blessed model as a self-contained serving SavedModel.

Output artifact (type ``PushedModel``)::

    push.json       {"pushed": bool, "saved_model": path or null, "reason": ...}
    saved_model/    the SavedModel of hale_tf.export (only when pushed)

When blessed, the SavedModel is also copied to ``<serving_dir>/<version>/`` (TensorFlow Serving's
layout: integer version directories) when ``serving_dir`` is given.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from components._transformed import TransformedData
from components.base import Artifact, Component, ComponentSpec, Parameter, write_json
from components.evaluator import is_blessed

__all__ = ["PUSHER", "PUSHER_SPEC"]

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
        version_dir = Path(params["serving_dir"]) / str(int(time.time()))
        tmp = version_dir.with_name(f".{version_dir.name}.tmp")
        shutil.copytree(output_dir / "saved_model", tmp)
        tmp.replace(version_dir)
        served = str(version_dir)
    write_json(output_dir / "push.json", {"pushed": True, "saved_model": "saved_model", "serving_copy": served})


PUSHER = Component(spec=PUSHER_SPEC, executor=_execute)
