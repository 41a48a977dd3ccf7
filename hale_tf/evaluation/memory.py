"""Memory budget parsing and the evaluator's peak-memory model.

The evaluator's working memory is dominated by the score chunk ``[B, N]``. The model used here (checked
before anything runs) is::

    peak ≈ B · N · (bytes_per_score + RANKING_BYTES_PER_SCORE)         score chunk, scorer temporaries,
                                                                         comparison masks
         + P_cap · PAIR_BYTES                                           padded filter pairs of one chunk
         + Q · QUERY_BYTES                                              query ids, ranks, pair counts

where B is the query chunk size, N the entity count, P_cap the padded number of filter pairs in the
largest chunk and Q the number of queries. Model weights, the filter index itself and the TensorFlow
runtime are resident before evaluation and are not part of the budget.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

__all__ = [
    "MemoryBudgetError",
    "MemoryPlan",
    "parse_memory",
    "format_bytes",
    "DEFAULT_BYTES_PER_SCORE",
    "RANKING_BYTES_PER_SCORE",
    "PAIR_BYTES",
    "QUERY_BYTES",
]

# Bytes the scorer needs per (query, entity) score at its peak, output included, when the scorer does not
# say (attribute ``score_all_bytes_per_score``). Measured with bench/evaluate.py at N = 123,182, B = 200:
# RotH in graph mode grew the process by 39 bytes per score in total (its closed-form hyperbolic distance
# keeps ~7 [B, N] float32 temporaries alive), under XLA by 12; TransE less. 32 + the ranking's 9 covers
# graph mode (the XLA fallback) with a margin.
DEFAULT_BYTES_PER_SCORE = 32.0
# Ranking work per score: the NaN-cleaned copy (4), one comparison mask (1) and its int32 cast (4).
RANKING_BYTES_PER_SCORE = 9.0
# Per padded filter pair: host row/answer int32 (8), device copies (8), gathered score (4),
# masks and int casts for the two comparisons (2 + 8), segment ids (4): rounded up.
PAIR_BYTES = 40
# Per query: ids (3 × 8 host + 3 × 4 device), pair spans (2 × 8), two ranks (2 × 4) + metrics scratch (32).
QUERY_BYTES = 96

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}


class MemoryBudgetError(ValueError):
    """The requested evaluation cannot fit the memory budget (raised before any scoring)."""


def parse_memory(value: int | float | str) -> int:
    """Bytes from an int/float or a string such as ``"1GiB"``, ``"512 MB"``, ``"2g"`` (G = 10⁹, GiB = 2³⁰)."""
    if isinstance(value, bool):
        raise TypeError("memory budget must be a number of bytes or a string like '1GiB'")
    if isinstance(value, (int, float)):
        out = int(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot parse memory size {value!r}; use e.g. 1073741824, '1GiB', '512MB'")
        out = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if out <= 0:
        raise ValueError(f"memory budget must be positive; got {value!r}")
    return out


def format_bytes(n: float) -> str:
    """Human-readable binary size, e.g. ``1.50 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"  # pragma: no cover


@dataclass(frozen=True)
class MemoryPlan:
    """Chosen chunking and the peak-memory estimate it implies (all sizes in bytes)."""

    query_chunk_size: int
    pair_capacity: int
    num_chunks: int
    num_entities: int
    num_queries: int
    bytes_per_score: float
    score_bytes: int
    pair_bytes: int
    query_bytes: int
    estimated_peak_bytes: int
    budget_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def estimate(
        chunk: int, num_entities: int, pair_capacity: int, num_queries: int, bytes_per_score: float
    ) -> tuple[int, int, int, int]:
        """``(score_bytes, pair_bytes, query_bytes, total)`` for one configuration (formula above)."""
        score = int(chunk * num_entities * (bytes_per_score + RANKING_BYTES_PER_SCORE))
        pairs = int(pair_capacity * PAIR_BYTES)
        queries = int(num_queries * QUERY_BYTES)
        return score, pairs, queries, score + pairs + queries
