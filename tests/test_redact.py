"""Credentials never leave the agent: URLs and free text are cleaned before they are shown."""

from __future__ import annotations

import pytest

from agent.redact import redact_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "wss://me:pw@h.test:8443/x?token=abc&v=1",
            "wss://h.test:8443/x?token=REDACTED&v=REDACTED",
        ),
        ("ws://[::1]:9/", "ws://[::1]:9/"),
        ("ws://h.test:99999/", "<invalid URL>"),
    ],
    ids=["userinfo-and-query", "ipv6", "invalid"],
)
def test_redact_url(url: str, shown: str) -> None:
    """redact_url drops userinfo and masks every query value."""
    assert redact_url(url) == shown


def test_scrub_masks_urls_and_known_secret_values() -> None:
    """scrub redacts URLs and literal secret values in free text."""
    text = "failed for wss://me:pw@h.test/x?key=abcd with header topsecret"
    out = scrub(text, ("topsecret", ""))
    assert "pw@" not in out
    assert "abcd" not in out
    assert "topsecret" not in out
    assert "wss://h.test/x?key=REDACTED" in out
