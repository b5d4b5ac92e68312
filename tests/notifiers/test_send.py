"""Every receiver type against a real local HTTP receiver; validation of receiver configs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config.alerting import ReceiverConfig
from agent.notifiers import NOTIFIERS, validate_receiver
from agent.notifiers.base import Delivery
from agent.notifiers.errors import (
    NotifyConnectError,
    NotifyError,
    NotifyNetworkError,
    NotifyStatus,
    NotifyTimeout,
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The kind of client the dispatcher uses."""
    async with httpx.AsyncClient(follow_redirects=False) as c:
        yield c


def verify(header: str, body: bytes, secret: str, *, now: float, tolerance: float = 300) -> bool:
    """The receiver-side check documented in docs/alerting.md."""
    fields = [part.split("=", 1) for part in header.split(",")]
    timestamps = [v for k, v in fields if k == "t"]
    if len(timestamps) != 1 or abs(now - int(timestamps[0])) > tolerance:
        return False
    signed = timestamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in fields if k == "v1")


SEND_CASES = {
    "webhook": ("/hook", {"secret": "s1"}),
    "slack": ("/services/T/B/X", {}),
    "discord": ("/api/webhooks/1/abc", {}),
    "pagerduty": ("/v2/enqueue", {"routing_key": "RK"}),
    "alertmanager": ("/api/v2/alerts", {}),
}


@pytest.mark.parametrize("type_", list(SEND_CASES), ids=list(SEND_CASES))
async def test_each_receiver_posts_json(
    receiver: Any, client: httpx.AsyncClient, samples: Any, type_: str
) -> None:
    """Each HTTP receiver type POSTs its JSON to the right path with extra headers."""
    path, extra = SEND_CASES[type_]
    base = receiver.url if type_ == "alertmanager" else receiver.url + path
    cfg = samples.receiver(type_, base, headers={"Authorization": "Bearer am-token"}, **extra)
    assert validate_receiver(cfg) == []
    await NOTIFIERS[type_].send(cfg, samples.event("firing"), samples.DELIVERY, client=client)
    (request,) = await receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == path
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer am-token"
    assert request.json()


async def test_webhook_signature_verifies_on_receiver(
    receiver: Any, client: httpx.AsyncClient, samples: Any
) -> None:
    """A receiver verifying with either rotated secret accepts; a wrong secret does not."""
    cfg = samples.receiver("webhook", receiver.url + "/hook", secret="new", secrets=["old"])
    delivery = Delivery(id="d-1", attempt=1, now=time.time())
    await NOTIFIERS["webhook"].send(cfg, samples.event("resolved"), delivery, client=client)
    (request,) = await receiver.wait_for(1)
    header = request.headers["X-Wsprobe-Signature"]
    assert verify(header, request.body, "new", now=time.time())
    assert verify(header, request.body, "old", now=time.time())
    assert not verify(header, request.body, "other", now=time.time())
    assert not verify(header, request.body, "new", now=time.time() + 301)
    assert request.headers["X-Wsprobe-Delivery"] == "d-1"
    assert request.headers["X-Wsprobe-Event"] == "resolved"


def documented_verify(page: str = "docs/alerting.md") -> Any:
    """The verification snippet from a documentation page, executed as written."""
    doc = (Path(__file__).parents[2] / page).read_text()
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verify" in b]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


@pytest.mark.parametrize("page", ["docs/alerting.md", "README.md"])
@pytest.mark.parametrize(
    ("age", "secret", "accepted"),
    [(0, "new", True), (0, "old", True), (0, "wrong", False), (400, "new", False)],
    ids=["current-secret", "rotated-out-secret", "wrong-secret", "too-old"],
)
async def test_documented_snippet_verifies_real_requests(
    receiver: Any,
    client: httpx.AsyncClient,
    samples: Any,
    age: float,
    secret: str,
    accepted: bool,
    page: str,
) -> None:
    """The docs' verify() accepts fresh requests signed with either secret, nothing else."""
    verify_doc = documented_verify(page)
    cfg = samples.receiver("webhook", receiver.url + "/hook", secret="new", secrets=["old"])
    delivery = Delivery(id="d-2", attempt=1, now=time.time() - age)
    await NOTIFIERS["webhook"].send(cfg, samples.event("firing"), delivery, client=client)
    (request,) = await receiver.wait_for(1)
    assert verify_doc(request.headers["X-Wsprobe-Signature"], request.body, secret) is accepted


