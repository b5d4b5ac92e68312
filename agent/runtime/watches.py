"""The watch checks' sessions, kept in step with the configured checks.

A watch check is not scheduled: it holds one session (:mod:`agent.watch`) from the moment
it is configured until it is removed or changed, or the agent stops. An unchanged check
(equal frozen config) keeps its session across a reload. Each session's liveness results
go where the daemon says, the same recording as a scheduled run's.

Raises nothing: a session that does not stop cleanly is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from agent.config.models import CheckConfig
from agent.result import ProbeResult

if TYPE_CHECKING:
    from agent.watch import WatchSession, WatchStats

__all__ = ["WATCH_STOP_TIMEOUT", "WatchSessions"]

log = logging.getLogger(__name__)

#: Bound on closing each watch session (its own close handshake is shorter).
WATCH_STOP_TIMEOUT = 5.0


class _Sink:
    """A session's ``on_result``: records each result for the session's check.

    A slotted object of two references (~50 B) where ``functools.partial`` would be
    ~190 B (its object, an args tuple and an empty keywords dict), once per session.
    """

    __slots__ = ("check", "record")

    def __init__(
        self, record: Callable[[CheckConfig, ProbeResult], None], check: CheckConfig
    ) -> None:
        self.record = record
        self.check = check

    def __call__(self, result: ProbeResult) -> None:
        self.record(self.check, result)


class WatchSessions:
    """One running session per watch check.

    Args:
        record: called with each result a session reports, and the check it is for.
    """

    def __init__(self, *, record: Callable[[CheckConfig, ProbeResult], None]) -> None:
        self._record = record
        # The session holds its check: no (check, session) pair per entry.
        self._sessions: dict[str, WatchSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def apply(self, checks: Iterable[CheckConfig]) -> None:
        """Run a session for exactly the watch checks among ``checks``."""
        wanted = {c.name: c for c in checks if c.kind == "watch"}
        gone = [name for name, s in self._sessions.items() if wanted.get(name) != s.check]
        await self._stop(gone)
        if not wanted:
            return
        # Imported only when a watch check exists: most agents run none.
        from agent.watch import WatchSession

        for name, check in wanted.items():
            if name in self._sessions:
                continue
            session = WatchSession(check, on_result=_Sink(self._record, check))
            session.start()
            self._sessions[name] = session

    async def stop(self) -> None:
        """Close every session with 1001 (going away)."""
        await self._stop(list(self._sessions))

    def stats(self, name: str) -> WatchStats | None:
        """The session statistics of watch check ``name``, if it runs one."""
        entry = self._sessions.get(name)
        return entry.stats() if entry is not None else None

    async def _stop(self, names: list[str]) -> None:
        sessions = [self._sessions.pop(name) for name in names if name in self._sessions]
        if not sessions:
            return
        results = await asyncio.gather(
            *(asyncio.wait_for(s.stop(code=1001), WATCH_STOP_TIMEOUT) for s in sessions),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("a watch session did not stop cleanly: %r", result)
