"""Fixtures shared by the config tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    # Tests that call main() get a root handler on the captured stderr; remove it before
    # capsys closes that stream, or later log records would go to a closed file.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
