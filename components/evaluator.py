"""Evaluator: filtered ranking metrics of the trained model on a split, and a blessing.

Output artifact (type ``ModelEvaluation``)::

    metrics.json    hale_tf.evaluation.EvaluationResult: metrics for head/tail/both, per relation, all three
                    tie rules, and the protocol (filtered/raw, filter splits, tie rule, sides, counts, model,
                    seconds)
    blessing.json   {"blessed": bool, "thresholds": {...}, "values": {...}, "failed": [...]}

A model is *blessed* when every threshold holds (headline metrics: filtered, pessimistic, both sides;
names as in ``EvaluationResult.headline``, e.g. ``{"mrr": 0.3, "hits@10": 0.5}``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from components._transformed import TransformedData
from components.base import Artifact, Component, ComponentError, ComponentSpec, Parameter, write_json

__all__ = ["EVALUATOR", "EVALUATOR_SPEC", "is_blessed"]

logger = logging.getLogger(__name__)

EVALUATOR_SPEC = ComponentSpec(
    name="Evaluator",
    artifact_type="ModelEvaluation",
    inputs={"model": "Model", "transformed": "Transformed"},
    outputs=("metrics.json", "blessing.json"),
    parameters={
        "split": Parameter(str, "test", "split to rank", choices=("valid", "test")),
        "thresholds": Parameter(dict, {}, "minimum headline metrics for the blessing, e.g. {'mrr': 0.3}"),
        "memory_budget": Parameter(str, "1GiB", "evaluator memory budget", affects_output=False),
    },
    version="1",
)


def _execute(inputs: dict[str, Artifact], output_dir: Path, params: dict[str, Any]) -> None:
    from hale_tf import models
    from hale_tf.evaluation import evaluate

    data = TransformedData(inputs["transformed"])
    model_dir = inputs["model"].path("model")
    model = models.load_model(model_dir)
    result = evaluate(
        model, data.triples(params["split"]), num_relations=data.num_relations,
        filter_index=data.filter_index(), split=params["split"], memory_budget=params["memory_budget"],
        checkpoint=str(model_dir),
    )
    result.to_json(output_dir / "metrics.json")
    headline = {k: float(v) for k, v in result.headline.items()}
    unknown = sorted(set(params["thresholds"]) - set(headline))
    if unknown:
        raise ComponentError(f"Evaluator: unknown threshold metric(s) {unknown}; known: {sorted(headline)}")
    failed = [name for name, minimum in params["thresholds"].items() if headline[name] < float(minimum)]
    write_json(output_dir / "blessing.json", {
        "blessed": not failed, "thresholds": params["thresholds"], "values": headline, "failed": failed,
    })
    logger.info("Evaluator: %s", result.summary())


def is_blessed(evaluation: Artifact) -> bool:
    return bool(json.loads(evaluation.path("blessing.json").read_text(encoding="utf-8"))["blessed"])


EVALUATOR = Component(spec=EVALUATOR_SPEC, executor=_execute)
