"""The Grafana dashboard under deploy/grafana: every query it holds, with its variables
substituted as Grafana would, runs through a real Prometheus scraping a real agent on
the demo targets, parses, and returns data."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DemoAgent, Prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "wsprobe.json"
#: Scrapes this often, so rates have samples within seconds.
SCRAPE_INTERVAL = "1s"
#: What Grafana gives the built-in interval variables for this scrape interval and a
#: short time range: $__rate_interval is max(4 x scrape interval, $__interval + scrape).
BUILTINS = {"__rate_interval": "4s", "__interval": "1s", "__range": "5m"}
#: Seconds for every query to return data (the demo checks run every second).
DATA_DEADLINE = 60.0

pytestmark = pytest.mark.timeout(120)


def _load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and refId, expression) of every target of every panel."""
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def _substitute(expr: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def _regex(values: list[str]) -> str:
    """A multi-value variable as Grafana writes it for Prometheus: ``(a|b)``, each regex
    metacharacter escaped with a backslash that is itself escaped for the PromQL string."""
    return "(" + "|".join(re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", v) for v in values) + ")"


async def _label_values(prom: Prometheus, definition: str, values: dict[str, str]) -> list[str]:
    """Run a ``label_values(selector, label)`` variable query as Grafana does."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", _substitute(definition, values))
    assert match, f"unsupported variable query {definition!r}"
    selector, label = match.groups()
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(
            f"{prom.url}/api/v1/label/{label}/values", params={"match[]": selector}
        )
    answer = response.json()
    assert answer["status"] == "success", answer
    found: list[str] = answer["data"]
    return found


def test_dashboard_shape() -> None:
    """The dashboard has the documented variables, unique panel ids and a datasource each."""
    dashboard = _load()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["filters"]["type"] == "adhoc"  # any of the checks' own labels
    assert {"location", "check", "phase"} <= set(variables)
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    assert len(_queries(dashboard)) >= 30


async def test_every_query_returns_data(
    demo_agent: DemoAgent, start_prometheus: Any, tmp_path: Path
) -> None:
    """Each panel's query, variables substituted, parses and returns data from Prometheus."""
    dashboard = _load()
    prom: Prometheus = await start_prometheus(
        {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "wsprobe", "static_configs": [{"targets": [demo_agent.address]}]}
            ],
        }
    )
    values = dict(BUILTINS)
    deadline = time.monotonic() + DATA_DEADLINE
    # Variables in order, each query seeing the ones before it, as Grafana refreshes them.
    for variable in dashboard["templating"]["list"]:
        name = variable["name"]
        if variable["type"] != "query":
            continue
        while not (found := await _label_values(prom, variable["definition"], values)):
            assert time.monotonic() < deadline, f"variable {name} has no values"
            await asyncio.sleep(0.5)  # Prometheus' next scrape; no event to wait on
        if variable.get("multi"):
            values[name] = _regex(found)
        else:
            default = variable["current"].get("value")
            values[name] = default if default in found else found[0]
    assert set(demo_agent.checks) <= set(values["check"].strip("()").replace("\\\\", "").split("|"))

    pending = {title: _substitute(expr, values) for title, expr in _queries(dashboard)}
    while True:
        for title, expr in list(pending.items()):
            answer = await prom.query(expr)
            assert answer["status"] == "success", f"{title}: {expr}\n{answer}"
            if answer["data"]["result"]:
                del pending[title]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)  # Prometheus' next scrape; no event to wait on
    assert not pending, "queries without data:\n" + "\n".join(
        f"{title}: {expr}" for title, expr in pending.items()
    )
    # Grafana's time series panels ask for ranges: those parse and have data too.
    async with httpx.AsyncClient(timeout=10.0) as client:
        targets = (await client.get(f"{prom.url}/api/v1/targets")).json()["data"]
        (target,) = targets["activeTargets"]
        assert (target["health"], target["lastError"]) == ("up", ""), target
        now = time.time()
        for title, expr in _queries(dashboard):
            response = await client.get(
                f"{prom.url}/api/v1/query_range",
                params={"query": _substitute(expr, values), "start": now - 30, "end": now,
                        "step": 1},
            )  # fmt: skip
            answer = response.json()
            assert answer["status"] == "success", f"{title}: {answer}"
            assert answer["data"]["result"], f"{title}: no data over the last 30 s"
