"""The outer guard every one-shot probe kind runs its body inside.

It turns the body's outcome into the result: a :class:`ProbeError` becomes its reason,
overrunning the check's deadline becomes ``timeout`` naming the phase it was in, an
unexpected exception becomes ``internal`` (logged with its traceback, its text never
put in the result), and cancellation aborts the connection and propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agent.config.models import CheckConfig
from agent.probes.errors import InternalError, ProbeError, ProbeTimeout
from agent.result import ProbeResult, Reason

__all__ = ["run_guarded"]

log = logging.getLogger(__name__)


async def run_guarded(
    check: CheckConfig,
    result: ProbeResult,
    body: Callable[[], Awaitable[None]],
    *,
    phase: Callable[[], str],
    abort: Callable[[], None],
    grace: float,
) -> None:
    """Run ``body()`` under ``check.timeout + grace`` and record how it ended.

    Args:
        check: the check being run; its ``timeout`` is the hard deadline.
        result: where the outcome is recorded; ``success`` is set when no reason is.
        body: the probe's work; raises ``ProbeError`` for a failing target.
        phase: the phase the body is in now, named in a ``timeout`` message.
        abort: drops any open connection at once; called on cancellation.
        grace: slack past ``check.timeout`` for the body's own deadline handling
            to report the more specific reason first.

    Raises:
        asyncio.CancelledError: only cancellation propagates.
    """
    try:
        async with asyncio.timeout(check.timeout + grace):
            await body()
        result.success = result.reason is None
    except ProbeError as exc:
        result.fail(exc.reason, str(exc))
    except TimeoutError:
        result.fail(Reason.TIMEOUT, str(ProbeTimeout(phase=phase(), timeout=check.timeout)))
    except Exception as exc:
        log.exception("check %s (kind %s): unexpected error", check.name, check.kind)
        result.fail(Reason.INTERNAL, str(InternalError(type(exc).__name__)))
    except BaseException:
        abort()
        raise
