"""The deadline policy of a run: one grace, one place that turns how a run ended into its result.

A run of a check has one deadline, ``check.timeout`` after it starts, and every wait
inside a probe is bounded by it and names its own phase when cut short. Two nets catch
what those waits do not:

- :func:`run_guarded`, around the body of every probe kind (and every connect of a
  held watch session), at ``check.timeout + GRACE``: the room lets a phase's own
  timeout, which knows more, report first;
- :func:`call_probe`, around a whole probe function for its callers (the runner, and
  through it the CLI and ``/probe``), one ``GRACE`` later again: a probe that ignores
  its deadline cannot hold a concurrency slot, or a terminal, forever.

Both settle a run in one place (``_settle``), and the outcome is a failed result,
never an exception: a :class:`ProbeError` becomes its reason; overrunning becomes the
reason of the phase that was waiting (``ping_timeout`` during pings, ``expect_timeout``
during steps...; ``timeout`` in no such phase); an unexpected exception becomes
``internal`` (logged with its traceback, its text never put in the result). Only
cancellation propagates, after ``abort`` dropped the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from agent.config.models import CheckConfig
from agent.probes.errors import InternalError, ProbeError
from agent.probes.errors.mapping import deadline_failure
from agent.result import ProbeResult, Reason, new_result

__all__ = ["GRACE", "call_probe", "run_guarded"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a net waits past the deadline it guards before cutting the run. Large
#: enough that a loop stalled by load still lets a phase's own timeout (due at the
#: deadline, so run first) report before the net; small against any interval.
GRACE = 0.5


def _no_abort() -> None:
    return None


async def _settle(
    check: CheckConfig,
    work: Awaitable[_T],
    *,
    phase: Callable[[], str | None],
    abort: Callable[[], None],
    nets: int,
) -> tuple[_T | None, ProbeError | None]:
    """Await ``work`` under the ``nets``-th net; return its value, or why it failed."""
    try:
        async with asyncio.timeout(check.timeout + nets * GRACE):
            return await work, None
    except ProbeError as exc:
        return None, exc
    except TimeoutError:
        return None, deadline_failure(phase(), timeout=check.timeout)
    except Exception as exc:
        log.exception("check %s (kind %s): unexpected error", check.name, check.kind)
        return None, InternalError(type(exc).__name__)
    except BaseException:
        abort()
        raise


async def run_guarded(
    check: CheckConfig,
    result: ProbeResult,
    body: Callable[[], Awaitable[None]],
    *,
    phase: Callable[[], str | None],
    abort: Callable[[], None] = _no_abort,
) -> None:
    """Run ``body()`` under ``check.timeout + GRACE`` and record how it ended.

    Args:
        check: the check being run; its ``timeout`` is the deadline.
        result: where the outcome is recorded; ``success`` is set when no reason is.
        body: the probe's work; raises ``ProbeError`` for a failing target.
        phase: the phase the body is in now (None: outside any phase), which names
            the reason when the net cuts it.
        abort: drops any open connection at once; called on cancellation.

    Raises:
        asyncio.CancelledError: only cancellation propagates.
    """
    _, failure = await _settle(check, body(), phase=phase, abort=abort, nets=1)
    if failure is None:
        result.success = result.reason is None
    else:
        result.fail(failure.reason, str(failure))


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
    if probe is None:
        return new_result(check).fail(Reason.INTERNAL, f"no probe for kind {check.kind!r}")
    # The probe guards its own body with the first net; this one is a GRACE later.
    returned, failure = await _settle(
        check, probe(check), phase=lambda: None, abort=_no_abort, nets=2
    )
    if returned is not None:
        return returned
    if failure is None:  # pragma: no cover - a ProbeFn always returns a result
        failure = InternalError("no result")
    return new_result(check).fail(failure.reason, str(failure))
