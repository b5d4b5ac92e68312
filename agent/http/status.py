"""What the status page, the badges and the API say about a check: its display state,
its uptime over the standard windows and the filters of ``/api/v1/checks``.

Pure functions over ``/api/v1/checks`` items and :meth:`Rollups.availability` rows;
no I/O. Raises :class:`ValueError` (with the offending text) for a malformed filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from agent.result import ProbeResult
from agent.storage.rollup_bucket import Bucket

__all__ = [
    "RANGES",
    "STATES",
    "WINDOWS",
    "RollupView",
    "StatusSource",
    "display_state",
    "filter_checks",
    "is_public",
    "parse_label_filters",
    "summary_item",
    "uptimes",
]

#: Display states, most important first: what a person must see wins.
STATES: tuple[str, ...] = ("maintenance", "flapping", "down", "degraded", "up", "unknown")
#: History ranges: name -> (span, bucket step) in seconds. Steps under an hour read the
#: per-minute rollups (kept two days), the others the per-hour ones.
RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 600),
    "7d": (7 * 86400, 3600),
    "30d": (30 * 86400, 6 * 3600),
    "90d": (90 * 86400, 86400),
}
#: Uptime windows shown and served, in seconds.
WINDOWS: dict[str, int] = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}


class RollupView(Protocol):
    """Long-term aggregates (agent.storage.rollups.Rollups); every read blocks, and
    sees the results added before the last ``submit_pending`` (a loop-thread call)."""

    def submit_pending(self) -> None: ...

    def availability(self, checks: Sequence[str], *, now: float) -> dict[str, dict[str, Any]]: ...

    def buckets(self, check: str, *, since: float, step: int) -> list[tuple[int, Bucket]]: ...

    def incidents(self, check: str, *, limit: int = 50) -> list[dict[str, Any]]: ...

    def recent_latency(
        self, checks: list[str], *, since: float, step: int
    ) -> dict[str, dict[int, float]]: ...


class StatusSource(Protocol):
    """What the status page needs from the running agent (agent.runtime.daemon.Daemon)."""

    def checks_json(self, *, name: str | None, history: int) -> list[dict[str, Any]]: ...

    def check_names(self) -> list[str]: ...

    def check_summaries(self, names: Iterable[str]) -> list[dict[str, Any]]: ...

    def rollup_view(self) -> RollupView | None: ...

    def agent_location(self) -> str: ...


def summary_item(
    name: str,
    labels: Mapping[str, str],
    last: ProbeResult | None,
    *,
    maintenance: bool,
    flapping: bool,
) -> dict[str, Any]:
    """The part of a ``/api/v1/checks`` item the overview reads, built without the full
    JSON (``to_json`` deep-copies every result: most of the overview's cost at 10,000
    checks)."""
    result: dict[str, Any] | None = None
    if last is not None:
        result = {
            "success": last.success,
            "degraded": list(last.degraded),
            "reason": last.reason.value if last.reason else None,
            "tls": {"cert_not_after": last.tls.cert_not_after} if last.tls else None,
        }
    return {
        "name": name,
        "labels": dict(labels),
        "last_result": result,
        "alert": {"maintenance": maintenance, "flapping": flapping},
    }


def display_state(item: Mapping[str, Any]) -> str:
    """The one state a person sees for a ``/api/v1/checks`` item.

    Maintenance and flapping (from the alert state) come first; then the last result:
    failed is ``down``, over a latency limit is ``degraded``; no result is ``unknown``.
    """
    alert = item.get("alert") or {}
    if alert.get("maintenance"):
        return "maintenance"
    if alert.get("flapping"):
        return "flapping"
    last = item.get("last_result")
    if last is None:
        return "unknown"
    if not last.get("success"):
        return "down"
    if last.get("degraded"):
        return "degraded"
    return "up"


def uptimes(row: Mapping[str, Any] | None, *, now: float) -> dict[str, float | None]:
    """Share of successful runs per window of :data:`WINDOWS` (None: no runs).

    24h counts whole hours, longer windows whole UTC days (today included).
    """
    out: dict[str, float | None] = {}
    for window, span in WINDOWS.items():
        if row is None:
            out[window] = None
            continue
        rows = row["hours"] if span <= 86400 else row["days"]
        start = now - span
        runs = fails = 0
        for ts, (r, f, _) in rows.items():
            if ts >= start - (3600 if span <= 86400 else 86400) + 1:
                runs += r
                fails += f
        out[window] = (runs - fails) / runs if runs else None
    return out


def is_public(item: Mapping[str, Any], *, checks: Iterable[str], labels: Mapping[str, str]) -> bool:
    """Whether ``item`` is named in ``checks`` or carries every pair of ``labels``."""
    if item.get("name") in set(checks):
        return True
    own = item.get("labels", {})
    return bool(labels) and all(own.get(k) == v for k, v in labels.items())


def parse_label_filters(values: Sequence[str]) -> dict[str, str]:
    """``["team=core", "env=prod"]`` -> ``{"team": "core", "env": "prod"}``.

    Raises:
        ValueError: for a value without ``=`` or with an empty key.
    """
    out: dict[str, str] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise ValueError(f"label filter must be KEY=VALUE, got {value!r}")
        out[key] = wanted
    return out


def filter_checks(
    items: list[dict[str, Any]],
    *,
    states: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    search: str = "",
) -> list[dict[str, Any]]:
    """The items whose display state is one of ``states`` (any when empty), whose labels
    include every ``labels`` pair, and whose name or labels contain ``search``.

    Raises:
        ValueError: for a state not in :data:`STATES`.
    """
    for state in states:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    needle = search.strip().lower()
    out = []
    for item in items:
        if states and display_state(item) not in states:
            continue
        own = item.get("labels", {})
        if labels and any(own.get(k) != v for k, v in labels.items()):
            continue
        if needle and needle not in _haystack(item):
            continue
        out.append(item)
    return out


def _haystack(item: Mapping[str, Any]) -> str:
    labels = " ".join(f"{k}={v}" for k, v in item.get("labels", {}).items())
    return f"{item.get('name', '')} {labels}".lower()
