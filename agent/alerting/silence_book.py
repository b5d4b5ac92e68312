"""The agent's silences: kept in memory, written through to the state file.

Creating, listing and ending silences for ``/api/v1/silences``. The matching itself
is in :mod:`agent.alerting.silences`; the table in :mod:`agent.storage.silences`.
A state file that cannot be read at start gives no silences (logged); one that
cannot be written makes create and end fail with :class:`sqlite3.Error`, leaving
the silences as they were.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.alerting.silences import Silence, SilenceError, SilenceSet, parse_silence
from agent.storage.silences import SilenceTable

__all__ = ["SilenceBook"]

logger = logging.getLogger(__name__)


class SilenceBook:
    """Silences of one agent, durable in its state file.

    Args:
        path: the SQLite state file.
        clock: wall-clock source (Unix seconds).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._table: SilenceTable | None = None
        self.silences = SilenceSet()
        try:
            self._table = SilenceTable.open(path)
            records = self._table.load()
        except sqlite3.Error as exc:
            logger.error("silences unavailable (state file %s): %s", path, exc)
            return
        for record in records:
            try:
                self.silences.add(Silence.from_record(record))
            except SilenceError as exc:
                logger.warning("skipped a stored silence: %s", exc)

    def close(self) -> None:
        """Close the table's connection."""
        if self._table is not None:
            self._table.close()
            self._table = None

    def create(self, body: Any) -> Silence:
        """Validate and store a silence.

        Raises:
            SilenceError: for a bad request (the message names the field).
            sqlite3.Error: when the state file cannot be written.
        """
        now = self._clock()
        silence = parse_silence(body, now=now, new_id=str(uuid.uuid4()))
        self._save(silence)
        self.silences.add(silence)
        logger.info(
            "silence %s created by %r until %s: %s",
            silence.id,
            silence.created_by,
            silence.to_json(now)["ends_at"],
            ", ".join(str(m) for m in silence.matchers),
        )
        return silence

    def listing(self) -> list[dict[str, Any]]:
        """Every silence (active, pending and recently expired), newest first."""
        now = self._clock()
        gone = self.silences.prune(now=now)
        if gone and self._table is not None:
            try:
                self._table.delete(gone)
            except sqlite3.Error as exc:
                logger.warning("could not forget expired silences: %s", exc)
        return [s.to_json(now) for s in self.silences.all()]

    def expire(self, silence_id: str) -> Silence | None:
        """End a silence now; None when no silence with that id is in force.

        Raises:
            sqlite3.Error: when the state file cannot be written (the silence stays).
        """
        current = self.silences.get(silence_id)
        ended = self.silences.expire(silence_id, now=self._clock())
        if current is None or ended is None:
            return None
        try:
            self._save(ended)
        except sqlite3.Error:
            self.silences.add(current)
            raise
        logger.info("silence %s ended", silence_id)
        return ended

    def _save(self, silence: Silence) -> None:
        if self._table is None:
            raise sqlite3.OperationalError("the silences table is not available")
        self._table.save(silence.to_record())
