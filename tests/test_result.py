"""ProbeResult helpers shared by every probe kind."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from agent.result import ProbeResult, encode_result, new_result


def _result() -> ProbeResult:
    result = ProbeResult(check="c", kind="probe", url="ws://h/", started_at=0.0)
    result.phases = {"handshake": 0.030, "total": 0.050}
    result.pings = [0.001, 0.009, 0.002]
    result.relay = {"receiver1": 0.004, "receiver2": 0.120}
    return result


@pytest.mark.parametrize(
    ("limits", "degraded"),
    [
        ({"handshake": 0.020, "total": 0.100}, ["handshake"]),
        ({"ping": 0.005}, ["ping"]),
        ({"ping": 0.010}, []),
        ({"relay": 0.100}, ["relay"]),
        ({"tls": 0.001, "app_ping": 0.001}, []),
        ({"ping": 0.005, "relay": 0.100, "handshake": 0.020}, ["ping", "relay", "handshake"]),
    ],
    ids=["phase", "slowest-ping", "pings-within", "slowest-relay", "unmeasured", "all-in-order"],
)
def test_judge_limits_marks_exceeded_keys(limits: dict[str, float], degraded: list[str]) -> None:
    """Each limit over its measured value (max for ping/relay) is degraded; unmeasured are not."""
    result = _result()
    result.judge_limits(limits)
    assert result.degraded == degraded


def test_settle_shares_read_only_empties_and_keeps_outputs() -> None:
    """A settled result's empty containers are shared and refuse changes; outputs are equal."""
    result, plain = _result(), _result()
    result.settle()
    other = ProbeResult(check="d", kind="watch", url="ws://h/", started_at=0.0).settle()
    assert result.steps is other.steps
    assert result.app_pings is other.app_pings
    assert result.phases is not other.phases  # a filled one stays its own
    assert result == plain
    assert result.to_json() == plain.to_json()
    assert type(result.to_json()["steps"]) is list
    assert encode_result(result) == encode_result(plain)
    assert json.dumps(result.to_json()) == json.dumps(plain.to_json())
    assert copy.deepcopy(result) == plain


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.degraded.append("gap"),
        lambda r: r.steps.extend([1]),
        lambda r: r.app_pings.__iadd__([0.1]),
        lambda r: r.extensions.insert(0, "x"),
        lambda r: r.relay.__setitem__("r", 1.0),
        lambda r: r.relay.update(r=1.0),
        lambda r: r.relay.setdefault("r", 1.0),
    ],
    ids=["append", "extend", "iadd", "insert", "setitem", "update", "setdefault"],
)
def test_settled_result_refuses_changes(change: Callable[[ProbeResult], object]) -> None:
    """Changing a settled result's shared empty raises instead of changing every result."""
    result = ProbeResult(check="c", kind="watch", url="ws://h/", started_at=0.0).settle()
    with pytest.raises(TypeError, match="read-only"):
        change(result)
    fresh = ProbeResult(check="d", kind="watch", url="ws://h/", started_at=0.0).settle()
    assert fresh.degraded == []
    assert fresh.relay == {}


def test_new_result_keeps_a_clean_url_and_redacts_others() -> None:
    """A URL with nothing to hide is the check's own text; credentials never reach a result."""

    class Check:
        name, kind = "c", "probe"
        url = "".join(["ws://127.0.0.1:1/", "path"])  # a str object of its own

    assert new_result(Check()).url is Check.url
    Check.url = "wss://user:pw@example.test/feed?token=s3cret"
    shown = new_result(Check()).url
    assert "s3cret" not in shown
    assert "pw" not in shown
    assert new_result(Check()).url == shown
