"""The ``--shard K/N`` option as written: what is refused and what the refusal says."""

from __future__ import annotations

import pytest

from agent.runtime.shard import parse_shard


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
