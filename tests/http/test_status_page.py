"""The status page, badges and public page of a real agent probing real targets."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.http.conftest import URL_SECRET, LiveAgent


async def test_overview_lists_every_check_with_its_state_and_reason(live: LiveAgent) -> None:
    """/ shows each check, its state, its uptimes and a failing check's reason."""
    await live.wait_results("echo", "refused")
    page = await live.client.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert re.search(r'class="check s-up"[^>]*>.*?>echo</a>', html)
    assert re.search(r'class="check s-down"[^>]*>.*?>refused</a>', html)
    refused = html[html.index('data-search="refused') :]
    assert "connect_refused" in refused[: refused.index("</li>")]
    assert "100.00%" in html  # echo's uptime, from the rollups
    assert "lab-1" in html
    assert URL_SECRET not in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"state": "down"}, "refused", "echo"),
        ({"label": "team=core"}, "echo", "refused"),
        ({"q": "REFU"}, "refused", "echo"),
    ],
    ids=["state", "label", "search"],
)
async def test_overview_filters(
    live: LiveAgent, query: dict[str, str], shown: str, hidden: str
) -> None:
    """State, label and search filters keep only the matching checks."""
    await live.wait_results("echo", "refused")
    html = (await live.client.get("/", params=query)).text
    assert f">{shown}</a>" in html
    assert f">{hidden}</a>" not in html


async def test_overview_groups_by_label_and_serves_a_fragment(live: LiveAgent) -> None:
    """?group=KEY makes one section per value; ?fragment=1 is the live part only."""
    await live.wait_results("echo", "refused")
    html = (await live.client.get("/", params={"group": "team", "fragment": "1"})).text
    assert "<h2>team=core</h2>" in html
    assert "<h2>team=edge</h2>" in html
    assert "<html" not in html


async def test_bad_label_filter_is_a_400_naming_it(live: LiveAgent) -> None:
    """A label filter without '=' is refused with the cause."""
    page = await live.client.get("/", params={"label": "team"})
    assert page.status_code == 400
    assert "KEY=VALUE" in page.text


async def test_check_page_has_chart_points_incidents_and_last_result(live: LiveAgent) -> None:
    """/checks/NAME draws the latency bars, lists the incident and the last result."""
    await live.wait_results("echo", "refused")
    echo = (await live.client.get("/checks/echo", params={"range": "24h"})).text
    points = re.search(r'class="chart"[^>]*data-points="(\d+)"', echo)
    assert points is not None
    assert int(points.group(1)) >= 1
    assert re.search(r'<rect class="ph\d"', echo)
    refused = (await live.client.get("/checks/refused")).text
    incidents = refused[refused.index("<h2>Incidents</h2>") : refused.index("<h2>Last result")]
    assert "connect_refused" in incidents
    assert "ongoing" in incidents
    assert "<h2>Last result</h2>" in refused


@pytest.mark.parametrize(
    ("path", "status"),
    [("/checks/nope", 404), ("/checks/echo?range=1y", 400)],
    ids=["unknown-check", "bad-range"],
)
async def test_check_page_errors(live: LiveAgent, path: str, status: int) -> None:
    """Unknown checks answer 404 and unknown ranges 400."""
    assert (await live.client.get(path)).status_code == status


async def test_pages_require_auth_but_public_shows_only_chosen_checks(live: LiveAgent) -> None:
    """Basic auth guards /; /public/ needs none and shows only public_status checks."""
    await live.wait_results("echo", "refused")
    assert (await live.anonymous.get("/")).status_code == 401
    assert (await live.anonymous.get("/badges/refused/status.svg")).status_code == 401
    public = await live.anonymous.get("/public/")
    assert public.status_code == 200
    assert ">echo</a>" in public.text
    assert "refused" not in public.text
    assert 'href="/public/checks/echo"' in public.text
    assert (await live.anonymous.get("/public/checks/refused")).status_code == 404
    assert (await live.anonymous.get("/public/checks/echo")).status_code == 200
    assert (await live.anonymous.get("/public/badges/refused/status.svg")).status_code == 404
    assert (await live.anonymous.get("/public/badges/echo/status.svg")).status_code == 200


