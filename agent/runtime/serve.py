"""``wsprobe run`` in one process: the event loop and the signals around a :class:`Daemon`.

uvloop runs the loop when it is installed (an optional extra). SIGTERM and SIGINT ask
the daemon for a graceful stop, SIGHUP for a reload; the handlers are installed before
the daemon starts, so a signal during a long start-up (10,000 checks) still ends in a
graceful stop instead of the default kill.

Raises nothing to its caller: :func:`serve` returns the exit code.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from agent.runtime.daemon import Daemon
from agent.runtime.overrides import AgentOverrides

__all__ = ["serve"]


def serve(
    config_path: Path,
    *,
    demo: bool,
    shard: tuple[int, int] | None,
    overrides: AgentOverrides | None = None,
) -> int:
    """Run the agent until SIGTERM/SIGINT.

    Args:
        config_path: the agent config file.
        demo: also run the built-in demo targets on 127.0.0.1:8765 (and the protocol
            targets on the next three ports).
        shard: ``(K, N)`` to run only the checks of shard K of N.
        overrides: agent settings from the command line, over the file's.

    Returns:
        0 after a clean stop; 1 when the initial config is invalid or startup fails;
        2 when the state directory cannot be written.
    """
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop is an optional extra
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        daemon = Daemon(config_path, demo=demo, shard=shard, overrides=overrides)
        return runner.run(_run_with_signals(daemon))


async def _run_with_signals(daemon: Daemon) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    try:
        return await daemon.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
