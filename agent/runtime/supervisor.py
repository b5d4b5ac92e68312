"""``wsprobe run --processes N``: one agent per core, started and watched as one command.

One Python process runs its event loop on one core. Rather than splitting one agent's
pipeline across processes, the supervisor starts N complete agents, each running one
rendezvous shard of the checks (``--shard p/N``): shard ``p`` serves HTTP on the
configured port plus ``p - 1`` and keeps its state in ``STATE_DIR/shard-p``, so every
check is probed, measured, stored and alerted on by exactly one of them. Measured, this
scales as well as a pipeline split would and shares nothing (``docs/runtime.md``,
"Using every core").

The supervisor itself holds no checks and serves nothing. It:

- validates the configuration once (errors printed once, exit 1, nothing started);
- starts the N agents (``python -m agent run --shard p/N --listen ... --state-dir ...``);
- forwards SIGHUP (reload) to every agent, and on SIGTERM/SIGINT stops them all,
  killing any still running after :data:`STOP_TIMEOUT` seconds;
- stops everything when an agent cannot start the first time (exit 1 or 2 before it
  reported ready: a state directory it cannot write, a port already taken), with that
  exit status;
- restarts an agent that exits later, after a delay doubling from
  :data:`RESTART_INITIAL_DELAY` to :data:`RESTART_MAX_DELAY` seconds (back to the
  initial delay once it stayed up :data:`STABLE_INTERVAL` seconds), logging each exit.

:class:`Supervisor` runs the agents; ``agent.runtime.processes`` builds them from the
command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.runtime.readiness import READY_FD_ENV, SUPERVISOR_PID_ENV

__all__ = [
    "RESTART_INITIAL_DELAY",
    "RESTART_MAX_DELAY",
    "SHARD_DIR_PREFIX",
    "STABLE_INTERVAL",
    "STOP_TIMEOUT",
    "Slot",
    "Supervisor",
    "plan_slots",
]

log = logging.getLogger(__name__)

#: Shard p keeps its SQLite state in ``STATE_DIR/shard-p``.
SHARD_DIR_PREFIX = "shard-"
RESTART_INITIAL_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
#: An agent that stayed up this long restarts after the initial delay again.
STABLE_INTERVAL = 60.0
#: How long agents get to stop after SIGTERM before they are killed (each stops its
#: probes within 2 s; the rest is the store's last commit).
STOP_TIMEOUT = 10.0
#: Exit statuses of ``wsprobe run`` that mean "cannot start here" (config, port, state).
_START_FAILURES = (1, 2)


@dataclass(frozen=True)
class Slot:
    """One agent process of the N: its shard, HTTP address and state directory."""

    index: int
    count: int
    listen: str
    state_dir: str

    @property
    def shard(self) -> str:
        """``p/N``, as ``--shard`` takes it."""
        return f"{self.index}/{self.count}"


def plan_slots(*, processes: int, listen: str, state_dir: str) -> list[Slot]:
    """The N agents for ``listen`` (``HOST:PORT``) and ``state_dir``.

    Agent p listens on PORT + p - 1 (every agent on an ephemeral port when PORT is 0)
    and keeps its state in ``state_dir/shard-p``.

    Raises:
        ValueError: when ``processes`` is below 1 or the last port would pass 65535.
    """
    if processes < 1:
        raise ValueError(f"--processes must be at least 1, got {processes}")
    host, _, port_text = listen.rpartition(":")
    port = int(port_text)
    if port and port + processes - 1 > 65535:
        raise ValueError(
            f"agent.listen port {port} + {processes - 1} is past 65535: choose a lower port"
        )
    return [
        Slot(
            index=p,
            count=processes,
            listen=f"{host}:{port + p - 1 if port else 0}",
            state_dir=str(Path(state_dir) / f"{SHARD_DIR_PREFIX}{p}"),
        )
        for p in range(1, processes + 1)
    ]


@dataclass
class _Child:
    """The current process of one slot."""

    slot: Slot
    process: asyncio.subprocess.Process | None = None
    ready: bool = False
    restarts: int = 0
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Starts one agent per slot, keeps them running, stops them together.

    Args:
        slots: the agents to run.
        command: the argv of the agent for a slot.
        stop_timeout: seconds agents get after SIGTERM before SIGKILL.
        restart_initial_delay: first delay before restarting an agent that exited.
        restart_max_delay: the delay's cap.
    """

    def __init__(
        self,
        slots: Sequence[Slot],
        *,
        command: Callable[[Slot], list[str]],
        stop_timeout: float = STOP_TIMEOUT,
        restart_initial_delay: float = RESTART_INITIAL_DELAY,
        restart_max_delay: float = RESTART_MAX_DELAY,
    ) -> None:
        self.children = [_Child(slot) for slot in slots]
        self._command = command
        self._stop_timeout = stop_timeout
        self._initial_delay = restart_initial_delay
        self._max_delay = restart_max_delay
        self._stop = asyncio.Event()
        self._exit_code = 0

    def request_stop(self) -> None:
        """Stop every agent and return (signal handler)."""
        self._stop.set()

    def reload(self) -> None:
        """Forward SIGHUP to every running agent."""
        log.info("SIGHUP: reloading every shard")
        self._signal_all(signal.SIGHUP)

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT or an agent that cannot start; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        keepers = [asyncio.create_task(self._keep(child)) for child in self.children]
        try:
            await self._stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._stop_all()
            # Each keeper ends once its agent has exited; one that was starting an agent
            # when the stop came stops that one itself.
            _, pending = await asyncio.wait(keepers, timeout=self._stop_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
        log.info("stopped %d shards", len(self.children))
        return self._exit_code

    async def _keep(self, child: _Child) -> None:
        """Run one slot's agent, restarting it with backoff until the stop."""
        delay = self._initial_delay
        first = True
        while not self._stop.is_set():
            began = time.monotonic()
            code, ready = await self._run_once(child)
            if self._stop.is_set():
                return
            child.exits.append(code)
            if first and not ready and code in _START_FAILURES:
                log.error(
                    "shard %s could not start (exit %d, see its log above): stopping every shard",
                    child.slot.shard,
                    code,
                )
                self._exit_code = code
                self._stop.set()
                return
            first = False
            if time.monotonic() - began >= STABLE_INTERVAL:
                delay = self._initial_delay
            log.error(
                "shard %s exited with %s; restarting it in %g s",
                child.slot.shard,
                _describe(code),
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            delay = min(delay * 2, self._max_delay)
            if not self._stop.is_set():
                child.restarts += 1

    async def _run_once(self, child: _Child) -> tuple[int, bool]:
        """Start the slot's agent and wait for it to exit: (exit code, was it ready)."""
        read_fd, write_fd = os.pipe()
        env = {
            **os.environ,
            READY_FD_ENV: str(write_fd),
            SUPERVISOR_PID_ENV: str(os.getpid()),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(child.slot), env=env, pass_fds=(write_fd,)
            )
        except OSError as exc:
            os.close(read_fd)
            log.error("shard %s could not be started: %s", child.slot.shard, exc)
            return 1, False
        finally:
            os.close(write_fd)
        child.process, child.ready = process, False
        log.info(
            "started shard %s (pid %d) on %s", child.slot.shard, process.pid, child.slot.listen
        )
        if self._stop.is_set():
            # The stop came while this agent was being started: _stop_all missed it.
            process.terminate()
        loop = asyncio.get_running_loop()
        os.set_blocking(read_fd, False)

        def on_readable() -> None:
            # One byte when the agent is up; end of file when it exited without.
            if _read_ready(read_fd):
                child.ready = True
            loop.remove_reader(read_fd)

        loop.add_reader(read_fd, on_readable)
        try:
            code = await process.wait()
            # An agent that said it was ready and died at once: its byte may still be
            # in the pipe, unread.
            child.ready = child.ready or _read_ready(read_fd)
        finally:
            loop.remove_reader(read_fd)
            os.close(read_fd)
            child.process = None
        return code, child.ready

    def _signal_all(self, sig: signal.Signals) -> None:
        for child in self.children:
            if child.process is not None and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(sig)

    async def _stop_all(self) -> None:
        running = [
            c.process
            for c in self.children
            if c.process is not None and c.process.returncode is None
        ]
        if not running:
            return
        log.info("stopping %d shards", len(running))
        self._signal_all(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        _, pending = await asyncio.wait(waits, timeout=self._stop_timeout)
        if pending:
            log.error(
                "%d shards still running %g s after SIGTERM: killed",
                len(pending),
                self._stop_timeout,
            )
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*pending)
            self._exit_code = self._exit_code or 1


def _read_ready(fd: int) -> bool:
    """Whether the readiness byte is in the (non-blocking) pipe."""
    try:
        return bool(os.read(fd, 1))
    except (BlockingIOError, OSError):
        return False


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
