"""Checks validated from the same keys share one fields-set, without leaking updates."""

from __future__ import annotations

from pathlib import Path

from agent.config.loader import load_config
from agent.runtime.registries import REGISTRIES


def _load(tmp_path: Path) -> list:
    (tmp_path / "agent.yaml").write_text(
        "checks:\n"
        "  - {name: a, url: 'ws://127.0.0.1:1/a', labels: {team: x}}\n"
        "  - {name: b, url: 'ws://127.0.0.1:1/b', labels: {team: y}}\n"
        "  - {name: c, url: 'ws://127.0.0.1:1/c', interval: 60s}\n"
    )
    return list(load_config(tmp_path / "agent.yaml", registries=REGISTRIES).checks)


def test_same_keys_share_one_set(tmp_path: Path) -> None:
    """Checks given the same keys hold one set object; others keep theirs."""
    a, b, c = _load(tmp_path)
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert c.__pydantic_fields_set__ is not a.__pydantic_fields_set__
    assert a.model_dump(exclude_unset=True)["labels"] == {"team": "x"}
    assert "interval" in c.model_dump(exclude_unset=True)
    assert "interval" not in a.model_dump(exclude_unset=True)


def test_model_copy_update_leaves_the_shared_set_alone(tmp_path: Path) -> None:
    """model_copy(update=...) marks the field set on the copy only."""
    a, b, _ = _load(tmp_path)
    copy = a.model_copy(update={"interval": 120.0})
    assert "interval" in copy.model_dump(exclude_unset=True)
    assert "interval" not in a.model_dump(exclude_unset=True)
    assert "interval" not in b.model_dump(exclude_unset=True)
