"""Small statistics helpers for benchmark figures."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["ms", "pct", "summary"]


def pct(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    """Seconds to milliseconds rounded to 3 decimals (microsecond resolution)."""
    return None if value is None else round(value * 1000.0, 3)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p99 and max of a list of seconds, in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": ms(pct(values, 50)),
        "p99_ms": ms(pct(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }
