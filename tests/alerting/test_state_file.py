"""What the alerting layer leaves in the state file: never a credential."""

from __future__ import annotations

from pathlib import Path

from agent.alerting import AlertService
from agent.storage import Store
from tests.alerting.test_delivery import config, feed


async def test_state_file_holds_no_secret_of_the_target_url(tmp_path: Path) -> None:
    """Userinfo and query token of a check's URL appear nowhere in the file's bytes."""
    cfg = config("http://127.0.0.1:9")  # a receiver that refuses: the event stays queued
    store = Store(tmp_path)
    service = AlertService(cfg, store)
    assert feed(service, cfg, "FF") == ["firing"]
    states = store.load_alert_states()
    assert states["chat"]["url"] == "ws://127.0.0.1:9/chat?token=REDACTED"
    assert store.outbox_pending() == 1
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"/chat" in raw  # the URL is there, redacted
    for secret in (b"t0k3n", b"user:pw", b"pw@"):
        assert secret not in raw
