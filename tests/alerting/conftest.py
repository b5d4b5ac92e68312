"""Fixtures for alerting tests: a real local HTTP receiver and a SQLite store."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.store import Store


def _load_receiver_module() -> Any:
    # Test dirs are not packages (import-mode=importlib): load the helper by path,
    # once, so tests/notifiers shares the same class.
    name = "wsprobe_tests_http_receiver"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("http_receiver.py")
        )
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


HttpReceiver = _load_receiver_module().HttpReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """A started HTTP receiver, stopped after the test."""
    server = HttpReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in tmp_path."""
    s = Store(tmp_path)
    try:
        yield s
    finally:
        s.close()
