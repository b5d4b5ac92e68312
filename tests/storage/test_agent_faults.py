"""``wsprobe run`` against a full, read-only, corrupt and deleted state file (real processes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from agent.storage import DB_FILENAME
from tests.conftest import WsServerFactory
from tests.runtime.conftest import Samples, start_agent, targets, value
from tests.storage.conftest import fill_disk, mounted_tmpfs, remount_read_only

__all__ = ["start_agent", "targets"]  # fixtures used by name below


def _config(path: Path, state_dir: Path, url: str, hook: str, **check: Any) -> Path:
    """One check of ``url`` every 0.2 s, firing after one failure, to webhook ``hook``."""
    config = {
        "agent": {"listen": "127.0.0.1:0", "state_dir": str(state_dir)},
        "check_files": [],
        "alerting": {"failure_threshold": 1, "success_threshold": 1, "receivers": ["hook"],
                     "group_wait": 0},
        "receivers": [{"name": "hook", "type": "webhook", "url": hook + "/hook", "secret": "s"}],
        "checks": [{"name": "svc", "url": url, "interval": "200ms", "timeout": "150ms",
                    "pings": 0, **check}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _runs(samples: Samples, result: str) -> float:
    return value(samples, "wsprobe_probes_total", check="svc", result=result) or 0.0


def _firings(receiver: Any) -> int:
    return sum(1 for r in receiver.requests if r.json()["event"] == "firing")


#: Nothing listens on port 1 of loopback: every run fails fast with connect_refused.
_REFUSED = "ws://127.0.0.1:1/"


async def test_full_disk_alerts_still_go_out_said_once_and_stop_is_clean(
    start_agent: Any, receiver: Any, ws_server: WsServerFactory, tmp_path: Path
) -> None:
    """On a full tmpfs a new alert is delivered, the log says so once, and SIGTERM exits 0."""
    with mounted_tmpfs(tmp_path / "state", size="300k") as state:
        server_url = await ws_server()
        config = _config(tmp_path / "agent.yaml", state, server_url, receiver.url)
        agent = await start_agent(config)
        await agent.until(lambda s: _runs(s, "success") >= 2)
        filler = fill_disk(state)
        # The target goes away: the agent must now write alert state on a full disk.
        config = _config(tmp_path / "agent.yaml", state, _REFUSED, receiver.url)
        agent.proc.send_signal(signal.SIGHUP)
        await agent.wait_line(r"config reloaded")
        await receiver.wait_for(1, timeout=10.0)
        assert _firings(receiver) == 1
        samples = await agent.until(lambda s: value(s, "wsprobe_state_healthy") == 0)
        assert (value(samples, "wsprobe_state_write_errors_total") or 0) >= 1
        runs = _runs(samples, "failure")
        await agent.until(lambda s: _runs(s, "failure") >= runs + 10)
        failing = [line for line in agent.lines if "cannot write" in line]
        assert len(failing) == 1, agent.lines
        assert "database or disk is full" in failing[0]
        filler.unlink()
        await agent.wait_line(r"writing works again")
        await agent.until(lambda s: value(s, "wsprobe_state_healthy") == 1)
        assert await agent.stop() == 0
    assert not any("Traceback" in line for line in agent.lines), agent.lines
    assert _firings(receiver) == 1


def test_read_only_state_dir_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    """A read-only state directory: one line naming the path and the cause, exit 2."""
    with mounted_tmpfs(tmp_path / "state", size="1m") as state:
        remount_read_only(state)
        config = _config(tmp_path / "agent.yaml", state, _REFUSED, "http://127.0.0.1:9")
        done = subprocess.run(
            [sys.executable, "-m", "agent", "run", "-c", str(config)],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if re.search("ERROR|level=error", line)]
    assert len(errors) == 1, done.stderr
    assert f"state directory {state}: cannot write there: Read-only file system" in errors[0]
    assert "Traceback" not in done.stderr


async def test_corrupt_state_file_is_moved_aside_and_probing_starts(
    start_agent: Any, receiver: Any, tmp_path: Path
) -> None:
    """A garbage state file does not stop the agent: moved aside, named, probing runs."""
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_FILENAME).write_bytes(os.urandom(64 * 1024))
    agent = await start_agent(_config(tmp_path / "agent.yaml", state, _REFUSED, receiver.url))
    line = (await agent.wait_line(r"is corrupt .* moved it to (\S+) ")).group(1)
    assert Path(line).exists()
    await agent.until(lambda s: _runs(s, "failure") >= 2)
    await receiver.wait_for(1)
    assert await agent.stop() == 0


async def test_deleted_state_file_is_recreated_and_no_firing_repeats(
    start_agent: Any, receiver: Any, tmp_path: Path
) -> None:
    """State file deleted while running: recreated from memory; a restart does not re-fire."""
    state = tmp_path / "state"
    config = _config(tmp_path / "agent.yaml", state, _REFUSED, receiver.url)
    agent = await start_agent(config)
    await receiver.wait_for(1)
    await agent.until(lambda s: value(s, "wsprobe_notifications_total", outcome="success") == 1)
    for path in state.glob(DB_FILENAME + "*"):
        path.unlink()
    await agent.wait_line(r"was deleted or replaced while wsprobe ran: recreated it")
    assert await agent.stop() == 0
    again = await start_agent(config)
    await again.until(lambda s: _runs(s, "failure") >= 5)
    assert await again.stop() == 0
    assert _firings(receiver) == 1, [r.json()["event"] for r in receiver.requests]
