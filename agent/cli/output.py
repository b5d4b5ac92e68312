"""How ``wsprobe probe`` shows a result: a phase table for people, JSON for programs.

Everything shown comes from the :class:`~agent.result.ProbeResult`, whose URL is
already redacted and whose message never holds a secret.
"""

from __future__ import annotations

import datetime
import http
import json
import time

from agent.cli.style import Style
from agent.result import PHASES, ProbeResult

__all__ = ["render_json", "render_table"]

_DAY = 86400.0


def render_json(result: ProbeResult) -> str:
    """One JSON object (``result.to_json()``), with a sorted, stable key order."""
    return json.dumps(result.to_json(), sort_keys=True, default=str)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _status(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _tls_line(result: ProbeResult, now: float) -> str | None:
    tls = result.tls
    if tls is None:
        return None
    parts = [tls.version or "unknown version"]
    if tls.cipher:
        parts.append(tls.cipher)
    if tls.cert_not_after is not None:
        days = (tls.cert_not_after - now) / _DAY
        when = datetime.datetime.fromtimestamp(tls.cert_not_after, tz=datetime.UTC)
        if days >= 0:
            parts.append(f"certificate expires in {int(days)} days ({when:%Y-%m-%d})")
        else:
            parts.append(f"certificate EXPIRED {int(-days)} days ago ({when:%Y-%m-%d})")
    return ", ".join(parts)


def _rtts(name: str, values: list[float]) -> str:
    return (
        f"{len(values)} {name}: min {_ms(min(values))} ms, avg {_ms(sum(values) / len(values))}"
        f" ms, max {_ms(max(values))} ms"
    )


def render_table(
    result: ProbeResult, *, now: float | None = None, style: Style | None = None
) -> str:
    """The human view: phases in milliseconds, then what was negotiated, then the verdict.

    Args:
        result: the finished probe.
        now: Unix time used for "days to certificate expiry" (the current time by default).
        style: colours the verdict (none by default).

    Returns:
        Text ending without a newline.
    """
    now = time.time() if now is None else now
    lines = [f"{result.kind} {result.check}: {result.url}", "", f"  {'phase':<14}{'ms':>10}"]
    for phase in PHASES:
        if phase in result.phases and phase != "total":
            lines.append(f"  {phase:<14}{_ms(result.phases[phase]):>10}")
    for phase in sorted(set(result.phases) - set(PHASES)):
        lines.append(f"  {phase:<14}{_ms(result.phases[phase]):>10}")
    if "total" in result.phases:
        note = "   (close excluded)" if "close" in result.phases else ""
        lines.append(f"  {'total':<14}{_ms(result.phases['total']):>10}{note}")
    lines.append("")
    facts: list[tuple[str, str]] = []
    if result.peer_ip:
        facts.append(("peer", result.peer_ip))
    if result.status_code is not None:
        facts.append(("status", _status(result.status_code)))
    if result.subprotocol is not None or result.status_code == 101:
        facts.append(("subprotocol", result.subprotocol or "(none)"))
    if result.extensions:
        facts.append(("extensions", ", ".join(result.extensions)))
    tls = _tls_line(result, now)
    if tls:
        facts.append(("tls info", tls))
    if result.pings:
        facts.append(("pings", _rtts("pings", result.pings)))
    if result.app_pings:
        facts.append(("app pings", _rtts("app pings", result.app_pings)))
    for step in result.steps:
        mark = "ok" if step.ok else "FAILED"
        # 1-based, like failure messages ("step 2 'subscribe'"); JSON keeps the 0-based index.
        facts.append((f"step {step.index + 1}", f"{step.name}: {mark} in {_ms(step.duration)} ms"))
    for receiver, latency in sorted(result.relay.items()):
        facts.append(("delivery", f"{receiver}: {_ms(latency)} ms"))
    if result.close_code is not None:
        reason = f" {result.close_reason}" if result.close_reason else ""
        facts.append(("close", f"{result.close_code}{reason}"))
    if result.degraded:
        facts.append(("degraded", ", ".join(result.degraded) + " over limit"))
    if result.lag_suspect:
        facts.append(("note", "agent event loop lagged during this run; timings may be high"))
    style = style or Style(color=False)
    if result.success:
        facts.append(("result", style.paint("ok", "OK")))
    else:
        reason = result.reason.value if result.reason else "unknown"
        facts.append(
            ("result", style.paint("fail", f"FAILED ({reason}) {result.message}".rstrip()))
        )
    lines += [f"  {key:<14}{value}" for key, value in facts]
    return "\n".join(lines)
