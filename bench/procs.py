"""Processes the benchmarks drive: the target server, the delay proxy, the agent.

Each runs in its own OS process, pinned to a core of its own where the machine has
more than one, so the process under test never shares a core with its target.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_CORE",
    "CORES",
    "SERVER_CORE",
    "Proc",
    "cpu_seconds",
    "delay_proxy",
    "free_port",
    "machine_busy",
    "pin_self",
    "rss_kib",
    "spawn",
    "target_server",
]

NODE_DIR = Path(__file__).parent / "node"
_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
#: The cores this process could use when the bench started (before it pinned itself).
CORES: tuple[int, ...] = tuple(_CORES)
#: The process under test (this one, or the agent) runs here...
BENCH_CORE = _CORES[0]
#: ...and the target server and delay proxy here, when there is a second core.
SERVER_CORE = _CORES[-1]
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy(sample: float = 1.0) -> float:
    """Fraction of all cores busy (any process) over ``sample`` seconds, from /proc/stat."""

    def snap() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = snap()
    time.sleep(sample)
    busy1, total1 = snap()
    return round((busy1 - busy0) / max(1, total1 - total0), 3)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a process that must be told one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_self(core: int = BENCH_CORE) -> bool:
    """Pin the calling process to ``core``; False when the platform cannot."""
    try:
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Proc:
    """A spawned helper process and the port it announced."""

    popen: subprocess.Popen[str]
    port: int
    what: str
    #: Lines printed after ``PORT``, when spawned with ``collect=True``.
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The OS process id."""
        return self.popen.pid


def spawn(
    argv: Sequence[str],
    *,
    core: int | None,
    what: str,
    ready_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    collect: bool = False,
) -> Proc:
    """Start ``argv`` pinned to ``core`` and wait for its ``PORT <n>`` line.

    With ``collect``, a thread keeps reading its later lines into ``Proc.lines`` (so a
    chatty child never blocks on a full pipe).
    """
    if core is not None and shutil.which("taskset") and len(_CORES) > 1:
        argv = ["taskset", "-c", str(core), *argv]
    popen = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert popen.stdout is not None
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        line = popen.stdout.readline()
        if not line:
            break
        if line.startswith("PORT "):
            proc = Proc(popen, int(line.split()[1]), what)
            if collect:
                threading.Thread(target=_drain, args=(popen, proc.lines), daemon=True).start()
            return proc
    popen.kill()
    popen.wait()
    raise RuntimeError(f"{what} did not start (exit {popen.returncode})")


def _drain(popen: subprocess.Popen[str], into: list[str]) -> None:
    assert popen.stdout is not None
    with contextlib.suppress(ValueError, OSError):  # closed by stop()
        for line in popen.stdout:
            into.append(line)


def terminate(popen: subprocess.Popen[Any], *, timeout: float = 5.0) -> None:
    """SIGTERM a process and reap it; killed if it does not exit within ``timeout``."""
    popen.terminate()
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def stop(proc: Proc) -> None:
    """Terminate a helper and reap it (killed if it does not exit within 5 s)."""
    terminate(proc.popen)
    if proc.popen.stdout:
        proc.popen.stdout.close()


def _node_ready() -> bool:
    """Whether Node and its ``ws`` package are usable, installing ws if needed."""
    if not (shutil.which("node") and shutil.which("npm")):
        return False
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                check=True,
                timeout=180,
                capture_output=True,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return (NODE_DIR / "node_modules" / "ws").is_dir()


@contextlib.contextmanager
def target_server(*, prefer_node: bool = True) -> Iterator[Proc]:
    """The benchmark target: Node ``ws`` if available, else a uvloop websockets server."""
    if prefer_node and _node_ready():
        proc = spawn(["node", str(NODE_DIR / "server.js"), "0"], core=SERVER_CORE, what="node-ws")
    else:
        proc = spawn(
            [sys.executable, "-m", "bench.server_py", "--port", "0"],
            core=SERVER_CORE,
            what="python-uvloop-websockets",
        )
    try:
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def delay_proxy(upstream_port: int, *, delay: float) -> Iterator[Proc]:
    """A TCP relay to ``127.0.0.1:upstream_port`` adding ``delay`` seconds each way.

    Its per-connection timing records (JSON lines) accumulate in ``Proc.lines``.
    """
    proc = spawn(
        [
            *(sys.executable, "-m", "bench.proxy", "--log"),
            *("--upstream-port", str(upstream_port), "--delay", str(delay)),
        ],
        core=SERVER_CORE,
        what="delay-proxy",
        collect=True,
    )
    try:
        yield proc
    finally:
        stop(proc)
