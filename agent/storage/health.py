"""Whether the state file takes writes, said once per change instead of once per write.

A full disk makes every write fail, hundreds a second: the log gets one line when
writing starts failing and one when it works again, and the metrics carry the count
(``wsprobe_state_write_errors_total``) and the state (``wsprobe_state_healthy``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["StateHealth"]

log = logging.getLogger(__name__)


class StateHealth:
    """Write health of one state file; thread-safe (the writer thread reports too).

    Args:
        path: the state file, named in the log lines.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._healthy = True
        self._errors = 0

    @property
    def healthy(self) -> bool:
        """False from a failed write until a write succeeds again."""
        return self._healthy

    @property
    def write_errors(self) -> int:
        """Writes that failed since start."""
        return self._errors

    def snapshot(self) -> tuple[bool, int]:
        """``(healthy, write_errors)`` for the metrics."""
        with self._lock:
            return self._healthy, self._errors

    def failed(self, exc: BaseException, *, what: str) -> None:
        """Count a failed write; log once when the file stops taking writes.

        Args:
            exc: the error the write raised.
            what: what could not be written ("alert state", "result history").
        """
        with self._lock:
            self._errors += 1
            first = self._healthy
            self._healthy = False
        if first:
            log.error(
                "state file %s: cannot write %s (%s); probing and alerting go on, alert"
                " state and events are kept in memory (not durable) until the file takes"
                " writes again",
                self.path,
                what,
                _cause(exc),
            )

    def recovered(self, detail: str = "") -> bool:
        """Mark writes as working; log once if they were failing.

        Args:
            detail: what was written back, appended to the log line.

        Returns:
            True when this ended a failing period.
        """
        with self._lock:
            was_failing = not self._healthy
            self._healthy = True
        if was_failing:
            log.warning("state file %s: writing works again%s", self.path, detail)
        return was_failing


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # StateError: the cause without the path again
    if isinstance(cause, str):
        return cause
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, sqlite3.Error):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
