"""agent.watch.report: the liveness result of one report."""

from __future__ import annotations

from agent.config.models import CheckConfig
from agent.result import Reason
from agent.watch.liveness import Verdict
from agent.watch.report import ConnectFacts, liveness_result

_CHECK = CheckConfig.model_validate(
    {"name": "w", "kind": "watch", "url": "ws://127.0.0.1:1/", "limits": {"ping": "10ms"}}
)
_FACTS = ConnectFacts(101, None, (), None, "127.0.0.1")


def test_reports_share_their_empty_parts_and_keep_their_own() -> None:
    """Two reports hold one shared empty of each unfilled part; filled parts are their own."""
    live = liveness_result(_CHECK, Verdict(True), connect=_FACTS, pings=[], new_gaps=0)
    down = liveness_result(
        _CHECK,
        Verdict(False, Reason.CLOSED, "closed"),
        connect=None,
        pings=[0.02],
        new_gaps=2,
    )
    assert live.success
    assert live.steps is down.steps
    assert live.phases is down.phases
    assert live.pings == []
    assert live.degraded == []
    assert down.pings == [0.02]
    assert down.degraded == ["ping", "gap"]
    assert down.reason is Reason.CLOSED
    assert live.to_json()["degraded"] == []


def test_sessions_connected_alike_share_their_facts() -> None:
    """Equal connect facts are one object; different ones stay apart."""
    from agent.result import ProbeResult

    def connected(peer: str) -> ProbeResult:
        result = ProbeResult(check="w", kind="watch", url="ws://h/", started_at=0.0)
        result.status_code, result.peer_ip = 101, "".join(["10.0.0.", peer])
        return result

    one, two, other = (ConnectFacts.of(connected(p)) for p in ("1", "1", "2"))
    assert one is two
    assert one == ConnectFacts(101, None, (), None, "10.0.0.1")
    assert other.peer_ip == "10.0.0.2"
