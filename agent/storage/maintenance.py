"""Keeping the state directory within its bound: checkpoints, pruning, vacuum.

All of it runs in the writer thread, never on the event loop.

- **WAL.** SQLite's automatic checkpoint runs inside the COMMIT that crosses it,
  which stalled the loop for 17-28 ms at 10,000 checks, so it is off and checkpoints
  are ours. A ``PASSIVE`` checkpoint never blocks writers, but under a steady stream
  of commits it never catches up either, and the WAL is reset only after a
  checkpoint that completed: at ~200 failing runs/s the WAL grew by 6 GB/hour. So a
  ``PASSIVE`` checkpoint runs every tick (and every :data:`CHECKPOINT_ROWS` history
  rows), and once the WAL passes its limit a ``TRUNCATE`` checkpoint waits for the
  writers (at most the busy timeout), copies what the passive one left and cuts the
  file to zero. ``journal_size_limit`` cuts it back after ordinary resets too.
- **Rows.** History is bounded per check by :mod:`agent.storage.history`; finished
  outbox rows are pruned here every :data:`PRUNE_INTERVAL`.
- **Space.** The file uses ``auto_vacuum=INCREMENTAL``: freed pages are handed back
  to the file system once they add up to :data:`VACUUM_FREE_BYTES`.
- **The bound.** When the files together pass ``max_bytes``, the file is brought back
  under :data:`BOUND_TARGET` of the bound: first the oldest history rows of all checks
  go, as large a share of history as the file is over its target, with every finished
  alert event; then, while the pages in use are still over, each registered
  :class:`Shedder` (the rollups) gives up rows in its own documented order, for at
  most :data:`SHED_PASSES` passes a round. Alert state and pending events are never
  deleted to meet it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Protocol

from agent.config.settings import DEFAULT_STATE_MAX_BYTES, MIN_STATE_MAX_BYTES
from agent.storage.database import Database, Transaction
from agent.storage.history import History
from agent.storage.outbox import DONE_RETENTION, Outbox

__all__ = [
    "BOUND_TARGET",
    "CHECKPOINT_ROWS",
    "DEFAULT_STATE_MAX_BYTES",
    "MIN_STATE_MAX_BYTES",
    "PRUNE_INTERVAL",
    "SHED_PASSES",
    "VACUUM_FREE_BYTES",
    "Maintenance",
    "Shedder",
    "wal_limit",
]

log = logging.getLogger(__name__)

#: History rows written between two passive checkpoints (about 1 KiB each).
CHECKPOINT_ROWS = 2000
#: Seconds between two prunes of finished outbox rows.
PRUNE_INTERVAL = 60.0
#: Free pages worth this many bytes are handed back to the file system.
VACUUM_FREE_BYTES = 1024 * 1024
#: After trimming history for the bound, the files use at most this share of it.
BOUND_TARGET = 0.7
#: Shedding passes per round: each measures the file again (row sizes are estimates).
SHED_PASSES = 4


class Shedder(Protocol):
    """Data in the state file that may be given up, least useful first, for the bound."""

    def shed(self, *, nbytes: int) -> dict[str, int]:
        """Delete rows worth about ``nbytes`` (blocks); return rows deleted per kind."""
        ...


def wal_limit(max_bytes: int) -> int:
    """WAL bytes past which a truncating checkpoint runs: an eighth of the bound, at
    most 16 MiB (a larger WAL only makes reads slower)."""
    return max(256 * 1024, min(max_bytes // 8, 16 * 1024 * 1024))


class Maintenance:
    """The writer thread's periodic work on one state file.

    Args:
        db: the state file.
        history: the results table (trimmed for the bound).
        outbox: the outbox table (finished rows pruned).
        max_bytes: the bound for the file, its WAL and shared-memory file together.
    """

    def __init__(
        self,
        db: Database,
        history: History,
        outbox: Outbox,
        *,
        max_bytes: int = DEFAULT_STATE_MAX_BYTES,
    ) -> None:
        self._db = db
        self._history = history
        self._outbox = outbox
        self.max_bytes = max_bytes
        self._since_checkpoint = 0
        self._last_prune = 0.0
        self._over_bound_logged = False
        self._shedders: list[Shedder] = []
        #: Largest WAL and total size seen after a tick (for the benchmark and tests).
        self.peak_wal = 0
        self.peak_total = 0

    @property
    def shedders(self) -> tuple[Shedder, ...]:
        """What the bound takes rows from once history is trimmed, in order."""
        return tuple(self._shedders)

    def add_shedder(self, shedder: Shedder) -> None:
        """Let the bound take rows from ``shedder`` once history is trimmed."""
        self._shedders.append(shedder)

    def remove_shedder(self, shedder: Shedder) -> None:
        """Stop using ``shedder`` (it is closing)."""
        if shedder in self._shedders:
            self._shedders.remove(shedder)

    def rows_written(self, count: int) -> None:
        """Count history rows; a passive checkpoint after every :data:`CHECKPOINT_ROWS`."""
        self._since_checkpoint += count
        if self._since_checkpoint >= CHECKPOINT_ROWS:
            self._since_checkpoint = 0
            self.checkpoint("PASSIVE")

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Run a WAL checkpoint on the writer connection.

        Args:
            mode: ``PASSIVE``, ``FULL``, ``RESTART`` or ``TRUNCATE``.

        Returns:
            SQLite's ``(busy, wal_frames, checkpointed_frames)``; zeros once closed.
        """
        with self._db.writer() as db:
            if db is None:
                return 0, 0, 0
            busy, frames, done = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(busy), int(frames), int(done)

    def tick(self, now: float | None = None) -> None:
        """One round: checkpoint, prune, enforce the bound, give space back."""
        now = time.time() if now is None else now
        try:
            self._tick(now)
        except sqlite3.Error as exc:
            self._db.write_failed(exc, what="maintenance (checkpoint, pruning)")

    def _tick(self, now: float) -> None:
        if now - self._last_prune >= PRUNE_INTERVAL:
            self._last_prune = now
            with self._db.writer() as db:
                if db is not None:
                    self._outbox.prune(db, before=now - DONE_RETENTION)
        main, wal = self._db.file_sizes()
        over = main + wal > self.max_bytes
        if over:
            self._enforce_bound(main, wal, now)
        vacuumed = self._vacuum(force=over)
        # The main file shrinks (vacuum) and the WAL empties only when a checkpoint
        # completes; a passive one first, so the truncating one has little left to copy.
        main, wal = self._db.file_sizes()
        if wal:
            self.checkpoint("PASSIVE")
        # On a disk about to fill up (or full: writes failing), the WAL's space is what
        # can be given back.
        tight = wal > self._db.free_bytes() or not self._db.health.healthy
        if vacuumed or tight or wal > wal_limit(self.max_bytes):
            self.checkpoint("TRUNCATE")
        main, wal = self._db.file_sizes()
        self.peak_wal = max(self.peak_wal, wal)
        self.peak_total = max(self.peak_total, main + wal)

    def _enforce_bound(self, main: int, wal: int, now: float) -> None:
        target = int(self.max_bytes * BOUND_TARGET)
        with self._db.writer() as db:
            if db is None:
                return
            used = self._used(db)
            keep = max(0.0, min(1.0, target / used))
            deleted = self._history.shrink(db, keep_fraction=keep)
            with Transaction(db):
                self._outbox.prune(db, before=now, keep=0)
        shed = self._shed(target)
        level = logging.DEBUG if self._over_bound_logged else logging.WARNING
        self._over_bound_logged = True
        log.log(
            level,
            "state directory reached its bound of %d bytes (file %d, WAL %d): deleted the"
            " oldest %d results of history, every finished alert event, and rollup rows: %s;"
            " raise agent.state_max_bytes or lower agent.history_size to keep more",
            self.max_bytes,
            main,
            wal,
            deleted,
            ", ".join(f"{kind} {rows}" for kind, rows in shed.items()) or "none",
        )

    def _shed(self, target: int) -> dict[str, int]:
        """Ask the shedders for what the file is still over ``target`` (pages in use)."""
        total: dict[str, int] = {}
        for _ in range(SHED_PASSES):
            with self._db.writer() as db:
                if db is None:
                    break
                over = self._used(db) - target
            if over <= 0:
                break
            gave = False
            # Outside the writer connection's lock: a shedder writes on its own connection.
            for shedder in list(self._shedders):
                try:
                    got = shedder.shed(nbytes=over)
                except sqlite3.Error as exc:
                    log.error("could not delete rollup rows for the state bound: %s", exc)
                    continue
                for kind, rows in got.items():
                    total[kind] = total.get(kind, 0) + rows
                gave = gave or bool(got)
            if not gave:
                break
        return total

    @staticmethod
    def _used(db: sqlite3.Connection) -> int:
        """The file's size once checkpointed and vacuumed: pages in use, wherever now."""
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
        return max(int((pages - free) * page), 1)

    def _vacuum(self, *, force: bool = False) -> bool:
        with self._db.writer() as db:
            if db is None:
                return False
            (free,) = db.execute("PRAGMA freelist_count").fetchone()
            (page,) = db.execute("PRAGMA page_size").fetchone()
            if not free or (free * page < VACUUM_FREE_BYTES and not force):
                return False
            # As a script: execute() steps this pragma once, freeing a single page.
            db.executescript("PRAGMA incremental_vacuum;")
        return True
