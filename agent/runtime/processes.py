"""``wsprobe run --processes N`` from the command line to a running :class:`Supervisor`.

The configuration is validated once, before any agent starts, so its errors are
logged once and nothing is started when it is invalid. That load runs in a forked
process of its own, so the supervisor does not keep the memory of the parsed checks for
as long as it runs (at 10,000 checks its RSS is that of the command line's modules, 43 MB;
loading in-process left it at 78 MB).

Raises nothing to its caller: :func:`run_processes` returns the exit code.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.overrides import AgentOverrides
from agent.runtime.supervisor import Slot, Supervisor, plan_slots

__all__ = ["agent_command", "run_processes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Inspected:
    """What the supervisor needs of the configuration, or why it cannot run."""

    listen: str = ""
    state_dir: str = ""
    checks: int = 0
    errors: tuple[str, ...] = ()


def _inspect(config_path: Path, overrides: AgentOverrides) -> _Inspected:
    """Load and validate the configuration (in a child process)."""
    # Imported here, in the child: the loader and every probe and notifier module it
    # validates against would otherwise stay in the supervisor's memory (~15 MB).
    from agent.config.loader import ConfigError, load_config
    from agent.runtime.gc_policy import gc_paused
    from agent.runtime.registries import REGISTRIES

    try:
        # Everything the load allocates dies with this process: collecting is waste.
        with gc_paused():
            config = overrides.apply(load_config(config_path, registries=REGISTRIES))
    except ConfigError as exc:
        return _Inspected(errors=tuple(str(issue) for issue in exc.issues) or (str(exc),))
    return _Inspected(
        listen=config.agent.listen, state_dir=config.agent.state_dir, checks=len(config.checks)
    )


def run_processes(
    config_path: Path,
    *,
    processes: int,
    demo: bool,
    overrides: AgentOverrides,
    log_format: str,
    log_level: str,
) -> int:
    """Validate the config, then run ``processes`` sharded agents until SIGTERM/SIGINT.

    Args:
        config_path: the agent config file (each agent reads it again, and on reload).
        processes: how many agents, at least 2.
        demo: the first agent also runs the demo targets.
        overrides: ``--listen`` / ``--state-dir``: the base port and directory.
        log_format: passed on to every agent.
        log_level: passed on to every agent.

    Returns:
        0 after a clean stop; 1 when the config is invalid or an agent had to be
        killed; an agent's own exit status when it could not start.
    """
    # Forked before any thread or event loop exists in this process.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        inspected = pool.submit(_inspect, config_path, overrides).result()
    for error in inspected.errors:
        log.error("config error: %s", error)
    if inspected.errors:
        return 1
    try:
        slots = plan_slots(
            processes=processes, listen=inspected.listen, state_dir=inspected.state_dir
        )
    except ValueError as exc:
        log.error("wsprobe could not start: %s", exc)
        return 1
    log.info(
        "wsprobe running %d checks in %d agent processes (one shard each), HTTP on %s..%s",
        inspected.checks,
        processes,
        slots[0].listen,
        slots[-1].listen.rpartition(":")[2],
    )

    def command(slot: Slot) -> list[str]:
        return agent_command(
            slot, config_path=config_path, demo=demo, log_format=log_format, log_level=log_level
        )

    return asyncio.run(Supervisor(slots, command=command).run())


def agent_command(
    slot: Slot, *, config_path: Path, demo: bool, log_format: str, log_level: str
) -> list[str]:
    """The ``wsprobe run`` command line of one slot's agent (this interpreter)."""
    argv = [
        sys.executable,
        "-m",
        "agent",
        "run",
        "-c",
        str(config_path),
        "--shard",
        slot.shard,
        "--listen",
        slot.listen,
        "--state-dir",
        slot.state_dir,
        "--log-format",
        log_format,
        "--log-level",
        log_level,
    ]
    # The demo targets bind one fixed port: the first agent runs them for everyone.
    if demo and slot.index == 1:
        argv.append("--demo")
    return argv