@pytest.mark.parametrize(
    ("answer", "error", "retryable"),
    [
        (503, NotifyStatus, True),
        (500, NotifyStatus, True),
        ((429, {"Retry-After": "7"}), NotifyStatus, True),
        (400, NotifyStatus, False),
        (404, NotifyStatus, False),
        ((302, {"Location": "http://127.0.0.1:1/"}), NotifyStatus, False),
        ("hang", NotifyTimeout, True),
        ("drip", NotifyTimeout, True),
        ("close", NotifyNetworkError, True),
    ],
    ids=["503", "500", "429", "400", "404", "redirect", "hang", "drip", "close"],
)
async def test_failing_receiver_raises_notify_error(
    receiver: Any,
    client: httpx.AsyncClient,
    samples: Any,
    answer: Any,
    error: type[NotifyError],
    retryable: bool,
) -> None:
    """Bad statuses, hangs, dripped bodies and dropped connections become NotifyErrors."""
    receiver.script.append(answer)
    cfg = samples.receiver("webhook", receiver.url + "/hook", timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(error) as info:
        await NOTIFIERS["webhook"].send(
            cfg, samples.event("firing"), samples.DELIVERY, client=client
        )
    assert info.value.retryable is retryable
    # The per-attempt timeout bounds the whole attempt, body included.
    assert time.perf_counter() - started < 3.0
    if answer == (429, {"Retry-After": "7"}):
        assert isinstance(info.value, NotifyStatus)
        assert info.value.retry_after == 7.0


async def test_refused_connection(client: httpx.AsyncClient, samples: Any) -> None:
    """Nothing listening: a retryable NotifyConnectError that does not show the URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = samples.receiver("slack", f"http://127.0.0.1:{port}/services/SECRET")
    with pytest.raises(NotifyConnectError) as info:
        await NOTIFIERS["slack"].send(cfg, samples.event("firing"), samples.DELIVERY, client=client)
    assert info.value.retryable
    assert "SECRET" not in str(info.value)


async def test_log_receiver_logs(
    caplog: pytest.LogCaptureFixture, client: httpx.AsyncClient, samples: Any
) -> None:
    """The log receiver writes WARNING for firing and INFO for resolved."""
    cfg = samples.receiver("log")
    with caplog.at_level(logging.INFO, logger="agent.alerts"):
        for kind in ("firing", "resolved"):
            await NOTIFIERS["log"].send(cfg, samples.event(kind), samples.DELIVERY, client=client)
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "agent.alerts"]
    assert levels == [
        (
            logging.WARNING,
            "alert [FIRING] chat: closed - server closed the connection: "
            "code 1011 (internal error)",
        ),
        (logging.INFO, "alert [RESOLVED] chat: recovered"),
    ]


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        ({"type": "webhook", "url": "https://h.example.com/x"}, []),
        ({"type": "webhook"}, ["url: required for webhook receivers"]),
        ({"type": "slack"}, ["url: required for slack receivers"]),
        ({"type": "discord"}, ["url: required for discord receivers"]),
        ({"type": "alertmanager"}, ["url: required for alertmanager receivers"]),
        (
            {"type": "webhook", "url": "ftp://x/"},
            ["url: must be an absolute http:// or https:// URL"],
        ),
        (
            {"type": "webhook", "url": "/relative"},
            ["url: must be an absolute http:// or https:// URL"],
        ),
        ({"type": "pagerduty"}, ["routing_key: required for pagerduty receivers"]),
        ({"type": "pagerduty", "routing_key": "k"}, []),
        ({"type": "log"}, []),
        (
            {"type": "teams"},
            [
                "type: unknown receiver type 'teams' "
                "(known: alertmanager, discord, log, pagerduty, slack, webhook)"
            ],
        ),
    ],
    ids=[
        "webhook-ok",
        "webhook-no-url",
        "slack-no-url",
        "discord-no-url",
        "alertmanager-no-url",
        "bad-scheme",
        "relative-url",
        "pagerduty-no-key",
        "pagerduty-default-url",
        "log-needs-nothing",
        "unknown-type",
    ],
)
def test_validate(config: dict[str, Any], problems: list[str]) -> None:
    """Each receiver type reports its own missing or malformed fields."""
    assert validate_receiver(ReceiverConfig.model_validate({"name": "r", **config})) == problems
