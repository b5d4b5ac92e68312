"""Secrets planted everywhere a check holds them never come out of a probe."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from agent.probes.dial.opener import open_connection
from agent.probes.errors import ProbeError
from agent.result import new_result
from tests.servers import RawServer, free_port, http_status, make_check, silent, timed_probe

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


HEADER_SECRET = "hdr-SECRET-4f1a"
USERINFO_SECRET = "pw-SECRET-8c2e"
QUERY_SECRET = "qs-SECRET-77d0"
TOKEN_SECRET = "tok-SECRET-19be"
SECRETS = (HEADER_SECRET, USERINFO_SECRET, QUERY_SECRET, TOKEN_SECRET)


def _planted(url: str, **fields: Any) -> Any:
    # userinfo + a query string in the URL itself, a secret header, a query token.
    url = url.replace("://", f"://ops:{USERINFO_SECRET}@", 1) + f"?sig={QUERY_SECRET}"
    return make_check(
        url,
        auth={"headers": {"X-Api-Key": HEADER_SECRET}, "query": {"value": TOKEN_SECRET}},
        timeout=0.5,
        **fields,
    )


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# A server that echoes everything it can back: the request line (with the query
# token) into the Location of a redirect, and into the reason phrase.
async def _echo_redirect(reader: Any, writer: Any) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    path = head.split(" ")[1]
    writer.write(
        f"HTTP/1.1 302 {path}\r\nLocation: ws://elsewhere.test{path}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    await writer.drain()
    await reader.read()


@pytest.mark.parametrize(
    "server",
    [_echo_redirect, http_status(403), silent, None],
    ids=["redirect-echoing-token", "http-403", "silent", "refused"],
)
async def test_planted_secrets_never_appear_in_result_message_or_logs(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Header, userinfo and query secrets stay out of JSON, message, exception and logs."""
    caplog.set_level(logging.DEBUG)
    if server is None:
        check = _planted(f"ws://127.0.0.1:{free_port()}/path")
        result, _ = await timed_probe(check)
        with pytest.raises(ProbeError) as info:
            await open_connection(check, new_result(check), deadline=time.perf_counter() + 1)
    else:
        async with RawServer(server) as srv:
            check = _planted(srv.url("/path"))
            result, _ = await timed_probe(check)
            with pytest.raises(ProbeError) as info:
                await open_connection(check, new_result(check), deadline=time.perf_counter() + 1)
    assert not result.success
    _assert_clean(json.dumps(result.to_json()), result.message, str(info.value), caplog.text)
    assert "REDACTED" in result.url


async def test_planted_secrets_reach_the_server_but_not_the_result() -> None:
    """The secrets are really sent (so the test above is meaningful) yet not reported."""
    seen: list[str] = []

    async def capture(reader: Any, writer: Any) -> None:
        seen.append((await reader.readuntil(b"\r\n\r\n")).decode())
        writer.write(b"HTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with RawServer(capture) as srv:
        result, _ = await timed_probe(_planted(srv.url("/path")))
    assert HEADER_SECRET in seen[0]
    assert TOKEN_SECRET in seen[0]
    assert QUERY_SECRET in seen[0]
    _assert_clean(json.dumps(result.to_json()), result.message)
