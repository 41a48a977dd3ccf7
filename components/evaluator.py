"""Evaluator: filtered ranking metrics of the trained model on a split, and a blessing.

Output artifact (type ``ModelEvaluation``)::

    metrics.json    hale_tf.evaluation.EvaluationResult: metrics for head/tail/both, per relation, all three
                    tie rules, and the protocol (filtered/raw, filter splits, tie rule, sides, counts, model,
                    seconds)
    blessing.json   {"blessed": bool, "thresholds": {...}, "values": {...}, "failed": [...], "num_queries": n,
                    "reasons": [...]}  (strict JSON: a NaN metric is written as null)

A model is *blessed* when every threshold holds (headline metrics: filtered, pessimistic, both sides;
names as in ``EvaluationResult.headline``, e.g. ``{"mrr": 0.3, "hits@10": 0.5}``), at least one query was
ranked and every headline metric is finite (:func:`judge`).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from components._transformed import TransformedData
from components.base import Artifact, Component, ComponentError, ComponentSpec, Parameter, write_json

__all__ = ["EVALUATOR", "EVALUATOR_SPEC", "is_blessed", "judge"]

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
    version="2",
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
    blessing = judge(headline, int(result.num_queries.get(result.headline_side, 0)), params["thresholds"])
    write_json(output_dir / "blessing.json", blessing)
    logger.info("Evaluator: %s", result.summary())
    if not blessing["blessed"]:
        logger.warning("Evaluator: not blessed: %s", "; ".join(blessing["reasons"]))


def judge(headline: dict[str, float], num_queries: int, thresholds: dict[str, Any]) -> dict[str, Any]:
    """The blessing: every threshold holds, *and* the evaluation ranked at least one query, *and* every
    headline metric is finite. An empty evaluation (MRR NaN) or a NaN metric never blesses, nor does a
    threshold that is not a finite number (NaN compares false with everything)."""
    failed = []
    for name, minimum in thresholds.items():
        value = headline.get(name, math.nan)
        if not (math.isfinite(float(minimum)) and math.isfinite(value) and value >= float(minimum)):
            failed.append(name)
    reasons = [f"{name} {headline.get(name)} below the threshold {thresholds[name]}" for name in failed]
    if num_queries <= 0:
        reasons.append("no queries were ranked (every triple of the split was dropped?)")
    non_finite = sorted(name for name, value in headline.items() if not math.isfinite(value))
    if non_finite:
        reasons.append(f"non-finite metric(s) {non_finite}")
    return {"blessed": not reasons, "thresholds": thresholds, "values": headline, "failed": failed,
            "num_queries": num_queries, "reasons": reasons}


def is_blessed(evaluation: Artifact) -> bool:
    return json.loads(evaluation.path("blessing.json").read_text(encoding="utf-8")).get("blessed") is True


EVALUATOR = Component(spec=EVALUATOR_SPEC, executor=_execute)
