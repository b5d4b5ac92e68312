"""HTTP endpoints against a real aiohttp server: routing, /probe refusals, auth, TLS."""

from __future__ import annotations

import gzip
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from agent.config.models import CheckConfig
from agent.config.settings import WebConfig
from agent.http.server import SCRAPE_PAUSE, WebServer, accepts_gzip, parse_listen
from agent.result import ProbeResult

URL = "ws://127.0.0.1:9/echo"
BIG = "".join(f'big{{n="{n}"}} {n}\n' for n in range(20_000))
EXPOSITION = "# HELP up Up.\n# TYPE up gauge\nup 1.0\n" + BIG


class FakeAgent:
    """An AgentView holding one check; records what the endpoints asked of it."""

    def __init__(self) -> None:
        self.check = CheckConfig(name="echo", url=URL, interval=10.0, timeout=1.0)
        self.probed: list[str] = []
        self.reload_errors: list[str] = []
        self.is_ready = True

    def ready(self) -> tuple[bool, str]:
        return self.is_ready, "ready" if self.is_ready else "scheduler not running"

    def metrics_chunks(self) -> Iterator[str]:
        # The last piece is larger than the inline gzip limit: compressed in a thread.
        return iter(["# HELP up Up.\n# TYPE up gauge\n", "up 1.0\n", BIG])

    def checks_json(self, *, name: str | None, history: int) -> list[dict[str, Any]]:
        if name not in (None, "echo"):
            return []
        return [{"name": "echo", "history_limit": history}]

    async def reload(self) -> list[str]:
        return self.reload_errors

    def find_check(self, name: str) -> CheckConfig | None:
        return self.check if name == "echo" else None

    def silence_view(self) -> None:
        return None

    async def probe_now(self, check: CheckConfig) -> tuple[ProbeResult, float]:
        self.probed.append(check.name)
        result = ProbeResult(check=check.name, kind="probe", url=URL, started_at=time.time())
        result.success = True
        result.status_code = 101
        return result, 0.01


async def _serve(agent: FakeAgent, web_config: WebConfig) -> tuple[WebServer, str]:
    server = WebServer(agent, listen="127.0.0.1:0", web_config=web_config)
    return server, await server.start()


@pytest.fixture
async def plain() -> AsyncIterator[tuple[FakeAgent, httpx.AsyncClient]]:
    agent = FakeAgent()
    server, url = await _serve(agent, WebConfig())
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        yield agent, client
    await server.stop()


@pytest.mark.parametrize(
    ("query", "status", "probed"),
    [
        ("check=echo", 200, ["echo"]),
        ("target=echo", 200, ["echo"]),
        ("check=nope", 404, []),
        ("target=ws://evil.example/", 404, []),
        ("target=ws%3A%2F%2Fevil.example%2F", 404, []),
        ("check=echo&target=ws://evil.example/", 400, []),
        ("check=echo&target=echo", 400, []),
        ("check=echo&module=x", 400, []),
        ("", 400, []),
        ("target=", 400, []),
        ("check=echo&check=echo", 400, []),
    ],
    ids=[
        "configured",
        "target-names-a-check",
        "unknown",
        "target-url",
        "target-url-encoded",
        "check-plus-target",
        "check-and-target-same",
        "extra-param",
        "none",
        "empty-target",
        "twice",
    ],
)
async def test_probe_endpoint(
    plain: tuple[FakeAgent, httpx.AsyncClient], query: str, status: int, probed: list[str]
) -> None:
    """/probe runs only a configured check named once (by ?check= or the Probe resource's
    ?target=); a URL or anything else never reaches a probe."""
    agent, client = plain
    response = await client.get(f"/probe?{query}")
    assert response.status_code == status
    assert agent.probed == probed
    if status == 200:
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        assert families["probe_success"].samples[0].value == 1


async def test_endpoints(plain: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    """Health, readiness, metrics, API and reload answer with their documented codes."""
    agent, client = plain
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    agent.is_ready = False
    assert (await client.get("/readyz")).status_code == 503
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "up 1.0" in metrics.text
    api = await client.get("/api/v1/checks", params={"history": "3"})
    assert api.json() == {"checks": [{"name": "echo", "history_limit": 3}]}
    assert (await client.get("/api/v1/checks", params={"check": "nope"})).status_code == 404
    assert (await client.get("/-/reload")).status_code == 405
    assert (await client.post("/-/reload")).json() == {"status": "ok"}
    agent.reload_errors = ["agent.yaml:3: agent.listen: bad"]
    rejected = await client.post("/-/reload")
    assert rejected.status_code == 400
    assert rejected.json()["errors"] == ["agent.yaml:3: agent.listen: bad"]


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [("gzip", "gzip"), ("identity", None), ("gzip;q=0, identity", None)],
    ids=["gzip", "identity", "gzip-refused"],
)
async def test_metrics_gzip_when_accepted(
    plain: tuple[FakeAgent, httpx.AsyncClient], accept: str, encoding: str | None
) -> None:
    """/metrics is gzipped only for a scraper that accepts it, and decodes to the same text."""
    _, client = plain
    async with client.stream("GET", "/metrics", headers={"Accept-Encoding": accept}) as resp:
        raw = b"".join([chunk async for chunk in resp.aiter_raw()])
    assert resp.headers.get("Content-Encoding") == encoding
    body = gzip.decompress(raw) if encoding else raw
    assert body.decode() == EXPOSITION


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=zero", False),
        ("identity", False),
        ("", False),
    ],
    ids=["list", "case-and-q", "star", "q0", "bad-q", "identity", "none"],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    """Accept-Encoding values that allow gzip, and those that do not."""
    assert accepts_gzip(header) is expected


