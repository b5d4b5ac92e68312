"""Probe kinds: the registry mapping a check ``kind`` to the function that runs it.

``PROBES`` is the only list of valid kinds; config validation reads its keys. A
:data:`ProbeFn` never raises for a failing target: it returns a failed
:class:`~agent.result.ProbeResult`, enforces ``check.timeout`` itself, and lets only
``asyncio.CancelledError`` propagate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agent.config import CheckConfig
from agent.probes import probe, relay, watch
from agent.result import ProbeResult

__all__ = ["PROBES", "ProbeFn"]

#: Runs one check once and returns what it measured.
ProbeFn = Callable[[CheckConfig], Awaitable[ProbeResult]]

#: kind -> probe function. Each kind's module registers exactly one entry here.
PROBES: dict[str, ProbeFn] = {
    "probe": probe.run,
    "relay": relay.run,
    "watch": watch.run,
}
