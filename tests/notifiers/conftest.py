"""Fixtures for notifier tests: fixed sample events (the HTTP receiver is in tests/conftest.py)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.notifiers import samples as sample_events


@pytest.fixture
def samples() -> ModuleType:
    """The module of fixed sample events (tests/notifiers/samples.py)."""
    return sample_events
