"""Watch mode: persistent sessions with reconnect, re-initialisation and liveness.

:class:`WatchSession` holds one connection per ``watch`` check; :class:`WatchStats`
is what metrics read from it at scrape time. See docs/watch.md.
"""

from __future__ import annotations

from agent.watch.liveness import WatchStats
from agent.watch.session import GOING_AWAY, WatchSession

__all__ = ["GOING_AWAY", "WatchSession", "WatchStats"]
