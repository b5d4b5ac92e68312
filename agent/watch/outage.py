"""Why a held session is down, how often it went down, and its grace clock.

:class:`Outage` logs each disconnect or failed attempt (its message scrubbed of the
check's secrets), counts it by reason (the
``reconnects`` of :class:`~agent.watch.liveness.WatchStats`), keeps the latest reason
and message for the liveness verdict, and holds one ``loop.call_later`` handle while
the grace period can still end: when it does, ``on_grace`` judges liveness again.
Raises nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent.config import CheckConfig
from agent.probes.dial.opener import check_secrets
from agent.redact import scrub
from agent.result import Reason

__all__ = ["Outage"]

log = logging.getLogger(__name__)


class Outage:
    """The session's disconnect record and grace timer.

    Args:
        check: the watch check (its name for the log, its secrets to scrub).
        on_grace: called once the grace period armed by :meth:`went_down` ends.
    """

    __slots__ = ("_check", "_grace", "_on_grace", "message", "reason", "reconnects")

    def __init__(self, check: CheckConfig, *, on_grace: Callable[[], None]) -> None:
        self._check = check
        self._on_grace = on_grace
        self._grace: asyncio.TimerHandle | None = None
        #: Disconnects and failed attempts by reason value.
        self.reconnects: dict[str, int] = {}
        self.reason: Reason | None = None
        self.message = ""

    def went_down(
        self, reason: Reason, message: str, *, grace_left: float, was_connected: bool
    ) -> None:
        """Log and count one disconnect or failed attempt; start the grace clock
        unless it runs.

        Args:
            reason: why; counted under its value.
            message: the cause (scrubbed here).
            grace_left: seconds until the grace period ends, if the clock is not running.
            was_connected: a connection ended (else an attempt failed).
        """
        message = scrub(message, check_secrets(self._check))
        what = "disconnected" if was_connected else "connection attempt failed"
        log.info("watch %s: %s (%s): %s", self._check.name, what, reason.value, message)
        self.reconnects[reason.value] = self.reconnects.get(reason.value, 0) + 1
        self.reason, self.message = reason, message
        if self._grace is None:
            self._grace = asyncio.get_running_loop().call_later(grace_left, self._grace_ended)

    def cancel_grace(self) -> None:
        """Stop the grace clock (connected again, or stopping)."""
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _grace_ended(self) -> None:
        self._grace = None
        self._on_grace()
