"""``wsprobe run`` end to end: a real subprocess scraped, reloaded and stopped from outside."""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from agent.runtime.gc_policy import GC_THRESHOLDS, freeze_heap
from agent.runtime.shard import in_shard
from agent.storage import DB_FILENAME, Store
from tests.runtime.conftest import Samples, Targets, parse_samples, value
from tests.tools import require_tool

Check = dict[str, Any]


def _write(path: Path, checks: list[Check], **agent: Any) -> Path:
    config = {
        "agent": {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state", **agent},
        "check_files": [],
        "checks": checks,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _echo(port: int, name: str = "echo", **extra: Any) -> Check:
    return {"name": name, "url": f"ws://127.0.0.1:{port}/", "interval": "1s",
            "timeout": "800ms", "pings": 1, **extra}  # fmt: skip


def _ran(name: str, at_least: float = 1) -> Any:
    def predicate(samples: Samples) -> bool:
        count = value(samples, "wsprobe_probes_total", check=name, result="success")
        return count is not None and count >= at_least

    return predicate


def _failed(samples: Samples, name: str) -> float | None:
    count = value(samples, "wsprobe_probes_total", check=name, result="failure")
    return count if count else None


def _has_check(samples: Samples, name: str) -> bool:
    return any(("check", name) in labels for _, labels in samples)


async def test_scrape_probe_and_reload(start_agent: Any, targets: Targets, tmp_path: Path) -> None:
    """Metrics move, /probe runs only configured checks, reloads apply or are refused whole."""
    config = _write(
        tmp_path / "agent.yaml",
        [
            _echo(targets.ws_port, labels={"team": "edge"}),
            _echo(targets.ws_port, "extra"),
            # Port 1 on loopback: nothing listens, the connection is refused.
            {"name": "down", "url": "ws://127.0.0.1:1/", "interval": "1s", "timeout": "800ms"},
        ],
    )
    agent = await start_agent(config)
    samples = await agent.until(
        lambda s: _ran("echo")(s) and _ran("extra")(s) and _failed(s, "down") is not None
    )
    assert _failed(samples, "down") == value(
        samples, "wsprobe_probe_failures_total", check="down", reason="connect_refused"
    )
    await agent.wait_line(r"probe failed: .* check=down reason=connect_refused")
    assert value(samples, "probe_success", check="echo", team="edge", location="lab") == 1
    assert value(samples, "wsprobe_build_info", location="lab") == 1
    assert value(samples, "wsprobe_config_last_reload_successful") == 1
    async with httpx.AsyncClient(base_url=agent.url, timeout=5.0) as client:
        raw = (await client.get("/metrics")).content
        assert b"\nprocess_resident_memory_bytes " in raw  # the standard collectors, appended
        promtool = require_tool("promtool", install="Debian package prometheus")
        check = subprocess.run([promtool, "check", "metrics"], input=raw, capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert (await client.get("/readyz")).status_code == 200
        api = (await client.get("/api/v1/checks")).json()["checks"]
        assert {c["name"] for c in api} == {"echo", "extra", "down"}
        echo = next(c for c in api if c["name"] == "echo")
        assert "handshake" in echo["last_result"]["phases"]
        assert echo["history"]
        probe = await client.get("/probe", params={"check": "echo"})
        assert probe.status_code == 200
        assert value(parse_samples(probe.text), "probe_success") == 1
        assert (await client.get("/probe", params={"check": "nope"})).status_code == 404
        target = {"target": f"ws://127.0.0.1:{targets.ws_port}/"}
        # A URL is never a configured check's name: refused without connecting.
        assert (await client.get("/probe", params=target)).status_code == 404

        # Valid reload: "extra" removed, every one of its series disappears.
        _write(config, [_echo(targets.ws_port, labels={"team": "edge"})])
        assert (await client.post("/-/reload")).json() == {"status": "ok"}
        samples = await agent.scrape()
        assert not _has_check(samples, "extra")
        before = value(samples, "wsprobe_probes_total", check="echo", result="success")
        assert before is not None

        # Invalid reload: refused with file:line errors; the old checks keep running.
        config.write_text(config.read_text().replace("interval: 1s", "interval: soon"))
        refused = await client.post("/-/reload")
        assert refused.status_code == 400
        assert any("agent.yaml:" in error for error in refused.json()["errors"])
        samples = await agent.until(_ran("echo", before + 1))
        assert value(samples, "wsprobe_config_last_reload_successful") == 0
        assert value(samples, "wsprobe_probes_total", check="echo", result="failure") == 0

    # SIGHUP reloads too.
    _write(config, [_echo(targets.ws_port, labels={"team": "edge"}), _echo(targets.ws_port, "new")])
    agent.proc.send_signal(signal.SIGHUP)
    samples = await agent.until(_ran("new"))
    assert value(samples, "wsprobe_config_last_reload_successful") == 1
    assert await agent.stop() == 0


async def test_sigterm_mid_probe(start_agent: Any, targets: Targets, tmp_path: Path) -> None:
    """SIGTERM while a probe hangs exits 0 quickly and records nothing as a failure."""
    # The probe's own timeout (3.9 s) outlasts the daemon's stop grace (2 s), so the
    # run is cancelled, not failed.
    hang = {"name": "hang", "url": f"ws://127.0.0.1:{targets.hang_port}/",
            "interval": "4s", "timeout": "3900ms", "pings": 0}  # fmt: skip
    agent = await start_agent(_write(tmp_path / "agent.yaml", [hang]))
    await asyncio.wait_for(targets.hung.wait(), 8.0)
    assert await agent.stop(timeout=6.0) == 0
    assert not any("probe failed" in line for line in agent.lines), agent.lines
    assert any("cancelled 1 unfinished run" in line for line in agent.lines), agent.lines
    store = Store(tmp_path / "state" / DB_FILENAME)
    try:
        assert store.history("hang", 10) == []
    finally:
        store.close()


async def test_sigterm_at_a_large_backlog_is_bounded(
    start_agent: Any, targets: Targets, tmp_path: Path
) -> None:
    """SIGTERM with 1,000 runs waiting for a slot ends the process within 3 s."""
    # Every probe hangs in its handshake for its whole timeout and four slots serve
    # 1,500 checks: the backlog grows by hundreds of runs a second.
    hang = [{"name": f"hang-{i:04d}", "url": f"ws://127.0.0.1:{targets.hang_port}/",
             "interval": "2s", "timeout": "1900ms", "pings": 0} for i in range(1500)]  # fmt: skip
    agent = await start_agent(_write(tmp_path / "agent.yaml", hang, max_concurrency=4))
    await agent.until(lambda s: (value(s, "wsprobe_runs_waiting") or 0) >= 1000, timeout=30.0)
    began = time.monotonic()
    assert await agent.stop(timeout=20.0) == 0
    took = time.monotonic() - began
    assert took < 3.0, f"stop took {took:.1f}s"
    match = re.search(r"cancelled (\d+) unfinished runs", "\n".join(agent.lines))
    assert match, agent.lines[-5:]
    assert int(match.group(1)) >= 100


_TEARDOWN_MARKER = """
import atexit, pathlib, sys
atexit.register(pathlib.Path(sys.argv[1]).write_text, "torn down")
from agent.cli.main import main
sys.argv[1:] = sys.argv[2:]
raise SystemExit(main())
"""


async def test_a_stopped_agent_process_skips_the_heap_teardown(
    targets: Targets, tmp_path: Path
) -> None:
    """`wsprobe run` as the process ends once stopped: state saved, heap not freed one by one.

    Freeing every check's objects at exit took about a second at 20,000 checks, which
    counted against SIGTERM's 3 s bound. An interpreter teardown would run the atexit
    hook the script registers; the stop's own log line and saved state must be there.
    """
    config = _write(tmp_path / "agent.yaml", [_echo(targets.ws_port)], log_results="all")
    marker = tmp_path / "teardown"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _TEARDOWN_MARKER, str(marker), "run", "-c", str(config),
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    while not any("probe ok" in line for line in lines):  # one run saved
        line = await asyncio.wait_for(proc.stderr.readline(), 15.0)
        assert line, lines
        lines.append(line.decode())
    proc.send_signal(signal.SIGTERM)
    rest = await asyncio.wait_for(proc.stderr.read(), 10.0)
    assert await proc.wait() == 0
    assert "stopped" in rest.decode(), rest.decode()[-500:]
    assert not marker.exists()
    store = Store(tmp_path / "state" / DB_FILENAME)
    try:
        assert store.history("echo", 10)
    finally:
        store.close()


async def test_basic_auth_and_shard(start_agent: Any, targets: Targets, tmp_path: Path) -> None:
    """Basic auth guards every endpoint; --shard 1/2 keeps exactly that shard's checks."""
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    names = [f"c{i}" for i in range(8)]
    checks = [_echo(targets.ws_port, name, interval="1h", timeout="1s") for name in names]
    config = _write(tmp_path / "agent.yaml", checks, web={"basic_auth_users": {"prom": hashed}})
    agent = await start_agent(config, "--shard", "1/2")
    async with httpx.AsyncClient(base_url=agent.url, timeout=5.0) as client:
        denied = await client.get("/api/v1/checks")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert (await client.get("/healthz", auth=("prom", "nope"))).status_code == 401
        api = await client.get("/api/v1/checks", auth=("prom", "pw"))
    assert api.status_code == 200
    shown = {c["name"] for c in api.json()["checks"]}
    assert shown == {n for n in names if in_shard(n, (1, 2))}
    assert await agent.stop() == 0


async def test_watch_session_lifecycle(start_agent: Any, targets: Targets, tmp_path: Path) -> None:
    """A watch session survives an unrelated reload and closes with 1001 on SIGINT."""
    watch = {"name": "feed", "kind": "watch", "url": f"ws://127.0.0.1:{targets.ws_port}/feed",
             "interval": "1s", "timeout": "800ms"}  # fmt: skip
    config = _write(tmp_path / "agent.yaml", [watch])
    agent = await start_agent(config)
    await agent.until(
        lambda s: (
            value(s, "wsprobe_watch_connected", check="feed") == 1
            and (value(s, "wsprobe_probes_total", check="feed", result="success") or 0) >= 1
        )
    )
    assert targets.opened == ["/feed"]
    _write(config, [watch, _echo(targets.ws_port, "other", interval="1h", timeout="1s")])
    async with httpx.AsyncClient(base_url=agent.url, timeout=5.0) as client:
        assert (await client.post("/-/reload")).status_code == 200
        api = (await client.get("/api/v1/checks", params={"check": "feed"})).json()["checks"]
    assert api[0]["watch"]["connected"] is True
    assert targets.opened == ["/feed"]  # unchanged check: the same session
    assert await agent.stop(signal.SIGINT) == 0
    await asyncio.wait_for(targets.closed.wait(), 5.0)
    assert targets.close_codes == [1001]


async def test_invalid_initial_config_exits_1(tmp_path: Path) -> None:
    """An invalid config at startup exits 1 after logging each error with file and line."""
    config = _write(tmp_path / "agent.yaml", [{"name": "x", "url": "http://nope/"}])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "-c", str(config),
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 20.0)
    assert proc.returncode == 1
    assert "agent.yaml:" in err.decode()


class _Node:
    """An object that can sit in a reference cycle and be watched by a weakref."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_heap_collects_then_freezes() -> None:
    """Cyclic garbage is freed before the freeze; what is alive is frozen; thresholds set."""
    import weakref

    old_threshold = gc.get_threshold()
    garbage, old_config = _Node(), _Node()
    garbage.other, old_config.other = garbage, old_config  # two self-cycles
    dead = weakref.ref(garbage)
    del garbage
    try:
        freeze_heap()
        assert dead() is None
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
        # A reload: what was frozen alive and is garbage now is freed, not kept frozen.
        replaced = weakref.ref(old_config)
        del old_config
        freeze_heap()
        assert replaced() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*old_threshold)


async def test_cyclic_gc_is_back_on_once_started_or_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon builds each config with the cyclic GC off, and turns it on again after."""
    from agent.runtime import daemon as daemon_module
    from agent.runtime.daemon import Daemon

    assert gc.isenabled()
    old_threshold = gc.get_threshold()
    # The loader leaves the collector alone: the daemon decides, around each load.
    gc_during_load: list[bool] = []
    real_load = daemon_module.load_config

    def load(path: Path, **options: Any) -> Any:
        gc_during_load.append(gc.isenabled())
        return real_load(path, **options)

    monkeypatch.setattr(daemon_module, "load_config", load)
    ok = _write(tmp_path / "ok.yaml", [_echo(9, interval="1h")], state_dir=str(tmp_path / "s"))
    daemon = Daemon(ok, demo=False, shard=None)
    task = asyncio.create_task(daemon.run())
    try:
        for _ in range(500):
            if daemon.ready()[0] or task.done():
                break
            await asyncio.sleep(0.01)
        assert daemon.ready() == (True, "ready")
        assert gc.isenabled()
        assert await daemon.reload() == []
        assert gc.isenabled()
        assert gc_during_load == [False, False]
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
        gc.unfreeze()
        gc.set_threshold(*old_threshold)
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: {listen: 'not an address'}\nchecks: []\n", encoding="utf-8")
    assert await Daemon(bad, demo=False, shard=None).run() == 1
    assert gc.isenabled()
