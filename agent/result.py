"""What one run of a check produced.

A failing target is a result, not an exception: every probe kind returns a
:class:`ProbeResult`, and a failed one carries exactly one :class:`Reason` from the
closed set in PRODUCT.md section 5 plus a human message that never holds a secret.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.redact import redact_url

__all__ = [
    "PHASES",
    "CheckIdentity",
    "ProbeResult",
    "Reason",
    "StepResult",
    "TLSInfo",
    "encode_result",
    "new_result",
]


class Reason(enum.StrEnum):
    """Why a probe failed; the only values ``reason`` labels and fields may take."""

    DNS = "dns"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    NETWORK = "network"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_CERT_EXPIRED = "tls_cert_expired"
    TLS_CERT_UNTRUSTED = "tls_cert_untrusted"
    TLS_HOSTNAME_MISMATCH = "tls_hostname_mismatch"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HANDSHAKE_STATUS = "handshake_status"
    HANDSHAKE_INVALID = "handshake_invalid"
    REDIRECT = "redirect"
    SUBPROTOCOL_MISMATCH = "subprotocol_mismatch"
    AUTH_REJECTED = "auth_rejected"
    EXPECT_TIMEOUT = "expect_timeout"
    EXPECT_MISMATCH = "expect_mismatch"
    PING_TIMEOUT = "ping_timeout"
    CLOSED = "closed"
    MESSAGE_TOO_BIG = "message_too_big"
    PROTOCOL_ERROR = "protocol_error"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


#: Phase names, in pipeline order. ``total`` spans resolve to the end of the last
#: measured phase; ``close`` is reported but never part of ``total``.
PHASES: tuple[str, ...] = (
    "resolve",
    "connect",
    "tls",
    "handshake",
    "protocol",
    "auth",
    "steps",
    "first_message",
    "ping",
    "app_ping",
    "close",
    "total",
)


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the TLS layer negotiated."""

    version: str | None = None
    cipher: str | None = None
    #: Earliest ``notAfter`` in the peer's chain, as a Unix timestamp.
    cert_not_after: float | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """Outcome of one scripted step."""

    index: int
    name: str
    duration: float
    ok: bool


def _read_only(*args: object, **kwargs: object) -> Any:
    raise TypeError("a settled ProbeResult is read-only (see ProbeResult.settle)")


class _NoItems(list[Any]):
    """The empty list of every settled result: one object, which nothing may change."""

    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = _read_only
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only


