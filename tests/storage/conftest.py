"""Shared helpers of the storage tests: results to store, rows counted in the file."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.result import ProbeResult, Reason


def result(check: str, n: int) -> ProbeResult:
    """The n-th result of ``check``; odd ones failed."""
    r = ProbeResult(check=check, kind="probe", url="ws://127.0.0.1/", started_at=float(n))
    r.phases = {"connect": 0.001 * n}
    if n % 2:
        return r.fail(Reason.CONNECT_REFUSED, "connection refused")
    r.success = True
    return r


def rows_in_db(path: Path, check: str) -> int:
    """Rows physically stored for ``check``."""
    with sqlite3.connect(path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM results WHERE check_name = ?", (check,)
        ).fetchone()
    db.close()
    return int(count)


@contextlib.contextmanager
def mounted_tmpfs(path: Path, *, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted on ``path`` (needs root), unmounted after.

    Without root (or the capability to mount) the test skips, and fails under CI=true.
    """
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = (
            f"the disk-fault tests mount a real tmpfs and need root: {' '.join(mount)}"
            f" failed: {done.stderr.strip()}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount_read_only(path: Path) -> None:
    """Make the tmpfs on ``path`` read-only (root or not, writes then fail with EROFS)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def fill_disk(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system is full; returns the file."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
