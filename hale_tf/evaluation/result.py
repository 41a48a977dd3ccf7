"""Evaluation results that carry their protocol, with atomic JSON output."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hale_tf.atomic import atomic_write_text

__all__ = ["EvaluationResult", "TIE_RULES", "SIDES", "RESULT_FORMAT", "compute_metrics"]

RESULT_FORMAT = "hale_tf.evaluation.EvaluationResult/1"
TIE_RULES = ("pessimistic", "optimistic", "realistic")
SIDES = ("head", "tail", "both")


def compute_metrics(ranks: np.ndarray, hits_at: tuple[int, ...]) -> dict[str, float]:
    """MRR = mean(1/rank), MR = mean(rank), Hits@k = mean(rank ≤ k); NaN for an empty set."""
    x = np.asarray(ranks, np.float64)
    out: dict[str, float] = {}
    if x.size == 0:
        out["mrr"] = out["mr"] = math.nan
        for k in hits_at:
            out[f"hits@{k}"] = math.nan
        return out
    out["mrr"] = float(np.mean(1.0 / x))
    out["mr"] = float(np.mean(x))
    for k in hits_at:
        out[f"hits@{k}"] = float(np.mean(x <= k))
    return out


def _jsonable(obj: Any) -> Any:
    """Make NumPy scalars/arrays and NaN JSON-safe (NaN → null)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@dataclass
class EvaluationResult:
    """Link-prediction metrics plus the protocol that produced them.

    Attributes:
        metrics: ``metrics[side][tie_rule][name]`` for side in ``head``/``tail``/``both`` (only the sides
            evaluated; ``both`` when both were) and tie rule ``pessimistic``/``optimistic``/``realistic``;
            names ``mrr``, ``mr``, ``hits@k``.
        num_queries: number of ranked queries per side.
        per_relation: ``per_relation[base_relation_id] = {"name": str | None, "num_queries": {side: n},
            "metrics": {side: {tie_rule: {name: value}}}}``.
        protocol: how the numbers were obtained (setting, filter splits, headline tie rule, sides, counts,
            model, checkpoint, seconds, chunking and memory estimate).
        ranks: optional per-query ranks (``return_ranks=True``); not serialised.
    """

    metrics: dict[str, dict[str, dict[str, float]]]
    num_queries: dict[str, int]
    per_relation: dict[int, dict[str, Any]]
    protocol: dict[str, Any]
    ranks: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ access
    @property
    def headline_side(self) -> str:
        """``both`` when both sides were evaluated, else the single side."""
        return str(self.protocol.get("headline_side", "both" if "both" in self.metrics else
                                     next(iter(self.metrics))))

    @property
    def headline_tie_rule(self) -> str:
        return str(self.protocol.get("headline_tie_rule", "pessimistic"))

    def get(self, name: str, side: str | None = None, tie_rule: str | None = None) -> float:
        """One metric; defaults to the headline side and tie rule (pessimistic)."""
        side = side or self.headline_side
        tie_rule = tie_rule or self.headline_tie_rule
        try:
            return self.metrics[side][tie_rule][name]
        except KeyError as e:
            raise KeyError(f"no metric {name!r} for side={side!r}, tie_rule={tie_rule!r}") from e

    @property
    def headline(self) -> dict[str, float]:
        """The headline metrics: both directions (if evaluated), pessimistic ties."""
        return dict(self.metrics[self.headline_side][self.headline_tie_rule])

    @property
    def mrr(self) -> float:
        return self.get("mrr")

    @property
    def mr(self) -> float:
        return self.get("mr")

    def hits(self, k: int) -> float:
        return self.get(f"hits@{k}")

    def summary(self) -> str:
        """One line: ``filtered pessimistic both: MRR 0.412 MR 1234.5 H@1 … (10000 queries)``."""
        h = self.headline
        parts = " ".join(
            f"{'MRR' if k == 'mrr' else 'MR' if k == 'mr' else k.replace('hits', 'H')} "
            + (f"{v:.4f}" if k != "mr" else f"{v:.1f}")
            for k, v in h.items()
        )
        return (
            f"{self.protocol.get('setting', '?')} {self.headline_tie_rule} {self.headline_side}: {parts} "
            f"({self.num_queries.get(self.headline_side, 0)} queries)"
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``format``, ``headline``, ``metrics``, ``num_queries``, ``per_relation``, ``protocol``."""
        return _jsonable(
            {
                "format": RESULT_FORMAT,
                "headline": self.headline,
                "metrics": self.metrics,
                "num_queries": self.num_queries,
                "per_relation": {str(k): v for k, v in self.per_relation.items()},
                "protocol": self.protocol,
            }
        )

    def to_json(self, path: str | os.PathLike, indent: int = 2) -> Path:
        """Write :meth:`to_dict` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=indent, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationResult:
        """Inverse of :meth:`to_dict` (null metric values come back as NaN)."""
        if d.get("format") != RESULT_FORMAT:
            raise ValueError(f"not an evaluation result (format {d.get('format')!r})")

        def nan(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: nan(v) for k, v in x.items()}
            return math.nan if x is None else x

        return cls(
            metrics=nan(d["metrics"]),
            num_queries=dict(d["num_queries"]),
            per_relation={
                int(k): {**v, "metrics": nan(v["metrics"])} for k, v in d.get("per_relation", {}).items()
            },
            protocol=dict(d["protocol"]),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> EvaluationResult:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
