"""Fixtures for alerting tests: a SQLite store (the HTTP receiver is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.storage import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in tmp_path."""
    s = Store(tmp_path)
    try:
        yield s
    finally:
        s.close()
