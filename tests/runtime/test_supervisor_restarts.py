"""The supervisor's restart, start-failure and stop rules, with real child processes.

The children are small Python programs that behave like an agent in one way each
(report ready then crash, fail before ready, ignore SIGTERM), so each rule is seen
without waiting for real agents to start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable

import pytest

from agent.runtime.supervisor import Slot, Supervisor, plan_slots

#: An agent's side of the readiness pipe (agent.runtime.readiness.notify_ready).
_READY = "import os; fd = int(os.environ['WSPROBE_READY_FD']); os.write(fd, b'1'); os.close(fd)"
_BEHAVIOURS = {
    "crash-after-ready": f"{_READY}; raise SystemExit(3)",
    "fail-before-ready": "raise SystemExit(2)",
    "exit-1-after-ready": f"{_READY}; raise SystemExit(1)",
    "serve": f"{_READY}; import time; time.sleep(60)",
    "ignore-sigterm": (
        f"import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); {_READY};"
        " import time; time.sleep(60)"
    ),
}


def _slots(count: int) -> list[Slot]:
    return plan_slots(processes=count, listen="127.0.0.1:0", state_dir="unused")


def _command(*behaviours: str) -> Callable[[Slot], list[str]]:
    """Slot p runs ``behaviours[p - 1]``."""

    def command(slot: Slot) -> list[str]:
        return [sys.executable, "-c", _BEHAVIOURS[behaviours[slot.index - 1]]]

    return command


async def _wait_for(predicate: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_restart_delay_doubles_up_to_its_cap(caplog: pytest.LogCaptureFixture) -> None:
    """An agent that keeps crashing after start is restarted after 0.05, 0.1, 0.2, 0.2 s."""
    caplog.set_level(logging.INFO, logger="agent.runtime.supervisor")
    sup = Supervisor(
        _slots(2),
        command=_command("crash-after-ready", "serve"),
        restart_initial_delay=0.05,
        restart_max_delay=0.2,
    )
    task = asyncio.create_task(sup.run())
    crashing, serving = sup.children
    await _wait_for(lambda: crashing.restarts >= 4, timeout=30.0)
    sup.request_stop()
    assert await asyncio.wait_for(task, 15.0) == 0
    delays = [
        float(m.group(1))
        for r in caplog.records
        if (
            m := re.search(
                r"shard 1/2 exited with status 3; restarting it in ([\d.]+) s", r.message
            )
        )
    ]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]
    assert serving.restarts == 0
    assert serving.exits == []


async def test_failure_before_ready_is_fatal_only_at_first_start() -> None:
    """Exit 2 before ready on the first start stops everything with status 2."""
    sup = Supervisor(
        _slots(2),
        command=_command("serve", "fail-before-ready"),
        restart_initial_delay=0.05,
    )
    assert await asyncio.wait_for(sup.run(), 15.0) == 2
    assert sup.children[1].exits == [2]
    assert sup.children[0].process is None  # stopped, not left running


async def test_exit_1_right_after_ready_is_a_crash_not_a_start_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An agent that reported ready and exited 1 at once is restarted, not fatal."""
    sup = Supervisor(_slots(1), command=_command("exit-1-after-ready"), restart_initial_delay=0.05)
    task = asyncio.create_task(sup.run())
    await _wait_for(lambda: sup.children[0].restarts >= 2, timeout=30.0)
    sup.request_stop()
    assert await asyncio.wait_for(task, 15.0) == 0
    assert "could not start" not in caplog.text


async def test_an_agent_ignoring_sigterm_is_killed(caplog: pytest.LogCaptureFixture) -> None:
    """After the stop timeout a stuck agent gets SIGKILL and the exit status is 1."""
    sup = Supervisor(
        _slots(2),
        command=_command("serve", "ignore-sigterm"),
        stop_timeout=0.5,
    )
    task = asyncio.create_task(sup.run())
    await _wait_for(lambda: all(c.ready for c in sup.children), timeout=15.0)
    began = time.monotonic()
    sup.request_stop()
    assert await asyncio.wait_for(task, 15.0) == 1
    assert time.monotonic() - began < 5.0
    assert "1 shards still running 0.5 s after SIGTERM: killed" in caplog.text
