"""The two WebSocket connections a probe runs on, behind one interface, and a held one.

:mod:`~agent.probes.connections.base` is the interface (read it first);
:mod:`~agent.probes.connections.reading` keeps messages for whoever reads them,
:mod:`~agent.probes.connections.discarding` drops them as they are parsed.
:mod:`~agent.probes.connections.delivering` takes over an open reading connection
and hands each message to a callback (a plain watch session, once initialised).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__: list[str] = []

if TYPE_CHECKING:
    from agent.probes.connections.base import Connection
    from agent.probes.connections.discarding import DiscardingConnection
    from agent.probes.connections.reading import ReadingConnection

    def _both_implement_the_interface(
        reading: ReadingConnection, discarding: DiscardingConnection
    ) -> tuple[Connection, Connection]:
        # Never called: mypy --strict holds both classes to the interface here.
        return reading, discarding
