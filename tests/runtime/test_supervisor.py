"""``wsprobe run --processes N`` end to end: real agent processes under one supervisor."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.cli.main import main
from agent.runtime.shard import in_shard
from agent.runtime.supervisor import plan_slots
from agent.storage import DB_FILENAME, Store
from tests.runtime.conftest import Agent, Targets, spawn_run, value

_LISTENING = re.compile(r"listening on (http://[^\s]+?:\d+)")


def _write(path: Path, checks: list[dict[str, Any]], **agent: Any) -> Path:
    section = {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state", **agent}
    path.write_text(yaml.safe_dump({"agent": section, "checks": checks}), encoding="utf-8")
    return path


def _echoes(port: int, names: list[str], **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": n, "url": f"ws://127.0.0.1:{port}/{n}", "interval": "1s", "timeout": "800ms",
         "pings": 1, **extra}
        for n in names
    ]  # fmt: skip


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def _names(url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        checks = (await client.get(url + "/api/v1/checks", params={"history": 0})).json()
    return {c["name"] for c in checks["checks"]}


class Supervised(Agent):
    """The supervisor process; its stderr carries every agent's log too."""

    async def urls(self, count: int, *, timeout: float = 30.0) -> list[str]:
        """The HTTP base URLs of the first ``count`` agents that said where they listen."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m.group(1) for line in self.lines if (m := _LISTENING.search(line))]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise AssertionError("agents did not start:\n" + "\n".join(self.lines))
            await self.wait_line(_LISTENING.pattern, timeout=deadline - time.monotonic())
            await asyncio.sleep(0.05)


@pytest.fixture
async def start_processes() -> AsyncIterator[Callable[..., Any]]:
    """Start ``python -m agent run -c CONFIG --processes N ...`` in the config's directory."""
    started: list[Supervised] = []
    pumps: list[asyncio.Task[None]] = []

    async def start(config: Path, *extra: str) -> Supervised:
        agent = Supervised(proc=await spawn_run(config, *extra), workdir=config.parent)
        started.append(agent)
        pumps.append(asyncio.create_task(agent._pump()))
        return agent

    yield start
    for agent in started:
        if agent.proc.returncode is None:
            children = _children(agent.proc.pid)
            agent.proc.kill()
            await agent.proc.wait()
            for pid in children:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    for pump in pumps:
        await asyncio.wait_for(pump, 5.0)


async def test_every_check_is_probed_by_exactly_one_agent(
    start_processes: Any, targets: Targets, tmp_path: Path
) -> None:
    """Two agents split the checks by shard; each run is recorded once; SIGTERM ends all in 3 s."""
    names = [f"c{i:02d}" for i in range(12)]
    sup = await start_processes(
        _write(tmp_path / "agent.yaml", _echoes(targets.ws_port, names)), "--processes", "2"
    )
    urls = await sup.urls(2)
    shown = [await _names(url) for url in urls]
    assert shown[0].isdisjoint(shown[1])
    assert shown[0] | shown[1] == set(names)
    for part in shown:
        # Each agent holds one whole rendezvous shard, whichever started first.
        assert part in ({n for n in names if in_shard(n, (k, 2))} for k in (1, 2))
    for url, part in zip(urls, shown, strict=True):
        agent = Agent(proc=sup.proc, workdir=tmp_path, url=url)
        await agent.until(
            lambda s, part=part: all(
                (value(s, "wsprobe_probes_total", check=n, result="success") or 0) >= 1
                for n in part
            ),
            timeout=20.0,
        )
    children = _children(sup.proc.pid)
    assert len(children) == 2
    began = time.monotonic()
    assert await sup.stop(timeout=20.0) == 0
    took = time.monotonic() - began
    assert took < 3.0, f"stop took {took:.1f}s"
    assert not any(_alive(pid) for pid in children)
    # Every connection the target saw is one run recorded by one agent, in its own store.
    seen = Counter(path.lstrip("/") for path in targets.opened)
    recorded: dict[str, list[int]] = {n: [] for n in names}
    for shard in (1, 2):
        store = Store(tmp_path / "state" / f"shard-{shard}" / DB_FILENAME)
        try:
            for name in names:
                rows = store.history(name, 1000)
                if rows:
                    recorded[name].append(len(rows))
        finally:
            store.close()
    assert {n: sum(r) for n, r in recorded.items()} == {n: seen[n] for n in names}
    assert all(len(r) == 1 for r in recorded.values()), recorded


async def test_a_crashed_agent_is_restarted(
    start_processes: Any, targets: Targets, tmp_path: Path
) -> None:
    """An agent killed by SIGKILL is logged and started again; the other keeps running."""
    config = _write(tmp_path / "agent.yaml", _echoes(targets.ws_port, ["a", "b", "c", "d"]))
    sup = await start_processes(config, "--processes", "2")
    await sup.urls(2)
    victim, survivor = _children(sup.proc.pid)
    os.kill(victim, signal.SIGKILL)
    await sup.wait_line(r"shard [12]/2 exited with signal SIGKILL; restarting it in 1 s")
    # Each agent's lines name its shard: the shared log says who said what.
    assert any(re.search(r"logger=agent.runtime.daemon .* shard=[12]/2$", x) for x in sup.lines)
    urls = await sup.urls(3)
    assert await _names(urls[2])  # the new agent serves its shard again
    now = _children(sup.proc.pid)
    assert survivor in now
    assert victim not in now
    assert len(now) == 2
    assert await sup.stop(timeout=20.0) == 0


