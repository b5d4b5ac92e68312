"""/api/v1/checks (filters), /api/v1/checks/NAME and its history, validated against
docs/openapi.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.http.conftest import LiveAgent

OPENAPI = yaml.safe_load(
    (Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text(encoding="utf-8")
)


def _validate(response: httpx.Response, path: str) -> dict[str, Any]:
    """Validate ``response`` against the document's schema for ``path`` and its status."""
    spec = OPENAPI["paths"][path]["get"]["responses"][str(response.status_code)]
    if "$ref" in spec:
        spec = OPENAPI["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    schema = spec["content"]["application/json"]["schema"]
    # The document's own components resolve "#/components/..." references.
    jsonschema.validate(
        response.json(),
        {**schema, "components": OPENAPI["components"]},
        cls=jsonschema.Draft202012Validator,
    )
    body: dict[str, Any] = response.json()
    return body


def test_the_openapi_document_is_valid_json_schema() -> None:
    """Every schema in the document is itself valid (draft 2020-12, as OpenAPI 3.1)."""
    for name, schema in OPENAPI["components"]["schemas"].items():
        assert name
        jsonschema.Draft202012Validator.check_schema(schema)


async def test_checks_list_matches_the_document(live: LiveAgent) -> None:
    """The list, with history, validates against the document."""
    await live.wait_results("echo", "refused")
    body = _validate(await live.client.get("/api/v1/checks"), "/api/v1/checks")
    assert {c["name"] for c in body["checks"]} == {"echo", "refused"}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"state": "down"}, ["refused"]),
        ({"state": "up,down"}, ["echo", "refused"]),
        ({"label": "team=core"}, ["echo"]),
        ({"label": "team=core", "state": "down"}, []),
    ],
    ids=["down", "two-states", "label", "label-and-state"],
)
async def test_checks_list_filters(
    live: LiveAgent, params: dict[str, str], names: list[str]
) -> None:
    """?state= (display states) and ?label=K=V keep only matching checks."""
    await live.wait_results("echo", "refused")
    response = await live.client.get("/api/v1/checks", params=params)
    body = _validate(response, "/api/v1/checks")
    assert [c["name"] for c in body["checks"]] == names


@pytest.mark.parametrize(
    ("params", "cause"),
    [({"state": "sideways"}, "state must be one of"), ({"label": "team"}, "KEY=VALUE")],
    ids=["unknown-state", "label-without-value"],
)
async def test_bad_filters_are_400_naming_the_cause(
    live: LiveAgent, params: dict[str, str], cause: str
) -> None:
    """A bad filter answers 400 with the cause."""
    response = await live.client.get("/api/v1/checks", params=params)
    assert response.status_code == 400
    assert cause in _validate(response, "/api/v1/checks")["error"]


async def test_one_check_has_status_uptimes_and_history(live: LiveAgent) -> None:
    """/api/v1/checks/NAME adds the display state and uptime per window."""
    await live.wait_results("echo", "refused")
    response = await live.client.get("/api/v1/checks/refused")
    body = _validate(response, "/api/v1/checks/{name}")
    assert body["status"] == "down"
    assert body["uptime"]["24h"] == 0.0
    assert body["history"]
    missing = await live.client.get("/api/v1/checks/nope")
    assert missing.status_code == 404
    _validate(missing, "/api/v1/checks/{name}")


async def test_history_returns_rollup_buckets(live: LiveAgent) -> None:
    """/history?range=1h lists per-minute buckets with runs, failures and phase means."""
    await live.wait_results("echo", "refused")
    echo = _validate(
        await live.client.get("/api/v1/checks/echo/history", params={"range": "1h"}),
        "/api/v1/checks/{name}/history",
    )
    assert echo["step"] == 60
    assert sum(b["runs"] for b in echo["buckets"]) >= 1
    assert all(b["availability"] == 1.0 for b in echo["buckets"])
    assert "connect" in echo["buckets"][-1]["phases"]
    refused = _validate(
        await live.client.get("/api/v1/checks/refused/history", params={"range": "7d"}),
        "/api/v1/checks/{name}/history",
    )
    assert refused["buckets"][-1]["failures"]["connect_refused"] >= 1
    assert refused["buckets"][-1]["p95"] is not None


async def test_history_bad_range_is_400(live: LiveAgent) -> None:
    """An unknown range names the valid ones."""
    response = await live.client.get("/api/v1/checks/echo/history", params={"range": "1y"})
    assert response.status_code == 400
    assert "24h" in _validate(response, "/api/v1/checks/{name}/history")["error"]