class _NoEntries(dict[Any, Any]):
    """The empty dict of every settled result: one object, which nothing may change."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    update = setdefault = pop = popitem = clear = _read_only


_NO_ITEMS: Any = _NoItems()
_NO_ENTRIES: Any = _NoEntries()


@dataclass(slots=True)
class ProbeResult:
    """Everything one run of a check measured.

    Filled in by a probe while it runs, then treated as read-only by the rest of the
    pipeline (metrics, history, alert state).
    """

    check: str
    kind: str
    url: str  # credentials removed, see agent.redact
    started_at: float  # Unix wall-clock time the run began
    success: bool = False
    reason: Reason | None = None
    message: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # seconds, keys from PHASES
    pings: list[float] = field(default_factory=list)  # protocol ping RTTs, seconds
    app_pings: list[float] = field(default_factory=list)  # application ping RTTs, seconds
    status_code: int | None = None
    subprotocol: str | None = None
    extensions: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    tls: TLSInfo | None = None
    peer_ip: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    #: Per-receiver delivery latency of a relay check, seconds.
    relay: dict[str, float] = field(default_factory=dict)
    #: Phases (or ``ping``) that exceeded the check's latency limits.
    degraded: list[str] = field(default_factory=list)
    #: True when the agent's event loop lagged over budget during this run's timing
    #: window, so its latency figures may be inflated.
    lag_suspect: bool = False
    #: True when the run failed on a deadline the agent's own stalls consumed (see
    #: ``agent.runtime.runner``): an agent problem, not the target's. Such a run never
    #: counts toward the check's alert, its success ratio or its ``probe_*`` gauges.
    agent_problem: bool = False

    def fail(self, reason: Reason, message: str) -> ProbeResult:
        """Mark this result failed with one reason; the first failure recorded wins."""
        if self.reason is None:
            self.success = False
            self.reason = reason
            self.message = message
        return self

    def judge_limits(self, limits: Mapping[str, float]) -> None:
        """Add to ``degraded`` every limit this run exceeded.

        Keys are phase names, plus ``ping`` (the slowest protocol ping) and ``relay``
        (the slowest relay delivery). A limit with nothing measured is not judged.
        """
        for key, limit in limits.items():
            if key == "ping":
                value = max(self.pings, default=None)
            elif key == "relay":
                value = max(self.relay.values(), default=None)
            else:
                value = self.phases.get(key)
            if value is not None and value > limit:
                self.degraded.append(key)

    def settle(self) -> ProbeResult:
        """Declare this result finished: its empty lists and dicts become shared ones.

        A result is kept after its run (the last one of each check, for metrics and the
        API), and its seven containers are mostly empty: ~400 B per check. Each empty
        one is replaced by one shared empty list or dict that refuses changes, so a
        settled result is read-only (changing one raises ``TypeError``). Equality, JSON
        and ``to_json`` are unchanged.

        Returns:
            This result.
        """
        for name in _LIST_FIELDS:
            if not getattr(self, name):
                setattr(self, name, _NO_ITEMS)
        for name in _DICT_FIELDS:
            if not getattr(self, name):
                setattr(self, name, _NO_ENTRIES)
        return self

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the shape of ``wsprobe probe --json`` and the API."""
        out = dataclasses.asdict(self)
        for name in _LIST_FIELDS:  # plain ones from a settled result too
            if not out[name]:
                out[name] = []
        for name in _DICT_FIELDS:
            if not out[name]:
                out[name] = {}
        out["reason"] = self.reason.value if self.reason else None
        out["tls"] = dataclasses.asdict(self.tls) if self.tls else None
        return out


#: URL -> the URL as results show it: redacted once per URL, not per run (it parses
#: the URL and its query). A plain dict, emptied when full: an LRU cache's entry costs
#: ~100 B more per check.
_REDACTED: dict[str, str] = {}
_REDACTED_MAX = 1 << 15


def _redacted(url: str) -> str:
    found = _REDACTED.get(url)
    if found is None:
        if len(_REDACTED) >= _REDACTED_MAX:
            _REDACTED.clear()
        found = redact_url(url)
        # Most URLs show as written: keep the check's own text, not an equal copy.
        _REDACTED[url] = found = url if found == url else found
    return found


class CheckIdentity(Protocol):
    """What a result copies from the check it is for (an ``agent.config.CheckConfig``).

    A protocol, not the config model: config imports this module's vocabulary (phases),
    so this module does not import config.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def url(self) -> str: ...


def new_result(check: CheckIdentity) -> ProbeResult:
    """An empty result for one run of ``check``, started now (URL already redacted).

    The one way a result is begun: every probe kind, the watch session's reports and
    the deadline backstop start from it, so check, kind and URL always agree.
    """
    return ProbeResult(
        check=check.name, kind=check.kind, url=_redacted(check.url), started_at=time.time()
    )


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult))
_LIST_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult) if f.default_factory is list)
_DICT_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult) if f.default_factory is dict)


def _nested(obj: object) -> object:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"cannot encode {type(obj).__name__}")


#: One encoder for every row: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_nested)


def encode_result(result: ProbeResult) -> str:
    """The JSON text of ``result.to_json()``, built without its deep copy.

    ``dataclasses.asdict`` deep-copies every list and dict and dominated the cost of
    a history write; json serialises the live values directly (``Reason`` is a str).
    """
    fields = {name: getattr(result, name) for name in _RESULT_FIELDS}
    return _ENCODER.encode(fields)