@pytest.fixture(scope="module")
def users() -> dict[str, str]:
    # Cost 4 keeps the test fast; production hashes use 10-12.
    return {"prom": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()}


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        (("prom", "s3cret"), 200),
        (("prom", "wrong"), 401),
        (("nobody", "s3cret"), 401),
        (None, 401),
    ],
    ids=["valid", "bad-password", "unknown-user", "none"],
)
async def test_basic_auth(users: dict[str, str], auth: tuple[str, str] | None, status: int) -> None:
    """With users configured every endpoint needs valid credentials; 401 names the scheme."""
    agent = FakeAgent()
    server, url = await _serve(agent, WebConfig(basic_auth_users=users))
    try:
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=5.0) as client:
            for path in ("/metrics", "/healthz", "/probe?check=echo"):
                response = await client.get(path)
                assert response.status_code == status, path
                if status == 401:
                    assert response.headers["www-authenticate"].startswith("Basic ")
            # A second request with the same credentials is served from the cache.
            assert (await client.get("/healthz")).status_code == status
    finally:
        await server.stop()
    assert agent.probed == (["echo"] if status == 200 else [])


async def test_tls(tmp_path: Path) -> None:
    """With cert_file/key_file the endpoints are served over HTTPS only."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    server, url = await _serve(
        FakeAgent(), WebConfig(cert_file=str(cert_file), key_file=str(key_file))
    )
    try:
        assert url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        async with httpx.AsyncClient(verify=ctx, timeout=5.0) as client:
            assert (await client.get(url + "/healthz")).status_code == 200
        async with httpx.AsyncClient(timeout=5.0) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(url.replace("https://", "http://") + "/healthz")
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9470", ("127.0.0.1", 9470)), ("[::1]:80", ("::1", 80)), (":9", ("127.0.0.1", 9))],
    ids=["v4", "v6", "no-host"],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    """HOST:PORT splits, IPv6 brackets are removed, an empty host means loopback."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen", ["9470", "host:", "host:99999"], ids=["no-colon", "no-port", "range"]
)
def test_parse_listen_rejects(listen: str) -> None:
    """A listen value without a valid port is refused."""
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)


class ManyPiecesAgent(FakeAgent):
    """An exposition of many small pieces, like a large agent's."""

    PIECES = 40

    def metrics_chunks(self) -> Iterator[str]:
        return iter([f'up{{n="{n}"}} 1\n' for n in range(self.PIECES)])


async def test_metrics_pauses_between_pieces() -> None:
    """/metrics sleeps SCRAPE_PAUSE after each piece so the loop can catch up, body unchanged."""
    agent = ManyPiecesAgent()
    server, url = await _serve(agent, WebConfig())
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            began = time.perf_counter()
            response = await client.get("/metrics")
            took = time.perf_counter() - began
    finally:
        await server.stop()
    assert response.text == "".join(agent.metrics_chunks())
    assert took >= 0.9 * ManyPiecesAgent.PIECES * SCRAPE_PAUSE


class MixedPiecesAgent(FakeAgent):
    """Large pieces (compressed in the worker) between small ones (compressed inline)."""

    def metrics_chunks(self) -> Iterator[str]:
        pieces = ["# HELP up Up.\n# TYPE up gauge\n", "up 1\n"]
        for n in range(3):
            pieces += [BIG.replace("big{", f"big{n}{{"), f"small{n} {n}\n"]
        return iter(pieces)


async def test_metrics_gzip_keeps_pieces_in_order() -> None:
    """A gzip scrape of large and small pieces decodes to exactly the pieces, in order."""
    agent = MixedPiecesAgent()
    server, url = await _serve(agent, WebConfig())
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            headers = {"Accept-Encoding": "gzip"}
            async with client.stream("GET", "/metrics", headers=headers) as resp:
                raw = b"".join([chunk async for chunk in resp.aiter_raw()])
    finally:
        await server.stop()
    assert resp.headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(raw).decode() == "".join(agent.metrics_chunks())
