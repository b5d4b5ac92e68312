"""What every notifier receives and the shared HTTP path they send through.

An :class:`AlertEvent` wraps the generic webhook payload (PRODUCT.md section 8) built
by :mod:`agent.alerting.events`; each notifier renders it into its receiver's format.
HTTP notifiers only *render* (pure, golden-testable); :meth:`HttpNotifier.send` posts
inside the one httpx error boundary with a total per-attempt timeout.
"""

from __future__ import annotations

import abc
import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from agent.config.alerting import ReceiverConfig
from agent.notifiers.errors import check_status, map_httpx_errors

__all__ = [
    "USER_AGENT",
    "AlertEvent",
    "Delivery",
    "Group",
    "HttpNotifier",
    "HttpRequest",
    "Notifier",
    "dumps",
    "facts",
    "iso",
    "summary",
]

USER_AGENT = "wsprobe-alerting/1"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert event, as queued in the outbox."""

    #: The generic webhook body: version, event, check, url, labels, reason, ...
    payload: dict[str, Any]
    #: Link back to the agent's check API (Alertmanager ``generatorURL``).
    generator_url: str = ""
    #: The check's reminder period; Alertmanager uses it to keep a firing alert alive.
    repeat_interval: float = 0.0

    @property
    def event(self) -> str:
        """``firing``, ``resolved``, ``reminder``, ``degraded`` or ``flapping``."""
        return str(self.payload["event"])

    @property
    def alert(self) -> str:
        """Which alert of the check: ``down`` or ``degraded``."""
        return str(self.payload.get("alert", "down"))

    @property
    def check(self) -> str:
        """The check's name."""
        return str(self.payload["check"])

    @property
    def is_resolved(self) -> bool:
        """True for the event that ends an alert."""
        return self.event == "resolved"

    def to_json(self) -> str:
        """Serialise for the outbox."""
        return json.dumps(
            {
                "payload": self.payload,
                "generator_url": self.generator_url,
                "repeat_interval": self.repeat_interval,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> AlertEvent:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            payload=data["payload"],
            generator_url=data.get("generator_url", ""),
            repeat_interval=float(data.get("repeat_interval", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one event to one receiver."""

    #: UUID, the same on every retry of this event to this receiver.
    id: str
    #: 1 for the first attempt.
    attempt: int
    #: Wall-clock Unix time of this attempt (signature timestamps use it).
    now: float


@dataclass(frozen=True, slots=True)
class Group:
    """Several events delivered to one receiver in one request."""

    events: tuple[AlertEvent, ...]
    #: Each event's own delivery id (same order), so receivers can deduplicate per event.
    delivery_ids: tuple[str, ...]
    #: The ``group_by`` label values the events share.
    labels: dict[str, str] = field(default_factory=dict)

    def counts(self) -> str:
        """``3 firing, 1 resolved``: how many events of each kind, in a stable order."""
        order = ("firing", "flapping", "reminder", "degraded", "resolved")
        kinds = [e.event for e in self.events]
        known = [k for k in order if k in kinds]
        others = sorted(set(kinds) - set(order))  # a kind added later still counts
        return ", ".join(f"{kinds.count(k)} {k}" for k in known + others)

    def heading(self) -> str:
        """``wsprobe: 3 firing, 1 resolved (team=edge)``: the title of a grouped message."""
        title = f"wsprobe: {self.counts()}"
        if self.labels:
            title += " (" + ", ".join(f"{k}={v}" for k, v in self.labels.items()) + ")"
        return title


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A rendered POST: what goes on the wire."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """A receiver type: checks its config and delivers events."""

    def validate(self, receiver: ReceiverConfig) -> list[str]:
        """Return one message per problem in ``receiver`` (empty when usable)."""
        ...

    async def send(
        self,
        receiver: ReceiverConfig,
        event: AlertEvent,
        delivery: Delivery,
        *,
        client: httpx.AsyncClient,
    ) -> None:
        """Deliver ``event`` once; raise ``NotifyError`` on failure."""
        ...


def iso(ts: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T22:00:00.000Z``."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def dumps(body: Any) -> bytes:
    """Compact, deterministic JSON bytes (what is signed is what is sent)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def facts(event: AlertEvent) -> list[tuple[str, object]]:
    """The labelled facts a chat message shows about one event, in display order."""
    p = event.payload
    out: list[tuple[str, object]] = [
        ("Check", p["check"]),
        ("URL", p["url"]),
        ("Last failure" if event.is_resolved else "Reason", p.get("reason") or "-"),
        ("Started", p.get("started_at") or "-"),
    ]
    if event.is_resolved:
        out.append(("Resolved", p.get("resolved_at") or "-"))
    else:
        out.append(("Consecutive failures", p.get("consecutive_failures", 0)))
    return out


def summary(event: AlertEvent) -> str:
    """A one-line human summary, e.g. ``[FIRING] chat-ws: closed (code 1011)``."""
    p = event.payload
    check = p["check"]
    if event.event == "resolved":
        what = "degraded alert resolved" if event.alert == "degraded" else "recovered"
        return f"[RESOLVED] {check}: {what}"
    if event.event == "degraded":
        phases = ", ".join(p.get("degraded") or []) or "latency"
        return f"[DEGRADED] {check}: over limit ({phases})"
    tag = {"reminder": "REMINDER", "flapping": "FLAPPING"}.get(event.event, "FIRING")
    reason = p.get("reason") or "failed"
    message = p.get("message") or ""
    return f"[{tag}] {check}: {reason}" + (f" - {message}" if message else "")


class HttpNotifier(abc.ABC):
    """Base of the HTTP receivers: validate the URL, render, POST."""

    #: Used when the receiver config has no ``url``; None makes ``url`` required.
    default_url: str | None = None
    type_name: str = ""

    def validate(self, receiver: ReceiverConfig) -> list[str]:
        """Return one message per problem in ``receiver`` (empty when usable)."""
        problems: list[str] = []
        if receiver.url is None:
            if self.default_url is None:
                problems.append(f"url: required for {self.type_name} receivers")
        else:
            parts = urlsplit(receiver.url.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append("url: must be an absolute http:// or https:// URL")
        return problems + self.validate_extra(receiver)

    def validate_extra(self, receiver: ReceiverConfig) -> list[str]:
        """Type-specific checks beyond the URL."""
        return []

    def target_url(self, receiver: ReceiverConfig) -> str:
        """The URL to POST to (secret: never log it)."""
        if receiver.url is not None:
            return receiver.url.get_secret_value()
        assert self.default_url is not None  # validate() guarantees one of the two
        return self.default_url

    def json_request(self, receiver: ReceiverConfig, body: Any) -> HttpRequest:
        """A POST of ``body`` as compact JSON to the receiver's URL."""
        return HttpRequest(url=self.target_url(receiver), body=dumps(body))

    @abc.abstractmethod
    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Build the request for one attempt; pure, so golden files can pin it."""

    #: True when :meth:`render_group` puts several events in one request.
    groups: bool = False
    #: Requests per minute the service accepts, when it documents a limit.
    default_rate_limit: int | None = None

    def render_group(
        self, receiver: ReceiverConfig, group: Group, delivery: Delivery
    ) -> HttpRequest:
        """Build one request carrying every event of ``group`` (types with ``groups``)."""
        raise NotImplementedError(f"{self.type_name} receivers do not group events")

    async def send(
        self,
        receiver: ReceiverConfig,
        event: AlertEvent,
        delivery: Delivery,
        *,
        client: httpx.AsyncClient,
    ) -> None:
        """POST the rendered request within ``receiver.timeout`` in total.

        Raises:
            NotifyError: timeout, connection failure, or a non-2xx answer.
        """
        await self.post(receiver, self.render(receiver, event, delivery), client=client)

    async def post(
        self, receiver: ReceiverConfig, request: HttpRequest, *, client: httpx.AsyncClient
    ) -> None:
        """POST a rendered request (one event, or a group) within ``receiver.timeout``.

        Raises:
            NotifyError: timeout, connection failure, or a non-2xx answer.
        """
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **{k: v.get_secret_value() for k, v in receiver.headers.items()},
            **request.headers,
        }
        # httpx timeouts are per operation; a receiver dripping one byte a second
        # would never trip them, so the whole attempt is bounded as well.
        with map_httpx_errors(receiver.name, timeout=receiver.timeout):
            async with asyncio.timeout(receiver.timeout):
                response = await client.post(
                    request.url, content=request.body, headers=headers, timeout=receiver.timeout
                )
            check_status(receiver.name, response)
