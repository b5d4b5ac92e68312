"""``/api/v1/checks/NAME`` (one check, with its display state and uptimes) and
``/api/v1/checks/NAME/history?range=7d`` (its rollups), documented in docs/api.md and
docs/openapi.yaml.

Raises nothing: a bad range answers 400, an unknown check 404, both with a JSON
``error``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent.http.status import RANGES, StatusSource, display_state, uptimes

__all__ = ["DEFAULT_ITEM_HISTORY", "checks_api_routes", "enrich"]

#: Recent results included in ``/api/v1/checks/NAME``.
DEFAULT_ITEM_HISTORY = 10


def enrich(item: dict[str, Any], avail: dict[str, Any] | None, *, now: float) -> dict[str, Any]:
    """``item`` with its display ``status`` and ``uptime`` per window added."""
    return {**item, "status": display_state(item), "uptime": uptimes(avail, now=now)}


def checks_api_routes(
    app: web.Application, source: StatusSource, *, clock: Callable[[], float] = time.time
) -> None:
    """Add ``/api/v1/checks/{name}`` and ``/api/v1/checks/{name}/history`` to ``app``."""

    def find(request: web.Request, history: int) -> dict[str, Any] | None:
        found = source.checks_json(name=request.match_info["name"], history=history)
        return found[0] if found else None

    def missing(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.json_response({"error": f"no check named {name!r}"}, status=404)

    async def one(request: web.Request) -> web.Response:
        item = find(request, DEFAULT_ITEM_HISTORY)
        if item is None:
            return missing(request)
        now = clock()
        view = source.rollup_view()
        if view is not None:
            view.submit_pending()
        avail = (
            (await asyncio.to_thread(view.availability, [item["name"]], now=now)).get(item["name"])
            if view is not None
            else None
        )
        return web.json_response(enrich(item, avail, now=now))

    async def history(request: web.Request) -> web.Response:
        range_name = request.query.get("range", "24h")
        if range_name not in RANGES:
            return web.json_response(
                {"error": f"range must be one of {', '.join(RANGES)}, got {range_name!r}"},
                status=400,
            )
        item = find(request, 0)
        if item is None:
            return missing(request)
        span, step = RANGES[range_name]
        now = clock()
        view = source.rollup_view()
        if view is not None:
            view.submit_pending()
        buckets = (
            await asyncio.to_thread(view.buckets, item["name"], since=now - span, step=step)
            if view is not None
            else []
        )
        return web.json_response(
            {
                "check": item["name"],
                "range": range_name,
                "step": step,
                "buckets": [bucket.to_json(ts) for ts, bucket in buckets],
            }
        )

    app.router.add_get("/api/v1/checks/{name}", one)
    app.router.add_get("/api/v1/checks/{name}/history", history)