@pytest.mark.parametrize(
    ("path", "label", "message"),
    [
        ("/badges/echo/status.svg", "echo", "up"),
        ("/badges/refused/status.svg", "refused", "down"),
        ("/badges/echo/uptime/7d.svg", "uptime 7d", "100.00%"),
        ("/badges/refused/uptime/24h.svg", "uptime 24h", "0.00%"),
    ],
    ids=["status-up", "status-down", "uptime-7d", "uptime-24h"],
)
async def test_badges(live: LiveAgent, path: str, label: str, message: str) -> None:
    """Badges are SVG with label and value, and cacheable."""
    await live.wait_results("echo", "refused")
    badge = await live.client.get(path)
    assert badge.status_code == 200
    assert badge.headers["Content-Type"].startswith("image/svg+xml")
    assert "max-age=60" in badge.headers["Cache-Control"]
    root = ET.fromstring(badge.text)  # noqa: S314 - our own output
    assert root.get("aria-label") == f"{label}: {message}"


async def test_latency_badge_shows_the_last_total(live: LiveAgent) -> None:
    """The latency badge reads the last run's total in milliseconds."""
    checks = await live.wait_results("echo")
    badge = (await live.client.get("/badges/echo/latency.svg")).text
    assert re.search(r'aria-label="latency: \d+ ms"', badge)
    assert checks["echo"]["last_result"]["phases"]["total"] > 0


async def test_unknown_badge_is_a_404_badge(live: LiveAgent) -> None:
    """An unknown check or window answers 404 with a badge saying so."""
    for path in ("/badges/nope/status.svg", "/badges/echo/uptime/1y.svg"):
        badge = await live.client.get(path)
        assert badge.status_code == 404
        assert "no such check" in badge.text


async def test_static_assets_ship_in_the_package(live: LiveAgent) -> None:
    """The stylesheet (with its dark theme) and the script are served without auth."""
    css = await live.anonymous.get("/static/status.css")
    assert css.status_code == 200
    assert "prefers-color-scheme: dark" in css.text
    js = await live.anonymous.get("/static/status.js")
    assert "fragment" in js.text
    assert (await live.anonymous.get("/static/server.py")).status_code == 404


async def test_reload_prunes_a_removed_checks_rollups(live: LiveAgent) -> None:
    """A check removed on reload leaves no rollup row, incident or page behind."""
    await live.wait_results("echo", "refused")
    await live.client.get("/checks/refused")  # its rollups and incident are written
    path = live.daemon.config_path
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["checks"] = [c for c in config["checks"] if c["name"] != "refused"]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert (await live.client.post("/-/reload")).json() == {"status": "ok"}
    assert (await live.client.get("/checks/refused")).status_code == 404
    assert live.daemon.store is not None
    rollups = live.daemon.rollups
    assert rollups is not None
    rollups.submit_pending()
    await asyncio.to_thread(rollups.incidents, "echo")  # queued behind the deletion
    db = sqlite3.connect(live.daemon.store.path)
    try:
        for table in ("rollup_minute", "rollup_hour", "rollup_day", "incidents"):
            names = {n for (n,) in db.execute(f"SELECT check_name FROM {table}")}  # noqa: S608
            assert "refused" not in names, table
            assert table == "incidents" or "echo" in names
    finally:
        db.close()


async def test_the_daemons_rollups_count_in_the_state_bound(live: LiveAgent) -> None:
    """The running agent hands its rollups to the store's size bound to shed from."""
    assert live.daemon.store is not None
    assert live.daemon.rollups is not None
    assert live.daemon.store.maintenance.shedders == (live.daemon.rollups,)
