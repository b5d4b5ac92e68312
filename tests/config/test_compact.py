"""Loaded checks share the parts they have in common, and stay equal to what was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config._compact import compact
from agent.config._yaml import parse_yaml
from agent.config.loader import load_config
from agent.config.models import CheckConfig
from agent.runtime.registries import REGISTRIES

_CHECKS = """\
defaults:
  interval: 20s
  tls: {insecure_skip_verify: true}
  watch: {grace: 5s, stale_after: 30s}
checks:
  - {name: a, kind: watch, url: 'ws://127.0.0.1:1/a', labels: {team: x}, limits: {ping: 1s}}
  - {name: b, kind: watch, url: 'ws://127.0.0.1:1/b', labels: {team: x}, limits: {ping: 1s}}
  - {name: c, kind: watch, url: 'ws://127.0.0.1:1/c', labels: {team: y}, limits: {ping: 2s}}
  - {name: d, url: 'ws://127.0.0.1:1/d', tls: {insecure_skip_verify: true, min_version: '1.2'}}
  - name: e
    url: 'ws://127.0.0.1:1/e'
    watch: {grace: 5s, stale_after: 30s, max_delay: 60s}
"""


def _load(tmp_path: Path, text: str = _CHECKS) -> dict[str, CheckConfig]:
    (tmp_path / "agent.yaml").write_text(text)
    config = load_config(tmp_path / "agent.yaml", registries=REGISTRIES)
    return {c.name: c for c in config.checks}


def test_equal_parts_are_one_object(tmp_path: Path) -> None:
    """Equal tls, watch, labels, limits, durations and empty headers of checks are one object."""
    c = _load(tmp_path)
    a, b = c["a"], c["b"]
    assert a.interval is c["d"].interval
    assert a.interval == 20.0
    assert a.tls is b.tls is c["c"].tls
    assert a.watch is b.watch is c["c"].watch
    assert a.labels is b.labels
    assert a.limits is b.limits
    assert a.headers is b.headers is c["d"].headers
    assert c["c"].labels is not a.labels
    assert c["c"].labels == {"team": "y"}
    assert c["c"].limits == {"ping": 2.0}


def test_parts_given_differently_stay_apart(tmp_path: Path) -> None:
    """A block equal in value but written with other keys keeps its own object and fields-set."""
    c = _load(tmp_path)
    assert c["d"].tls != c["a"].tls
    assert c["d"].tls.min_version == "1.2"
    # Same values as the defaults' watch block plus max_delay at its default: equal, but
    # max_delay was given, and what was given is kept (exclude_unset, model_fields_set).
    e, a = c["e"].watch, c["a"].watch
    assert e is not None
    assert a is not None
    assert e == a
    assert e is not a
    assert "max_delay" in e.model_dump(exclude_unset=True)
    assert "max_delay" not in a.model_dump(exclude_unset=True)


def test_types_are_kept_where_values_are_equal(tmp_path: Path) -> None:
    """1 and 1.0 and true are equal in Python; a step's payload keeps what was written."""
    text = (
        "checks:\n"
        "  - {name: a, url: 'ws://127.0.0.1:1/a', steps: [{send: {json: {n: 1}}}]}\n"
        "  - {name: b, url: 'ws://127.0.0.1:1/b', steps: [{send: {json: {n: 1.0}}}]}\n"
        "  - {name: c, url: 'ws://127.0.0.1:1/c', steps: [{send: {json: {n: true}}}]}\n"
    )
    c = _load(tmp_path, text)
    sent = [c[n].model_dump(mode="json")["steps"][0]["send"]["json"]["n"] for n in "abc"]
    assert [type(v) for v in sent] == [int, float, bool]


def test_loaded_check_is_the_check_as_validated(tmp_path: Path) -> None:
    """Equality, dumps, model_copy and reload comparison are those of the validated model."""
    loaded = _load(tmp_path)["a"]
    data = {
        "name": "a",
        "kind": "watch",
        "url": "ws://127.0.0.1:1/a",
        "interval": "20s",
        "labels": {"team": "x"},
        "limits": {"ping": "1s"},
        "tls": {"insecure_skip_verify": True},
        "watch": {"grace": "5s", "stale_after": "30s"},
    }
    direct = CheckConfig.model_validate(data)
    assert loaded == direct
    assert direct == loaded
    assert loaded.model_dump() == direct.model_dump()
    assert loaded.model_dump(exclude_unset=True) == direct.model_dump(exclude_unset=True)
    assert loaded.model_dump_json() == direct.model_dump_json()
    assert loaded.model_copy(update={"interval": 60.0}).interval == 60.0
    assert loaded.interval == direct.interval
    assert _load(tmp_path)["a"] == loaded  # a reload keeps an unchanged check


def test_compact_rebuilds_an_equal_frozen_check() -> None:
    """compact gives a new, equal, still frozen instance holding the shared parts."""
    shared: dict[object, object] = {}
    one = CheckConfig.model_validate({"name": "a", "url": "ws://h/a", "labels": {"k": "v"}})
    two = CheckConfig.model_validate({"name": "b", "url": "ws://h/b", "labels": {"k": "v"}})
    a, b = compact(one, shared), compact(two, shared)
    assert a is not one
    assert a == one
    assert b == two
    assert a.labels is b.labels
    with pytest.raises(ValueError, match="frozen"):
        a.name = "z"  # type: ignore[misc]


def test_yaml_texts_are_read_once_per_file() -> None:
    """Equal strings of one document are one object (a check file repeats its kinds)."""
    data = parse_yaml("checks:\n  - {kind: watch, x: team}\n  - {kind: watch, team: y}\n").data
    first, second = data["checks"]
    assert first["kind"] is second["kind"]
    assert first["x"] is list(second)[1]  # a value and a key
