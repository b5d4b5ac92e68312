"""The JSON API: ``/api/v1/checks`` (each check's config, state and recent results)
and ``/api/v1/silences`` (create, list and end silences).

Nothing here holds a secret: URLs are redacted and results carry no credentials.
Raises nothing of its own: bad requests get a 4xx with a JSON ``error``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from agent.alerting.silences import Silence, SilenceError
from agent.config.models import CheckConfig
from agent.metrics.series import CheckSeries
from agent.redact import redact_url

__all__ = ["AlertStateView", "HistoryView", "SilenceView", "checks_json", "silence_routes"]

#: Largest silence request body accepted.
_MAX_BODY = 64 * 1024

log = logging.getLogger(__name__)


class HistoryView(Protocol):
    """Recent results of a check (agent.storage.Store)."""

    def history(self, check: str, limit: int) -> list[dict[str, Any]]: ...


class AlertStateView(Protocol):
    """Alert state of a check (agent.alerting.AlertService)."""

    def state(self, check: str) -> dict[str, Any]: ...


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def checks_json(
    checks: Iterable[CheckConfig],
    *,
    series: Callable[[CheckConfig], CheckSeries | None],
    next_runs: dict[str, float],
    store: HistoryView | None,
    alerting: AlertStateView | None,
    watch_stats: Callable[[str], Any],
    name: str | None,
    history: int,
) -> list[dict[str, Any]]:
    """One JSON object per configured check (or only ``name``).

    Args:
        checks: the current checks, in config order.
        series: a check's metric series (``Metrics.series``), which hold its last result.
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
    for check in checks:
        if name is not None and check.name != name:
            continue
        kept = series(check)
        last = kept.last if kept is not None else None
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
            "counts": dict(kept.results) if kept is not None else {},
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


class SilenceView(Protocol):
    """The silences of the running agent (agent.alerting.AlertService)."""

    def create_silence(self, body: Any) -> Silence: ...

    def silences(self) -> list[dict[str, Any]]: ...

    def expire_silence(self, silence_id: str) -> Silence | None: ...


def silence_routes(
    app: web.Application, silences: Callable[[], SilenceView | None], *, clock: Callable[[], float]
) -> None:
    """Add ``GET``/``POST /api/v1/silences`` and ``DELETE /api/v1/silences/{id}`` to ``app``.

    The app's own middleware (basic auth when configured) covers them, as it covers
    ``/-/reload``. A POST must send ``Content-Type: application/json``: a browser
    cannot send that cross-site without a preflight, so a page elsewhere cannot
    create silences with a visitor's session.

    Args:
        app: the aiohttp application.
        silences: returns the agent's silences (None while it starts).
        clock: Unix time, for the ``status`` of a created silence.
    """

    def unavailable() -> web.Response:
        return web.json_response({"error": "alerting is not running yet"}, status=503)

    async def list_silences(_: web.Request) -> web.Response:
        view = silences()
        if view is None:
            return unavailable()
        return web.json_response({"silences": view.silences()})

    async def create(request: web.Request) -> web.Response:
        view = silences()
        if view is None:
            return unavailable()
        if request.content_type != "application/json":
            return web.json_response(
                {"error": "send the silence as JSON (Content-Type: application/json)"}, status=415
            )
        if request.content_length is not None and request.content_length > _MAX_BODY:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            raw = await request.content.read(_MAX_BODY + 1)
            if len(raw) > _MAX_BODY:
                return web.json_response({"error": "body too large"}, status=413)
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "the body is not valid JSON"}, status=400)
        try:
            silence = view.create_silence(body)
        except SilenceError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except sqlite3.Error as exc:
            log.error("could not store a silence: %s", exc)
            return web.json_response(
                {"error": "could not store the silence in the state file"}, status=503
            )
        return web.json_response(
            {"id": silence.id, "silence": silence.to_json(clock())}, status=201
        )

    async def delete(request: web.Request) -> web.Response:
        view = silences()
        if view is None:
            return unavailable()
        silence_id = request.match_info["silence_id"]
        try:
            ended = view.expire_silence(silence_id)
        except sqlite3.Error as exc:
            log.error("could not end silence %s: %s", silence_id, exc)
            return web.json_response(
                {"error": "could not store the change in the state file"}, status=503
            )
        if ended is None:
            return web.json_response({"error": f"no active silence {silence_id!r}"}, status=404)
        return web.json_response({"silence": ended.to_json(clock())})

    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", create)
    app.router.add_delete("/api/v1/silences/{silence_id}", delete)
