"""Fixtures for notifier tests: the shared real local HTTP receiver."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest


def _load(name: str, path: Path) -> Any:
    # Test dirs are not packages (import-mode=importlib): load helpers by path, once.
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


HttpReceiver = _load(
    "wsprobe_tests_http_receiver", Path(__file__).parent.parent / "alerting" / "http_receiver.py"
).HttpReceiver
SAMPLES = _load("wsprobe_tests_notifier_samples", Path(__file__).with_name("samples.py"))


@pytest.fixture
def samples() -> Any:
    """The module of fixed sample events (tests/notifiers/samples.py)."""
    return SAMPLES


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """A started HTTP receiver, stopped after the test."""
    server = HttpReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
