"""What the alerting layer leaves in the state file: never a credential."""

from __future__ import annotations

import json
from pathlib import Path

from agent.alerting import AlertService
from agent.config import Config
from agent.config.alerting import AlertingConfig, FlapConfig
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


def _relabelled(cfg: Config, **labels: str) -> Config:
    checks = tuple(c.model_copy(update={"labels": labels}) for c in cfg.checks)
    return cfg.model_copy(update={"checks": checks})


def test_removed_check_is_named_as_last_known(tmp_path: Path) -> None:
    """A check removed before its first result here is named as the state file has it."""
    old = config("http://127.0.0.1:9", checks=("chat", "feed"))
    store = Store(tmp_path)
    service = AlertService(old, store)
    assert feed(service, old, "F", "chat") == ["firing"]
    assert feed(service, old, "F", "feed") == ["firing"]
    store.close()
    # Restarted with new labels for both; only feed reports before both are removed:
    # feed is named as its config has it, chat as the file does.
    store = Store(tmp_path)
    new = _relabelled(old, team="web")
    service = AlertService(new, store)
    assert feed(service, new, "S", "feed") == ["resolved"]
    assert feed(service, new, "F", "feed") == ["firing"]
    service.reconfigure(config("http://127.0.0.1:9", checks=()))
    rows = store.outbox_pending_rows()
    payloads = [json.loads(store.outbox_payload(row.id) or "{}")["payload"] for row in rows]
    resolved = {p["check"]: p["labels"] for p in payloads if p["event"] == "resolved"}
    assert resolved == {"chat": {"team": "rt"}, "feed": {"team": "web"}}
    store.close()


def test_steady_checks_persist_a_steady_flap_state(tmp_path: Path) -> None:
    """A healthy check's stored alert state carries the flap and held keys it always had."""
    no_flap = AlertingConfig(flap=FlapConfig(max_changes=0))
    cfg = config("http://127.0.0.1:9", check_alerting={"chat": no_flap})
    store = Store(tmp_path)
    service = AlertService(cfg, store)
    assert feed(service, cfg, "F") == ["firing"]
    assert feed(service, cfg, "S") == ["resolved"]
    stored = store.load_alert_states()["chat"]
    assert stored["flap"] == {"changes": [], "flapping": False, "since": None, "last_change": None}
    assert stored["held"] == {}
    store.close()


def test_only_unsteady_checks_hold_a_flap_entry(tmp_path: Path) -> None:
    """Flap control keeps an entry for a check with changes to remember, none otherwise."""
    no_flap = AlertingConfig(flap=FlapConfig(max_changes=0))
    cfg = config("http://127.0.0.1:9", checks=("chat", "feed"), check_alerting={"chat": no_flap})
    store = Store(tmp_path)
    service = AlertService(cfg, store)
    assert feed(service, cfg, "FS", "chat") == ["firing", "resolved"]
    assert feed(service, cfg, "F", "feed") == ["firing"]
    kept = service._quiet._checks  # one entry per check with something to remember
    assert set(kept) == {"feed"}
    assert not service.state("chat")["flapping"]
    store.close()
