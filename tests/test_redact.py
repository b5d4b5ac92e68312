"""Credentials never leave the agent: URLs and free text are cleaned before they are shown."""

from __future__ import annotations

import pytest

from agent.redact import REDACTED, redact_url, scrub

CASES = [
    (
        "userinfo-query-fragment",
        "wss://user:pa55@feed.example:8443/v1/ws?token=abc&room=1#frag",
        "wss://feed.example:8443/v1/ws?token=REDACTED&room=REDACTED",
    ),
    ("user-only", "ws://alice@feed.example/ws", "ws://feed.example/ws"),
    ("plain", "ws://feed.example/ws", "ws://feed.example/ws"),
    ("no-path", "ws://feed.example", "ws://feed.example"),
    ("ipv6-with-port", "ws://u:p@[::1]:8080/x", "ws://[::1]:8080/x"),
    ("ipv6-without-port", "ws://[::1]/x", "ws://[::1]/x"),
    ("port-zero-kept", "ws://feed.example:0/x", "ws://feed.example:0/x"),
    ("blank-value", "ws://h.example/?flag&key=", "ws://h.example/?flag=REDACTED&key=REDACTED"),
    ("name-is-kept", "ws://h.example/?api_key=s3cr3t", "ws://h.example/?api_key=REDACTED"),
    ("host-lowercased", "ws://Feed.Example/Path", "ws://feed.example/Path"),
    ("no-host", "ws:///path?x=1", "ws:///path?x=REDACTED"),
    ("relative", "/relative?x=1", "/relative?x=REDACTED"),
    ("bad-port", "ws://h.example:99999/", "<invalid URL>"),
    ("bad-ipv6", "ws://[::1/", "<invalid URL>"),
]


@pytest.mark.parametrize(("url", "shown"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_redact_url(url: str, shown: str) -> None:
    """The URL as it may be shown: no userinfo, no query value, no fragment."""
    assert redact_url(url) == shown


def test_scrub_masks_urls_and_known_secret_values() -> None:
    """scrub redacts URLs and literal secret values in free text."""
    text = "failed for wss://me:pw@h.test/x?key=abcd with header topsecret"
    out = scrub(text, ("topsecret", ""))
    assert "pw@" not in out
    assert "abcd" not in out
    assert "topsecret" not in out
    assert "wss://h.test/x?key=REDACTED" in out


SCRUB_CASES = [
    ("every-scheme", "ws://a@h/ wss://b@h/ http://c@h/ https://d@h/", (),
     "ws://h/ wss://h/ http://h/ https://h/"),
    ("url-ends-at-quote", "'ws://h/?t=1' \"ws://h/?t=2\" <ws://h/?t=3>", (),
     "'ws://h/?t=REDACTED' \"ws://h/?t=REDACTED\" <ws://h/?t=REDACTED>"),
    ("other-scheme-untouched", "ftp://u:p@h/ xws://u@h/", (), "ftp://u:p@h/ xws://u@h/"),
    ("three-character-secret", "key abc in abcd", ("abc",), f"key {REDACTED} in {REDACTED}d"),
    ("short-secret-left", "ab is ab", ("ab",), "ab is ab"),
    ("longest-first", "token s3cr3t-long", ("s3cr3t", "s3cr3t-long"), f"token {REDACTED}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "secrets", "out"), [c[1:] for c in SCRUB_CASES], ids=[c[0] for c in SCRUB_CASES]
)
def test_scrub(text: str, secrets: tuple[str, ...], out: str) -> None:
    """URLs of the probe's and receivers' schemes are redacted; secrets of 3+ characters masked."""
    assert scrub(text, secrets) == out
