"""Scheduling across wall-clock steps: on an injected clock moved by hand, and in a real agent."""

from __future__ import annotations

import asyncio
import collections
import glob
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config.models import CheckConfig
from agent.runtime.scheduler import CheckScheduler, start_offset
from tests.runtime.conftest import Samples, Targets, value
from tests.tools import require_tool

URL = "ws://127.0.0.1:9/"
#: 2027-01-15T08:00:00Z: the fake wall clock's start (any Unix time would do).
START = 1_800_000_000.0
HOUR = 3600.0


class _Timer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Wall and monotonic time that move only when told; timers on the monotonic one.

    :meth:`advance` moves both clocks and runs each timer as its time comes, letting the
    event loop run what the timer started; :meth:`step` moves the wall clock alone, as
    NTP does.
    """

    def __init__(self, *, wall: float = START, mono: float = 1000.0) -> None:
        self._mono = mono
        self._wall_minus_mono = wall - mono
        self._timers: list[tuple[float, int, _Timer]] = []
        self._sequence = 0

    def time(self) -> float:
        return self._mono + self._wall_minus_mono

    def monotonic(self) -> float:
        return self._mono

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        self._sequence += 1
        heapq.heappush(self._timers, (self._mono + max(0.0, delay), self._sequence, timer))
        return timer

    def step(self, seconds: float) -> None:
        self._wall_minus_mono += seconds

    def stall(self, seconds: float) -> None:
        """Both clocks move and no timer runs: the event loop was blocked meanwhile."""
        self._mono += seconds

    async def advance(self, seconds: float) -> None:
        end = self._mono + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, when)
            timer.callback()
            # Let the runs the timer started begin and end (no time passes meanwhile).
            for _ in range(5):
                await asyncio.sleep(0)
        self._mono = end


@dataclass(frozen=True)
class Run:
    name: str
    mono: float
    wall: float
    scheduled_at: float


class Harness:
    """A scheduler on a fake clock whose runs and skips are recorded."""

    def __init__(self, checks: list[CheckConfig]) -> None:
        self.clock = FakeClock()
        self.runs: list[Run] = []
        self.skips: list[tuple[str, str]] = []

        async def run(check: CheckConfig, *, scheduled_at: float | None = None) -> None:
            assert scheduled_at is not None
            self.runs.append(
                Run(check.name, self.clock.monotonic(), self.clock.time(), scheduled_at)
            )

        def skipped(name: str, reason: str) -> None:
            self.skips.append((name, reason))

        self.scheduler = CheckScheduler(run=run, skipped=skipped, clock=self.clock)
        self.checks = checks

    async def __aenter__(self) -> Harness:
        await self.scheduler.apply(self.checks)
        self.scheduler.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.scheduler.pause()
        await self.scheduler.shutdown()

    def of(self, name: str) -> list[Run]:
        return [r for r in self.runs if r.name == name]


async def test_backlog_coalesces_into_one_run() -> None:
    """After the loop was blocked across several due times, the check runs once, not once each."""
    check = CheckConfig(name="often", url=URL, interval=10.0, timeout=5.0)
    async with Harness([check]) as h:
        due = h.scheduler.next_run_times()["often"]
        h.clock.stall(due - h.clock.time() + 4 * check.interval + 0.5)  # five due times pass
        unblocked = h.clock.monotonic()
        await h.clock.advance(0.0)
        assert [r.mono for r in h.of("often")] == [unblocked]
        assert h.runs[0].scheduled_at == pytest.approx(due + 4 * check.interval)
        assert h.skips == []  # coalesced, not skipped one by one
        # The next run is the next fire time after now, not one of the passed ones.
        assert h.scheduler.next_run_times()["often"] == pytest.approx(due + 5 * check.interval)


def _phase_error(at: float, check: CheckConfig) -> float:
    """How far Unix time ``at`` is from the check's phase, in seconds."""
    error = (at - start_offset(check.name, check.interval)) % check.interval
    return min(error, check.interval - error)


@pytest.mark.parametrize("step", [-HOUR, HOUR], ids=["back-1h", "forward-1h"])
async def test_interval_checks_run_on_across_a_wall_clock_step(step: float) -> None:
    """After the wall clock steps an hour either way, every check keeps its interval, no burst."""
    checks = [
        CheckConfig(name=f"svc-{i:02d}", url=URL, interval=7.0 if i % 2 else 10.0, timeout=1.0)
        for i in range(30)
    ]
    async with Harness(checks) as h:
        await h.clock.advance(35.0)
        stepped_at = h.clock.monotonic()
        h.clock.step(step)
        await h.clock.advance(65.0)
    assert h.skips == []
    for check in checks:
        interval = check.interval
        runs = h.of(check.name)
        gaps = [b.mono - a.mono for a, b in itertools.pairwise(runs)]
        # The interval continues (one gap may be up to half an interval shorter or
        # longer while the check rejoins its phase); no run waits for the step's hour.
        assert all(interval / 2 < gap <= 1.5 * interval + 1e-6 for gap in gaps), gaps
        after = [r for r in runs if r.mono > stepped_at]
        assert int(65.0 / interval) - 1 <= len(after) <= int(65.0 / interval) + 1
        # Every run is named at the current wall time (scheduler lag stays honest; a run
        # may start up to a millisecond early with one due just before it), and from the
        # second run after the step on, the check is back on its phase.
        assert all(abs(r.wall - r.scheduled_at) < 0.0011 for r in runs)
        assert all(_phase_error(r.scheduled_at, check) < 1e-6 for r in after[1:])
    # No burst: runs stay spread, never several at one instant.
    per_instant = collections.Counter(round(r.mono, 3) for r in h.runs)
    assert max(per_instant.values()) <= 2


