"""Fixtures for the demo target tests: a DemoServer on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.demo import DemoServer


@pytest.fixture
async def demo() -> AsyncIterator[DemoServer]:
    """A started DemoServer on 127.0.0.1 and a free port, stopped after the test."""
    async with DemoServer() as server:
        yield server
