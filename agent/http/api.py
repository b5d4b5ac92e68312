"""The JSON shape of ``/api/v1/checks``: each check's config, state and recent results.

Nothing here holds a secret: URLs are redacted and results carry no credentials.
Raises nothing of its own.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.redact import redact_url
from agent.runtime.runner import Runner

__all__ = ["AlertStateView", "HistoryView", "checks_json"]

log = logging.getLogger(__name__)


class HistoryView(Protocol):
    """Recent results of a check (agent.storage.database.Store)."""

    def history(self, check: str, limit: int) -> list[dict[str, Any]]: ...


class AlertStateView(Protocol):
    """Alert state of a check (agent.alerting.AlertService)."""

    def state(self, check: str) -> dict[str, Any]: ...


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def checks_json(
    runner: Runner,
    *,
    next_runs: dict[str, float],
    store: HistoryView | None,
    alerting: AlertStateView | None,
    watch_stats: Callable[[str], Any],
    name: str | None,
    history: int,
) -> list[dict[str, Any]]:
    """One JSON object per configured check (or only ``name``).

    Args:
        runner: holds the current checks; their series hold the last result.
        next_runs: check name -> Unix time of its next scheduled run.
        store: result history, if any.
        alerting: alert state, if any.
        watch_stats: check name -> watch session stats (or None).
        name: only this check, when given.
        history: how many recent results to include.

    Returns:
        JSON-ready dicts, in config order.
    """
    out: list[dict[str, Any]] = []
    for check in runner.checks.values():
        if name is not None and check.name != name:
            continue
        series = runner.metrics.series(check)
        last = series.last if series is not None else None
        state = "unknown" if last is None else ("up" if last.success else "down")
        item: dict[str, Any] = {
            "name": check.name,
            "kind": check.kind,
            "url": redact_url(check.url),
            "labels": dict(check.labels),
            "schedule": {"interval": None if check.cron else check.interval, "cron": check.cron},
            "timeout": check.timeout,
            "state": state,
            "next_run": _iso(next_runs.get(check.name)),
            "last_result": last.to_json() if last is not None else None,
            "counts": dict(series.results) if series is not None else {},
        }
        if store is not None and history:
            try:
                item["history"] = store.history(check.name, history)
            except Exception:
                log.exception("could not read the history of check %s", check.name)
                item["history"] = []
        if alerting is not None:
            item["alert"] = alerting.state(check.name)
        stats = watch_stats(check.name)
        if stats is not None:
            item["watch"] = dataclasses.asdict(stats)
        out.append(item)
    return out
