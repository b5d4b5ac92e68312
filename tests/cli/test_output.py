"""agent.cli.output: the phase table and JSON of wsprobe probe, from crafted results."""

from __future__ import annotations

import json

import pytest

from agent.cli.output import render_json, render_table
from agent.result import ProbeResult, Reason, StepResult, TLSInfo

NOW = 1_800_000_000.0
DAY = 86400.0


def result(**fields: object) -> ProbeResult:
    base = ProbeResult(check="c", kind="probe", url="wss://h/x?token=REDACTED", started_at=NOW)
    for key, value in fields.items():
        setattr(base, key, value)
    return base


def facts(text: str) -> dict[str, str]:
    """The 'key   value' lines after the phase table."""
    out = {}
    for line in text.split("\n\n", 2)[2].splitlines():
        out[line[2:16].strip()] = line[16:]
    return out


def test_phases_in_pipeline_order_in_ms_total_last() -> None:
    """Phases print in pipeline order in milliseconds, total last and marked close-free."""
    text = render_table(
        result(
            success=True,
            phases={"total": 0.0123, "close": 0.002, "handshake": 0.004, "resolve": 0.0005},
        ),
        now=NOW,
    )
    rows = [line.split() for line in text.split("\n\n")[1].splitlines()[1:]]
    assert rows == [
        ["resolve", "0.5"],
        ["handshake", "4.0"],
        ["close", "2.0"],
        ["total", "12.3", "(close", "excluded)"],
    ]


@pytest.mark.parametrize(
    ("not_after", "expected"),
    [
        (NOW + 30.5 * DAY, "TLSv1.3, certificate expires in 30 days (2027-02-14)"),
        (NOW - 2.5 * DAY, "TLSv1.3, certificate EXPIRED 2 days ago (2027-01-12)"),
        (None, "TLSv1.3"),
    ],
    ids=["valid", "expired", "unknown-expiry"],
)
def test_tls_line_shows_version_and_days_to_expiry(not_after: float | None, expected: str) -> None:
    """The tls info line gives the version and whole days to (or since) expiry."""
    text = render_table(
        result(success=True, tls=TLSInfo(version="TLSv1.3", cert_not_after=not_after)), now=NOW
    )
    assert facts(text)["tls info"] == expected


def test_failure_shows_reason_message_status_pings_and_steps() -> None:
    """A failed run lists what it saw, then FAILED (reason) and the message."""
    r = result(status_code=101, subprotocol="chat", pings=[0.001, 0.003], close_code=1011)
    r.steps = [StepResult(index=0, name="subscribe", duration=0.0021, ok=False)]
    r.fail(Reason.CLOSED, "server closed with 1011 (internal error)")
    got = facts(render_table(r, now=NOW))
    assert got["status"] == "101 Switching Protocols"
    assert got["subprotocol"] == "chat"
    assert got["pings"] == "2 pings: min 1.0 ms, avg 2.0 ms, max 3.0 ms"
    assert got["step 1"] == "subscribe: FAILED in 2.1 ms"
    assert got["close"] == "1011"
    assert got["result"] == "FAILED (closed) server closed with 1011 (internal error)"


def test_json_is_one_object_with_reason_as_text() -> None:
    """render_json is one line of JSON; the reason is its string value, tls an object."""
    r = result(tls=TLSInfo(version="TLSv1.2", cert_not_after=NOW))
    r.fail(Reason.TLS_CERT_EXPIRED, "certificate expired")
    text = render_json(r)
    assert "\n" not in text
    data = json.loads(text)
    assert (data["reason"], data["success"]) == ("tls_cert_expired", False)
    assert data["tls"] == {"version": "TLSv1.2", "cipher": None, "cert_not_after": NOW}
