"""The liveness result a held session hands ``on_result``: a ProbeResult like any other.

Pure: builds one :class:`~agent.result.ProbeResult` from a verdict and what the
session measured since its last report, so metrics, history and alerting treat a
watch check like a probe (``probe_success`` is liveness).
"""

from __future__ import annotations

from typing import NamedTuple

from agent.config import CheckConfig
from agent.result import ProbeResult, Reason, TLSInfo, new_result
from agent.watch.liveness import Verdict

__all__ = ["ConnectFacts", "liveness_result"]


class ConnectFacts(NamedTuple):
    """What every report copies from the current connection's connect result.

    Held by a session for the connection's life in place of that result (a
    ProbeResult with its empty dicts and lists is ~0.7 KB; this is ~100 B).
    """

    status_code: int | None
    subprotocol: str | None
    extensions: tuple[str, ...]
    tls: TLSInfo | None
    peer_ip: str | None

    @classmethod
    def of(cls, result: ProbeResult) -> ConnectFacts:
        """The facts of connect result ``result``: one object for equal facts.

        Sessions to one target mostly connect alike (same status, extensions and peer
        address), so the first such tuple is shared; a tuple and its peer address text
        are ~150 B per session.
        """
        facts = cls(
            result.status_code,
            result.subprotocol,
            tuple(result.extensions),
            result.tls,
            result.peer_ip,
        )
        found = _FACTS.get(facts)
        if found is None:
            if len(_FACTS) >= _FACTS_MAX:
                _FACTS.clear()
            found = _FACTS[facts] = facts
        return found


#: Facts seen, for sessions that connect alike to share one; emptied when full.
_FACTS: dict[ConnectFacts, ConnectFacts] = {}
_FACTS_MAX = 4096


def liveness_result(
    check: CheckConfig,
    verdict: Verdict,
    *,
    connect: ProbeResult | ConnectFacts | None,
    pings: list[float],
    new_gaps: int,
) -> ProbeResult:
    """Build the result of one report.

    Args:
        check: The watch check.
        verdict: Liveness now.
        connect: The current connection's connect result for the first report since
            it opened (its phases and steps are included, once), its facts for the
            later ones, None while disconnected.
        pings: Protocol ping RTTs measured since the last report, seconds.
        new_gaps: Sequence gaps seen since the last report.

    Returns:
        A successful result when live; else failed with the verdict's reason and
        message. ``degraded`` lists exceeded ``limits`` and ``gap``. Settled
        (read-only, see :meth:`~agent.result.ProbeResult.settle`).
    """
    result = new_result(check)
    if verdict.live:
        result.success = True
        result.message = verdict.message
    else:
        result.fail(verdict.reason or Reason.INTERNAL, verdict.message)
    if connect is not None:
        result.status_code = connect.status_code
        result.subprotocol = connect.subprotocol
        result.extensions = list(connect.extensions)
        result.tls = connect.tls
        result.peer_ip = connect.peer_ip
        if isinstance(connect, ProbeResult):
            result.phases = dict(connect.phases)
            result.steps = list(connect.steps)
    result.pings = list(pings)
    result.judge_limits(check.limits)
    if new_gaps:
        result.degraded.append("gap")
        if result.success:
            note = f"{new_gaps} sequence gap(s) since the last report"
            result.message = f"{result.message}; {note}" if result.message else note
    # The session's last report is kept until the next (metrics, API), for every check.
    return result.settle()
