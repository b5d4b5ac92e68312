"""The status page: ``/`` (every check), ``/checks/NAME`` (one check), their live
fragments (``?fragment=1``, fetched by ``static/status.js`` to refresh without a
reload), the static assets, and the same read-only pages under ``/public/`` for the
checks ``agent.web.public_status`` chooses.

Cost at thousands of checks: a summary of each check (not its full JSON) is built on
the loop in chunks of :data:`CHUNK` with a yield between them, the rollups are read and
the HTML is built in a worker thread, and the overview shows :data:`PAGE_SIZE` checks
per page; so rendering ``/`` never holds the event loop for long. Raises nothing: a bad query
answers 400 with the cause, an unknown check 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from agent.config.settings import PublicStatusConfig
from agent.http import page_html
from agent.http.badges import badge_routes
from agent.http.status import (
    RANGES,
    STATES,
    RollupView,
    StatusSource,
    display_state,
    filter_checks,
    is_public,
    parse_label_filters,
    uptimes,
)
from agent.storage.rollup_bucket import CHART_PHASES, Bucket

__all__ = ["CHUNK", "PAGE_SIZE", "REFRESH_INTERVAL", "collect_items", "status_routes"]

#: Checks summarised between two yields to the event loop.
CHUNK = 200
#: Checks per page of the overview.
PAGE_SIZE = 500
#: The overview's sparkline: points, and seconds per point (from the per-minute rollups).
SPARK_POINTS = 24
SPARK_STEP = 300
#: Seconds between two live refreshes of an open page.
REFRESH_INTERVAL = 30
_STATIC = {"status.css": "text/css", "status.js": "text/javascript"}
_SEVERITY = {s: i for i, s in enumerate(("down", "flapping", "degraded", *STATES))}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Everything is served by the agent itself: nothing may load from elsewhere.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self';"
    " img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'",
}

Allowed = Callable[[dict[str, Any]], bool]


async def collect_items(source: StatusSource) -> list[dict[str, Any]]:
    """Every check's summary (:func:`agent.http.status.summary_item`), :data:`CHUNK` at a
    time with a yield to the loop between chunks."""
    names = source.check_names()
    items: list[dict[str, Any]] = []
    for start in range(0, len(names), CHUNK):
        items.extend(source.check_summaries(names[start : start + CHUNK]))
        await asyncio.sleep(0)
    return items


def _cert_days(item: dict[str, Any], now: float) -> float | None:
    tls = (item.get("last_result") or {}).get("tls") or {}
    expiry = tls.get("cert_not_after")
    return None if expiry is None else (expiry - now) / 86400


def _days(row: dict[str, Any] | None, now: float) -> list[tuple[int, int, int] | None]:
    today = int(now // 86400 * 86400)
    out: list[tuple[int, int, int] | None] = []
    for back in range(89, -1, -1):
        ts = today - back * 86400
        day = (row or {}).get("days", {}).get(ts)
        out.append(None if day is None else (ts, day[0], day[1]))
    return out


def overview_rows(
    items: list[dict[str, Any]], *, now: float, location: str
) -> list[page_html.OverviewRow]:
    """What the overview shows of each item from its JSON alone; the rollup parts are
    filled in for the shown page only (:func:`add_rollups`)."""
    return [
        {
            "name": item["name"],
            "state": display_state(item),
            "labels": item.get("labels", {}),
            "last_failure": _last_failure(item),
            "cert_days": _cert_days(item, now),
            "location": location,
        }
        for item in items
    ]


def _last_failure(item: dict[str, Any]) -> str | None:
    last = item.get("last_result") or {}
    return last.get("reason") if last and not last.get("success") else None


def add_rollups(rows: list[page_html.OverviewRow], view: RollupView | None, *, now: float) -> None:
    """Set each row's uptimes, 90 days and sparkline from the rollups (a worker thread)."""
    names = [r["name"] for r in rows]
    avail = view.availability(names, now=now) if view is not None and names else {}
    for row in rows:
        entry = avail.get(row["name"])
        row["uptimes"] = uptimes(entry, now=now)
        row["days"] = _days(entry, now)
        row["last_failure"] = row["last_failure"] or (entry or {}).get("last_failure")
        row["spark"] = []
    if view is not None and names:
        add_sparklines(rows, view, now=now)


