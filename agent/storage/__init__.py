"""The agent's one SQLite file: result history, alert state and the alert outbox.

:class:`Store` composes the modules of this package (the file and its connections,
history, alert state, outbox, maintenance); callers use it and the row types.
"""

from __future__ import annotations

from agent.storage.database import DB_FILENAME
from agent.storage.faults import StateError
from agent.storage.history import DEFAULT_HISTORY_SIZE
from agent.storage.maintenance import DEFAULT_STATE_MAX_BYTES, MIN_STATE_MAX_BYTES
from agent.storage.outbox import DONE_RETENTION, NewOutboxRow, OutboxRow
from agent.storage.store import Store

__all__ = [
    "DB_FILENAME",
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_STATE_MAX_BYTES",
    "DONE_RETENTION",
    "MIN_STATE_MAX_BYTES",
    "NewOutboxRow",
    "OutboxRow",
    "StateError",
    "Store",
]