@pytest.mark.parametrize("step", [-HOUR, HOUR], ids=["back-1h", "forward-1h"])
async def test_long_interval_waits_on_the_monotonic_clock(step: float) -> None:
    """A wall-clock step during a long wait neither delays nor advances the run."""
    check = CheckConfig(name="hourly", url=URL, interval=HOUR, timeout=10.0)
    async with Harness([check]) as h:
        await h.clock.advance(HOUR)
        first = h.of("hourly")[0]
        await h.clock.advance(600.0)
        h.clock.step(step)
        await h.clock.advance(HOUR)
    assert h.skips == []
    runs = h.of("hourly")
    assert len(runs) == 2
    assert runs[1].mono - first.mono == pytest.approx(HOUR)


@pytest.mark.parametrize("step", [-HOUR, HOUR], ids=["back-1h", "forward-1h"])
async def test_cron_check_follows_the_new_wall_time(step: float) -> None:
    """A cron check keeps firing at its cron times by the new wall clock, at most one missed."""
    check = CheckConfig(name="five", url=URL, cron="*/5 * * * *", timeout=10.0)
    async with Harness([check]) as h:
        await h.clock.advance(900.0)
        h.clock.step(step)
        await h.clock.advance(1800.0)
    runs = h.of("five")
    assert len(runs) >= 8
    assert all(r.scheduled_at % 300 == 0 for r in runs)
    gaps = [b.mono - a.mono for a, b in itertools.pairwise(runs)]
    assert all(0 < gap <= 600 + 60 for gap in gaps), gaps
    assert len(h.skips) <= 1
    assert all(reason == "missed" for _, reason in h.skips)


async def test_wall_clock_step_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """The step is logged once, with its size; small jitter between the clocks is not."""
    check = CheckConfig(name="often", url=URL, interval=1.0, timeout=0.5)
    async with Harness([check]) as h:
        await h.clock.advance(5.0)
        h.clock.step(0.2)
        await h.clock.advance(5.0)
        h.clock.step(-HOUR)
        await h.clock.advance(5.0)
    lines = [r.getMessage() for r in caplog.records if "wall clock stepped" in r.getMessage()]
    assert len(lines) == 1
    assert "-3600.000 s" in lines[0]


def _libfaketime() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


async def test_real_agent_runs_on_after_its_wall_clock_steps_back(
    start_agent: Any, targets: Targets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real agent whose wall clock steps back an hour (libfaketime) keeps probing."""
    require_tool("faketime", install="Debian package faketime")
    lib = _libfaketime()
    assert lib is not None, "faketime is installed but libfaketimeMT.so.1 was not found"
    stamp = tmp_path / "faketime"
    stamp.write_text("+0\n", encoding="utf-8")
    # Only the agent's wall clock moves: its monotonic clock stays real, and libfaketime
    # reads the offset file again at most once a second.
    monkeypatch.setenv("LD_PRELOAD", lib)
    monkeypatch.setenv("FAKETIME_TIMESTAMP_FILE", str(stamp))
    monkeypatch.setenv("FAKETIME_CACHE_DURATION", "1")
    monkeypatch.setenv("DONT_FAKE_MONOTONIC", "1")
    config = tmp_path / "agent.yaml"
    check = {"name": "tick", "url": f"ws://127.0.0.1:{targets.ws_port}/", "interval": "1s",
             "timeout": "800ms"}  # fmt: skip
    config.write_text(
        yaml.safe_dump(
            {
                "agent": {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state"},
                "check_files": [],
                "checks": [check],
            }
        ),
        encoding="utf-8",
    )
    agent = await start_agent(config)

    def runs(samples: Samples) -> float:
        return value(samples, "wsprobe_probes_total", check="tick", result="success") or 0.0

    before = runs(await agent.until(lambda s: runs(s) >= 2))
    stamp.write_text("-3600\n", encoding="utf-8")
    # A scheduler waiting on the wall clock would run nothing for the hour.
    await agent.until(lambda s: runs(s) >= before + 3, timeout=10.0)
    await agent.wait_line(r"the wall clock stepped by -3\d{3}\.\d+ s")
    assert await agent.stop() == 0
