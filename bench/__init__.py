"""wsprobe benchmarks: throughput, capacity, memory, start-up and measurement fidelity.

Run with ``make bench`` (or ``python -m bench --quick`` for a smoke run). Not part of
the test suite; see bench/README.md for the scenarios and the measured figures.
"""

from __future__ import annotations

__all__: list[str] = []