async def test_an_agent_that_cannot_start_stops_them_all(
    start_processes: Any, targets: Targets, tmp_path: Path
) -> None:
    """A state directory that cannot be created: exit 2, no agent left running."""
    (tmp_path / "not-a-dir").write_text("x")
    config = _write(tmp_path / "agent.yaml", _echoes(targets.ws_port, ["a", "b"]))
    sup = await start_processes(config, "--processes", "2", "--state-dir", "not-a-dir")
    assert await asyncio.wait_for(sup.proc.wait(), 30.0) == 2
    await sup.wait_line(r"shard [12]/2 could not start \(exit 2")
    assert not any("restarting" in line for line in sup.lines)


async def test_an_invalid_config_starts_nothing(start_processes: Any, tmp_path: Path) -> None:
    """Config errors are logged once by the supervisor, exit 1, and no agent is started."""
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  max_concurrency: 0\nchecks: []\n", encoding="utf-8")
    sup = await start_processes(config, "--processes", "3")
    assert await asyncio.wait_for(sup.proc.wait(), 30.0) == 1
    errors = [line for line in sup.lines if "config error" in line]
    assert len(errors) == 1
    assert "max_concurrency" in errors[0]
    assert not any("started shard" in line for line in sup.lines)


async def test_sighup_reloads_every_agent(
    start_processes: Any, targets: Targets, tmp_path: Path
) -> None:
    """SIGHUP to the supervisor reaches each agent: new checks land in their shards."""
    config = _write(tmp_path / "agent.yaml", _echoes(targets.ws_port, ["a"], interval="1h"))
    sup = await start_processes(config, "--processes", "2")
    urls = await sup.urls(2)
    names = ["a", *(f"n{i}" for i in range(10))]
    _write(config, _echoes(targets.ws_port, names, interval="1h"))
    sup.proc.send_signal(signal.SIGHUP)
    shown: list[set[str]] = []

    async def both() -> bool:
        shown[:] = [await _names(url) for url in urls]
        return shown[0] | shown[1] == set(names)

    deadline = time.monotonic() + 20.0
    while not await both():
        assert time.monotonic() < deadline, shown
        await asyncio.sleep(0.1)
    assert shown[0].isdisjoint(shown[1])
    # --listen and --state-dir hold on reload too: no agent thinks its address moved.
    assert not [line for line in sup.lines if "changed: restart wsprobe" in line]
    assert await sup.stop(timeout=20.0) == 0


async def test_agents_end_when_the_supervisor_is_killed(
    start_processes: Any, targets: Targets, tmp_path: Path
) -> None:
    """SIGKILL of the supervisor leaves no agent behind (they get SIGTERM from the kernel)."""
    config = _write(tmp_path / "agent.yaml", _echoes(targets.ws_port, ["a", "b"], interval="1h"))
    sup = await start_processes(config, "--processes", "2")
    await sup.urls(2)
    children = _children(sup.proc.pid)
    sup.proc.kill()
    await sup.proc.wait()
    await _until(
        lambda: not any(_alive(pid) for pid in children), timeout=15.0, what="agents exited"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--processes", "0"], "--processes: must be a positive integer or auto, got '0'"),
        (["--processes", "two"], "--processes: must be a positive integer or auto"),
        (["--processes", "2", "--shard", "1/2"], "--processes cannot be combined with --shard"),
        (["--listen", "nowhere"], "--listen: listen must be HOST:PORT"),
    ],
    ids=["zero", "word", "with-shard", "bad-listen"],
)
@pytest.mark.usefixtures("restore_logging")
def test_run_option_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad --processes / --listen values are usage errors that name the flag."""
    assert main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listen", "count", "expected"),
    [
        ("127.0.0.1:9470", 3, ["127.0.0.1:9470", "127.0.0.1:9471", "127.0.0.1:9472"]),
        ("[::1]:9470", 2, ["[::1]:9470", "[::1]:9471"]),
        ("0.0.0.0:0", 2, ["0.0.0.0:0", "0.0.0.0:0"]),
    ],
    ids=["v4", "v6", "ephemeral"],
)
def test_plan_slots_ports_and_state_dirs(listen: str, count: int, expected: list[str]) -> None:
    """Agent p listens on the base port + p-1 and keeps its state in STATE_DIR/shard-p."""
    slots = plan_slots(processes=count, listen=listen, state_dir="/var/lib/wsprobe")
    assert [s.listen for s in slots] == expected
    dirs = [f"/var/lib/wsprobe/shard-{p}" for p in range(1, count + 1)]
    assert [s.state_dir for s in slots] == dirs
    assert [s.shard for s in slots] == [f"{p}/{count}" for p in range(1, count + 1)]


def test_plan_slots_refuses_ports_past_65535() -> None:
    """The last agent's port must exist."""
    with pytest.raises(ValueError, match="past 65535"):
        plan_slots(processes=3, listen="127.0.0.1:65534", state_dir="s")
