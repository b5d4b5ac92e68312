"""One log line per run, as ``agent.log_results`` asks: failures, changes or all.

A line carries the check, ``success``, the ``reason`` of a failure, the run's
``duration`` and each measured phase in seconds as structured fields, so the text
format reads as logfmt (``check=feed success=false reason=dns duration=0.0021
resolve=0.0021``) and the JSON format as keys. The human message of a failure is the
``msg``; it never holds a secret (probes scrub them). Raises nothing of its own.
"""

from __future__ import annotations

import logging

from agent.config.models import CheckConfig
from agent.config.settings import DEFAULT_LOG_RESULTS, LogResults
from agent.result import ProbeResult

__all__ = ["LogResults", "ResultLog"]

log = logging.getLogger("agent.runtime.runner")


class ResultLog:
    """Decides which runs get a line and writes it.

    Args:
        policy: ``failures`` (every failed run), ``changes`` (a check's first run and
            every flip between success and failure, both ways) or ``all``.
    """

    def __init__(self, *, policy: LogResults = DEFAULT_LOG_RESULTS) -> None:
        self.policy: LogResults = policy
        #: Whether each check's last run succeeded, for ``changes``.
        self._last: dict[str, bool] = {}

    def record(self, check: CheckConfig, result: ProbeResult, *, duration: float) -> None:
        """Log ``result`` if the policy wants it."""
        previous = self._last.get(check.name)
        self._last[check.name] = result.success
        if self.policy == "failures" and result.success:
            return
        if self.policy == "changes" and previous == result.success:
            return
        # check and reason first: the pair log searches start from.
        fields: dict[str, object] = {"check": check.name}
        if result.reason is not None and not result.success:
            fields["reason"] = result.reason.value
        fields["success"] = result.success
        fields["duration"] = round(duration, 6)
        for phase, seconds in result.phases.items():
            if phase != "total":
                fields[phase] = round(seconds, 6)
        if result.degraded:
            fields["degraded"] = ",".join(result.degraded)
        if result.lag_suspect:
            fields["lag_suspect"] = True
        fields["kind"] = check.kind
        if result.success:
            log.info("probe ok", extra=fields)
        elif result.agent_problem:
            fields["agent_problem"] = True
            log.warning(
                "probe cut short by the agent's own overload, not counted against the target: %s",
                result.message,
                extra=fields,
            )
        else:
            log.warning("probe failed: %s", result.message, extra=fields)
