"""The deadline policy of a run: one grace, one place that turns how a run ended into its result.

A run of a check has one deadline, ``check.timeout`` after it starts, and every wait
inside a probe is bounded by it and names its own phase when cut short. Two nets,
both :func:`run_guarded`, catch what those waits do not:

- around the body of every probe kind (and every connect of a held watch session), at
  ``check.timeout + GRACE``: the room lets a phase's own timeout, which knows more,
  report first;
- around a whole probe function for its callers (:func:`call_probe`: the runner, and
  through it the CLI and ``/probe``), one ``GRACE`` later again: a probe that ignores
  its deadline cannot hold a concurrency slot, or a terminal, forever.

Either way the outcome is a failed result, never an exception: a :class:`ProbeError`
becomes its reason, overrunning becomes the reason of the phase that was waiting
(``ping_timeout`` during pings, ``expect_timeout`` during steps...; ``timeout`` in no
such phase), an unexpected
exception becomes ``internal`` (logged with its traceback, its text never put in the
result). Only cancellation propagates, after ``abort`` dropped the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agent.config.models import CheckConfig
from agent.probes.errors import InternalError, ProbeError
from agent.probes.errors.mapping import deadline_failure
from agent.result import ProbeResult, Reason, new_result

__all__ = ["GRACE", "call_probe", "run_guarded"]

log = logging.getLogger(__name__)

#: Seconds a net waits past the deadline it guards before cutting the run. Large
#: enough that a loop stalled by load still lets a phase's own timeout (due at the
#: deadline, so run first) report before the net; small against any interval.
GRACE = 0.5


def _no_abort() -> None:
    return None


async def run_guarded(
    check: CheckConfig,
    result: ProbeResult,
    body: Callable[[], Awaitable[None]],
    *,
    phase: Callable[[], str | None],
    abort: Callable[[], None] = _no_abort,
    nets: int = 1,
) -> None:
    """Run ``body()`` under ``check.timeout + nets * GRACE`` and record how it ended.

    Args:
        check: the check being run; its ``timeout`` is the deadline.
        result: where the outcome is recorded; ``success`` is set when no reason is.
        body: the probe's work; raises ``ProbeError`` for a failing target.
        phase: the phase the body is in now (None: outside any phase), named when
            the net cuts it.
        abort: drops any open connection at once; called on cancellation.
        nets: how many nets this one sits outside of (2 for :func:`call_probe`,
            whose probe guards its own body).

    Raises:
        asyncio.CancelledError: only cancellation propagates.
    """
    try:
        async with asyncio.timeout(check.timeout + nets * GRACE):
            await body()
        result.success = result.reason is None
    except ProbeError as exc:
        result.fail(exc.reason, str(exc))
    except TimeoutError:
        late = deadline_failure(phase(), timeout=check.timeout)
        result.fail(late.reason, str(late))
    except Exception as exc:
        log.exception("check %s (kind %s): unexpected error", check.name, check.kind)
        result.fail(Reason.INTERNAL, str(InternalError(type(exc).__name__)))
    except BaseException:
        abort()
        raise


async def call_probe(
    probe: Callable[[CheckConfig], Awaitable[ProbeResult]] | None, check: CheckConfig
) -> ProbeResult:
    """Run one probe function for ``check`` under the outer net; always return a result.

    Args:
        probe: the kind's probe function (``PROBES[check.kind]``), or None when the
            kind has none (a failed ``internal`` result).
        check: the check to run.

    Returns:
        The probe's result, or a failed one when it crashed or overran the net.
    """
    result = new_result(check)
    if probe is None:
        return result.fail(Reason.INTERNAL, f"no probe for kind {check.kind!r}")
    returned: ProbeResult | None = None

    async def body() -> None:
        nonlocal returned
        returned = await probe(check)

    await run_guarded(check, result, body, phase=lambda: None, nets=2)
    return returned if returned is not None else result
