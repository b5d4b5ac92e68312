"""Fixtures shared by the config tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging: None) -> None:
    """main() installs a handler on the captured stderr (see tests/conftest.py)."""
