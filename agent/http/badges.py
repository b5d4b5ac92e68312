"""Shields-style SVG badges: ``/badges/NAME/status.svg``, ``/badges/NAME/uptime/7d.svg``
(24h, 7d, 30d, 90d) and ``/badges/NAME/latency.svg``.

A badge is the familiar two-part flat badge (grey label, coloured value), sized from
an approximation of Verdana 11px widths. Responses carry ``Cache-Control`` so a README
host (GitHub's camo proxy) refreshes them without hammering the agent. Raises nothing:
an unknown check or window answers 404 with a grey "not found" badge.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable

from aiohttp import web

from agent.http.status import WINDOWS, StatusSource, display_state, uptimes

__all__ = ["BADGE_MAX_AGE", "COLOURS", "badge_routes", "badge_svg", "text_width"]

#: Seconds a badge may be cached by browsers and proxies.
BADGE_MAX_AGE = 60
COLOURS = {
    "up": "#4c1",
    "degraded": "#dfb317",
    "down": "#e05d44",
    "flapping": "#fe7d37",
    "maintenance": "#007ec6",
    "unknown": "#9f9f9f",
}
_NARROW = set("fijlrtI.,:;!|' ")
_WIDE = set("mwMW%@")


def text_width(text: str) -> int:
    """Approximate width in pixels of ``text`` in Verdana 11px."""
    width = 0.0
    for ch in text:
        width += 3.6 if ch in _NARROW else 10.0 if ch in _WIDE else 7.0
    return round(width)


def badge_svg(label: str, message: str, colour: str) -> str:
    """A flat two-part badge; ``label`` and ``message`` are escaped."""
    lw, mw = text_width(label) + 10, text_width(message) + 10
    total = lw + mw
    lab, msg = html.escape(label), html.escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{lab}: {msg}"><title>{lab}: {msg}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb"'
        ' stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle"'
        ' font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{lab}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{lab}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{msg}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{msg}</text></g></svg>'
    )


def _uptime_colour(share: float | None) -> str:
    if share is None:
        return COLOURS["unknown"]
    if share >= 0.999:
        return COLOURS["up"]
    if share >= 0.99:
        return "#97ca00"
    if share >= 0.95:
        return COLOURS["degraded"]
    return COLOURS["down"]


def _respond(svg: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=svg,
        content_type="image/svg+xml",
        headers={"Cache-Control": f"max-age={BADGE_MAX_AGE}, s-maxage={BADGE_MAX_AGE}"},
    )


def badge_routes(
    app: web.Application,
    source: StatusSource,
    *,
    prefix: str = "",
    allowed: Callable[[dict[str, object]], bool] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Add the badge routes under ``prefix`` (``/public`` for the unauthenticated copy).

    Args:
        app: the aiohttp application.
        source: the running agent.
        prefix: path prefix of the routes.
        allowed: which checks these routes may show (all when None).
        clock: Unix time.
    """

    def find(request: web.Request) -> dict[str, object] | None:
        items = source.checks_json(name=request.match_info["name"], history=0)
        if not items or (allowed is not None and not allowed(items[0])):
            return None
        return items[0]

    def missing() -> web.Response:
        return _respond(badge_svg("wsprobe", "no such check", COLOURS["unknown"]), status=404)

    async def status(request: web.Request) -> web.Response:
        item = find(request)
        if item is None:
            return missing()
        state = display_state(item)
        return _respond(badge_svg(str(item["name"]), state, COLOURS[state]))

    async def uptime(request: web.Request) -> web.Response:
        window = request.match_info["window"]
        item = find(request)
        if item is None or window not in WINDOWS:
            return missing()
        view = source.rollup_view()
        now = clock()
        if view is not None:
            view.submit_pending()
        rows = (
            await asyncio.to_thread(view.availability, [str(item["name"])], now=now)
            if view is not None
            else {}
        )
        share = uptimes(rows.get(str(item["name"])), now=now)[window]
        text = "no data" if share is None else f"{share * 100:.2f}%"
        return _respond(badge_svg(f"uptime {window}", text, _uptime_colour(share)))

    async def latency(request: web.Request) -> web.Response:
        item = find(request)
        if item is None:
            return missing()
        last = item.get("last_result")
        last = last if isinstance(last, dict) else {}
        total = last.get("phases", {}).get("total")
        if total is None:
            return _respond(badge_svg("latency", "no data", COLOURS["unknown"]))
        colour = COLOURS["up"] if not last.get("degraded") else COLOURS["degraded"]
        return _respond(badge_svg("latency", f"{total * 1000:.0f} ms", colour))

    app.router.add_get(prefix + "/badges/{name}/status.svg", status)
    app.router.add_get(prefix + "/badges/{name}/uptime/{window}.svg", uptime)
    app.router.add_get(prefix + "/badges/{name}/latency.svg", latency)
