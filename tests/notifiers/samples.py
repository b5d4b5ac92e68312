"""Fixed alert events for notifier tests (fixed clock, ids and agent)."""

from __future__ import annotations

from agent.alerting.events import build_event
from agent.alerting.state import Transition
from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import AlertEvent, Delivery
from agent.result import ProbeResult, Reason

T0 = 1_795_000_000.0  # 2026-11-18T...Z, fixed
DELIVERY = Delivery(id="5f0c9a56-8a44-4b43-9d1e-3f2c1b0a9e77", attempt=1, now=T0 + 130.0)


def last_result(success: bool) -> ProbeResult:
    """A result with phases and pings, failed as 'closed' unless success."""
    r = ProbeResult(
        check="chat",
        kind="probe",
        url="wss://chat.example.com/ws",
        started_at=T0 + 120.0,
        phases={"resolve": 0.002, "connect": 0.011, "tls": 0.024, "handshake": 0.031},
        pings=[0.004, 0.006],
        status_code=101,
    )
    if success:
        r.success = True
        r.phases["total"] = 0.081
    else:
        r.fail(Reason.CLOSED, "server closed the connection: code 1011 (internal error)")
    return r


def event(kind: str) -> AlertEvent:
    """firing | resolved | reminder | degraded event of check 'chat'."""
    started = T0
    resolved = T0 + 120.0 if kind == "resolved" else None
    failing = kind in ("firing", "reminder")
    transition = Transition(
        check="chat",
        alert="degraded" if kind == "degraded" else "down",
        event=kind,  # type: ignore[arg-type]
        at=T0 + 120.0,
        started_at=started,
        resolved_at=resolved,
        consecutive_failures=3 if failing else 0,
        # A resolved down alert still names the last failure, as the state machine does.
        reason=None if kind == "degraded" else "closed",
        message="over latency limit: handshake"
        if kind == "degraded"
        else "server closed the connection: code 1011 (internal error)",
        degraded=("handshake",) if kind == "degraded" else (),
    )
    return build_event(
        transition,
        url="wss://bot:hunter2@chat.example.com/ws?token=s3cr3t",
        labels={"team": "chat", "env": "prod"},
        result=last_result(success=not failing),
        agent_id="0b7d1c1e-7f5e-4a53-a1b2-2c3d4e5f6a7b",
        location="eu-west",
        generator_url="http://127.0.0.1:9470/api/v1/checks",
        repeat_interval=3600.0,
    )


def receiver(type_: str, url: str | None = None, **extra: object) -> ReceiverConfig:
    """A receiver config of ``type_`` pointing at ``url``."""
    return ReceiverConfig.model_validate({"name": type_, "type": type_, "url": url, **extra})
