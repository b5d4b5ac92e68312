"""Deadlines and phase clocks shared by every probe kind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent.result import ProbeResult

__all__ = ["add_phase", "bounded"]


@asynccontextmanager
async def bounded(deadline: float, limit: float | None = None) -> AsyncIterator[None]:
    """Time-box the body: until ``deadline`` (perf_counter) or ``limit`` seconds.

    Raises:
        TimeoutError: the box expired.
    """
    remaining = deadline - time.perf_counter()
    if limit is not None:
        remaining = min(remaining, limit)
    async with asyncio.timeout(max(remaining, 0.0)):
        yield


def add_phase(result: ProbeResult, phase: str, seconds: float) -> None:
    """Add ``seconds`` to ``result.phases[phase]``.

    Summed, not overwritten: a followed redirect runs the phases again.
    """
    result.phases[phase] = result.phases.get(phase, 0.0) + seconds
