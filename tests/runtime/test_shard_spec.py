"""The ``--shard K/N`` option as written: what is refused and what the refusal says."""

from __future__ import annotations

import pytest

from agent.runtime.shard import auto_shard, parse_shard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x/2", "shard must look like K/N or auto, got 'x/2'"),
        ("1/", "shard must look like K/N or auto, got '1/'"),
        ("0/3", "shard must satisfy 1 <= K <= N, got '0/3'"),
        ("4/3", "shard must satisfy 1 <= K <= N, got '4/3'"),
        ("1/0", "shard must satisfy 1 <= K <= N, got '1/0'"),
    ],
    ids=["junk", "no-count", "zero", "over", "no-shards"],
)
def test_bad_shard_is_refused_saying_why(text: str, message: str) -> None:
    """A malformed or impossible K/N is refused with the rule and what was given."""
    with pytest.raises(ValueError, match=r"^shard must ") as info:
        parse_shard(text)
    assert str(info.value) == message


def test_last_shard_of_n() -> None:
    """K may equal N."""
    assert parse_shard("3/3") == (3, 3)


@pytest.mark.parametrize(
    ("environ", "hostname", "count", "message"),
    [
        ({}, "wsprobe-0", 0, "the number of shards must be at least 1, got 0"),
        (
            {},
            "wsprobe-3",
            2,
            "pod ordinal 3 (from hostname 'wsprobe-3') is not below the number of shards 2:"
            " raise --shard-count/$WSPROBE_SHARD_COUNT with the replicas",
        ),
        (
            {},
            "wsprobe",
            2,
            "cannot tell this pod's ordinal: set $WSPROBE_POD_INDEX (the downward API label"
            " apps.kubernetes.io/pod-index) or run with a StatefulSet hostname NAME-K,"
            " got hostname 'wsprobe'",
        ),
        (
            {"WSPROBE_POD_INDEX": "0"},
            "x",
            None,
            "the number of shards is unknown: pass --shard-count N or set"
            " $WSPROBE_SHARD_COUNT to the StatefulSet's replicas",
        ),
    ],
    ids=["zero-count", "ordinal-too-big", "no-ordinal", "no-count"],
)
def test_auto_shard_refusals_in_full(
    environ: dict[str, str], hostname: str, count: int | None, message: str
) -> None:
    """``--shard auto`` refusals read in full: what is wrong and what to set."""
    with pytest.raises(ValueError, match=r"^(the|pod|cannot) ") as info:
        auto_shard(environ=environ, hostname=hostname, count=count)
    assert str(info.value) == message
