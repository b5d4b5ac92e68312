"""The interpreter's switch interval while the agent serves."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from agent.runtime.switch_interval import SWITCH_INTERVAL, use_serving_switch_interval


@pytest.fixture
def restore_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("restore_switch_interval")
def test_serving_switch_interval_is_short() -> None:
    """Serving shortens how long another thread may keep the GIL from the loop."""
    sys.setswitchinterval(0.005)
    use_serving_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL, rel=0.01)
    assert SWITCH_INTERVAL < 0.005
