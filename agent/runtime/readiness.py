"""How an agent started by ``wsprobe run --processes N`` talks to its supervisor.

Two things, both no-ops for an agent started any other way:

- :func:`notify_ready` writes one byte to the pipe named by ``$WSPROBE_READY_FD`` once
  the agent serves and schedules, so the supervisor can tell a child that could not
  start (bad state directory, port taken: stop everything) from one that crashed later
  (restart it);
- :func:`die_with_parent` asks the kernel to send SIGTERM to the agent when its
  supervisor dies, even by SIGKILL, so no shard outlives the command that started it;
- :func:`exit_now` ends a stopped agent without the interpreter's teardown.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from typing import NoReturn

__all__ = ["READY_FD_ENV", "SUPERVISOR_PID_ENV", "die_with_parent", "exit_now", "notify_ready"]

#: The environment variable holding the write end of the readiness pipe.
READY_FD_ENV = "WSPROBE_READY_FD"
#: The environment variable holding the supervisor's process id.
SUPERVISOR_PID_ENV = "WSPROBE_SUPERVISOR_PID"
#: ``prctl(2)`` option: the signal the kernel sends when the parent dies.
_PR_SET_PDEATHSIG = 1


def notify_ready() -> None:
    """Tell the supervisor (if any) that this agent is up; closes the pipe."""
    text = os.environ.pop(READY_FD_ENV, "")
    if not text.isdigit():
        return
    fd = int(text)
    # The supervisor may already be gone; it then has nobody to tell.
    with contextlib.suppress(OSError):
        os.write(fd, b"1")
    with contextlib.suppress(OSError):
        os.close(fd)


def die_with_parent() -> bool:
    """Under a supervisor, get SIGTERM when it dies (Linux); elsewhere do nothing.

    Returns:
        Whether this process was started by a supervisor.
    """
    parent = os.environ.pop(SUPERVISOR_PID_ENV, "")
    if not parent.isdigit():
        return False
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if name is None:
        return True
    libc = ctypes.CDLL(name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):
        # The supervisor died before the request was in place.
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def exit_now(code: int) -> NoReturn:
    """End an agent process that has stopped: flush the logs, skip the heap's teardown.

    The agent has closed its store and sockets by then; what is left is freeing every
    object of every check one by one, which at 20,000 checks took about a second,
    counted against the stop (a supervisor's, or SIGTERM's bound of 3 s).
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