def add_sparklines(rows: list[page_html.OverviewRow], view: RollupView, *, now: float) -> None:
    """Set each row's ``spark``: mean latency per :data:`SPARK_STEP` over two hours."""
    since = int(now // SPARK_STEP * SPARK_STEP) - (SPARK_POINTS - 1) * SPARK_STEP
    recent = view.recent_latency([r["name"] for r in rows], since=since, step=SPARK_STEP)
    for row in rows:
        means = recent.get(row["name"], {})
        row["spark"] = [means.get(since + i * SPARK_STEP) for i in range(SPARK_POINTS)]


def check_data(
    source: StatusSource, item: dict[str, Any], *, range_name: str, now: float
) -> dict[str, Any]:
    """Everything one check's page shows (blocks on the rollups: a worker thread)."""
    span, step = RANGES[range_name]
    name = item["name"]
    view = source.rollup_view()
    buckets = view.buckets(name, since=now - span, step=step) if view is not None else []
    coarse = view.buckets(name, since=now - span, step=3600) if view is not None else []
    merged = Bucket()
    for _, bucket in coarse:
        merged.merge(bucket)
    avail = view.availability([name], now=now).get(name) if view is not None else None
    return {
        "item": item,
        "state": display_state(item),
        "range": range_name,
        "start": int(now - span),
        "end": int(now),
        "step": step,
        "uptimes": uptimes(avail, now=now),
        "days": _days(avail, now),
        "cert_days": _cert_days(item, now),
        "phases": CHART_PHASES,
        "points": [
            (ts, {p: s / n for p, (s, n) in b.phases.items() if n}) for ts, b in buckets if b.runs
        ],
        "quantiles": (merged.quantile("total", 0.5), merged.quantile("total", 0.95)),
        "incidents": view.incidents(name) if view is not None else [],
    }


def _html(text: str, *, status: int = 200) -> web.Response:
    response = web.Response(
        status=status, text=text, content_type="text/html", charset="utf-8", headers=_HEADERS
    )
    response.enable_compression()
    return response


def status_routes(
    app: web.Application,
    source: StatusSource,
    *,
    public: Callable[[], PublicStatusConfig | None],
    clock: Callable[[], float] = time.time,
) -> None:
    """Add the status pages, badges and static assets to ``app``.

    Args:
        app: the aiohttp application (its auth middleware skips ``/public/`` and
            ``/static/``).
        source: the running agent.
        public: the current ``agent.web.public_status`` (None: no public page).
        clock: Unix time.
    """

    def public_filter() -> Allowed | None:
        cfg = public()
        if cfg is None:
            return None
        return lambda item: is_public(item, checks=cfg.checks, labels=cfg.labels)

    async def overview(request: web.Request, *, base: str, allowed: Allowed | None) -> web.Response:
        query = {k: v for k, v in request.query.items() if k in ("q", "state", "label", "group")}
        try:
            labels = parse_label_filters([query["label"]] if query.get("label") else [])
            page = max(1, int(request.query.get("page", "1")))
        except ValueError as exc:
            return _html(
                page_html.layout("bad request", f"<p>{exc}</p>", base=base, refresh=0), status=400
            )
        now = clock()
        items = await collect_items(source)
        if allowed is not None:
            items = [i for i in items if allowed(i)]
        label_keys = sorted({k for i in items for k in i.get("labels", {})})
        try:
            chosen = filter_checks(
                items,
                states=[query["state"]] if query.get("state") else [],
                labels=labels,
                search=query.get("q", ""),
            )
        except ValueError as exc:
            return _html(
                page_html.layout("bad request", f"<p>{exc}</p>", base=base, refresh=0), status=400
            )
        view = source.rollup_view()
        if view is not None:
            view.submit_pending()
        location = source.agent_location()

        def render() -> str:
            rows = overview_rows(chosen, now=now, location=location)
            counts: dict[str, int] = {}
            for row in rows:
                counts[row["state"]] = counts.get(row["state"], 0) + 1
            order = {name: i for i, name in enumerate(r["name"] for r in rows)}
            rows.sort(key=lambda r: (_SEVERITY[r["state"]], order[r["name"]]))
            pages = max(1, -(-len(rows) // PAGE_SIZE))
            shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            add_rollups(shown, view, now=now)
            live = page_html.overview_body(
                shown, total=len(rows), counts=counts, group=query.get("group", ""), base=base,
                page=page, pages=pages, query=query, now=now,
            )  # fmt: skip
            if request.query.get("fragment"):
                return live
            body = page_html.overview_filters(query, label_keys=label_keys)
            return page_html.layout(
                "wsprobe status", f'{body}<div id="live">{live}</div>', base=base,
                refresh=REFRESH_INTERVAL,
            )  # fmt: skip

        return _html(await asyncio.to_thread(render))

    async def check(request: web.Request, *, base: str, allowed: Allowed | None) -> web.Response:
        name = request.match_info["name"]
        range_name = request.query.get("range", "24h")
        if range_name not in RANGES:
            text = f"<p>range must be one of {', '.join(RANGES)}</p>"
            return _html(page_html.layout("bad request", text, base=base, refresh=0), status=400)
        found = source.checks_json(name=name, history=0)
        if not found or (allowed is not None and not allowed(found[0])):
            text = "<p>No such check.</p>"
            return _html(page_html.layout("not found", text, base=base, refresh=0), status=404)
        item = found[0]
        now = clock()
        location = source.agent_location()
        view = source.rollup_view()
        if view is not None:
            view.submit_pending()

        def render() -> str:
            data = check_data(source, item, range_name=range_name, now=now)
            head = page_html.check_header(item, data["state"], base=base, location=location)
            live = head + page_html.check_page(data, base=base, now=now)
            if request.query.get("fragment"):
                return live
            return page_html.layout(
                f"{name} · wsprobe", f'<div id="live">{live}</div>', base=base,
                refresh=REFRESH_INTERVAL,
            )  # fmt: skip

        return _html(await asyncio.to_thread(render))

    async def private_overview(request: web.Request) -> web.Response:
        return await overview(request, base="", allowed=None)

    async def private_check(request: web.Request) -> web.Response:
        return await check(request, base="", allowed=None)

    async def public_overview(request: web.Request) -> web.Response:
        allowed = public_filter()
        if allowed is None:
            raise web.HTTPNotFound()
        return await overview(request, base="/public", allowed=allowed)

    async def public_check(request: web.Request) -> web.Response:
        allowed = public_filter()
        if allowed is None:
            raise web.HTTPNotFound()
        return await check(request, base="/public", allowed=allowed)

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        data = (resources.files("agent.http") / "static" / name).read_bytes()
        return web.Response(
            body=data,
            content_type=_STATIC[name],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def public_allowed(item: dict[str, Any]) -> bool:
        allowed = public_filter()
        return allowed is not None and allowed(item)

    app.router.add_get("/", private_overview)
    app.router.add_get("/checks/{name}", private_check)
    app.router.add_get("/public/", public_overview)
    app.router.add_get("/public/checks/{name}", public_check)
    app.router.add_get("/static/{file}", static)
    badge_routes(app, source, clock=clock)
    badge_routes(app, source, prefix="/public", allowed=public_allowed, clock=clock)
