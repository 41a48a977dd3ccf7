"""Filtered link-prediction evaluation: ranks against all entities, both directions, three tie rules.

Typical use::

    from hale_tf.evaluation import FilterIndex, evaluate

    index = FilterIndex.from_triples({"train": train, "valid": valid, "test": test}, num_relations=R)
    result = evaluate(model, test, num_relations=R, filter_index=index, memory_budget="1GiB")
    print(result.summary())          # filtered pessimistic both: MRR … (2·|test| queries)
    result.to_json("metrics.json")   # metrics + protocol, written atomically

See :mod:`hale_tf.evaluation.evaluator` for the rank formulas.
"""

from .evaluator import (
    DEFAULT_CPU_CHUNK_BYTES,
    DEFAULT_MEMORY_BUDGET,
    MAX_QUERY_CHUNK,
    MIN_QUERY_CHUNK,
    Scorer,
    build_queries,
    evaluate,
    plan_memory,
)
from .filter_index import FILTER_INDEX_FILENAME, FilterIndex, validate_triples
from .memory import MemoryBudgetError, MemoryPlan, format_bytes, parse_memory
from .result import RESULT_FORMAT, SIDES, TIE_RULES, EvaluationResult, compute_metrics

__all__ = [
    "evaluate",
    "EvaluationResult",
    "FilterIndex",
    "MemoryBudgetError",
    "MemoryPlan",
    "Scorer",
    "plan_memory",
    "build_queries",
    "parse_memory",
    "format_bytes",
    "compute_metrics",
    "validate_triples",
    "DEFAULT_MEMORY_BUDGET",
    "MAX_QUERY_CHUNK",
    "MIN_QUERY_CHUNK",
    "DEFAULT_CPU_CHUNK_BYTES",
    "FILTER_INDEX_FILENAME",
    "RESULT_FORMAT",
    "SIDES",
    "TIE_RULES",
]
