"""Stable hashing of check names: the schedule phase and shard are pinned across releases.

A check's start offset in its interval comes from ``stable_fraction(name,
salt="offset")``. Changing the hash (its width, its salt, its algorithm) moves every
check of every fleet to a new phase at upgrade time, so the values below are pinned:
a change that alters them must be deliberate and said so in the release notes. The
same holds for which of N shards runs a check (``shard_of``): changing it moves checks
between the agents of a fleet at upgrade time.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.runtime.scheduler import start_offset
from agent.runtime.shard import shard_of, stable_fraction, stable_hash

PINNED_OFFSETS = [
    ("chat", 0.6493325739178374),
    ("feed", 0.17069133066220754),
    ("é", 0.4201241578874825),
    ("a" * 40, 0.7282067166331068),
]


@pytest.mark.parametrize(("name", "fraction"), PINNED_OFFSETS, ids=["chat", "feed", "utf8", "long"])
def test_offset_fraction_is_pinned(name: str, fraction: float) -> None:
    """The phase of a check name is the one every earlier release computed."""
    assert stable_fraction(name, salt="offset") == fraction
    assert start_offset(name, 60.0) == pytest.approx(fraction * 60.0)


def test_offset_hash_is_64_bits() -> None:
    """The offset hash is the 64-bit value the fraction is read from."""
    assert stable_hash("chat", salt="offset") == 11978071809785435820
    assert stable_hash("chat", salt="offset") / 2.0**64 == stable_fraction("chat", salt="offset")


def test_salts_separate_uses() -> None:
    """Different salts give unrelated hashes of one name."""
    assert stable_hash("chat", salt="offset") != stable_hash("chat", salt="other")


def test_long_salt_is_cut_to_sixteen_bytes() -> None:
    """Only the first 16 bytes of a salt count (the hash's personalisation limit)."""
    sixteen = "s" * 16
    assert stable_hash("chat", salt=sixteen + "xyz") == stable_hash("chat", salt=sixteen)
    assert stable_hash("chat", salt=sixteen) != stable_hash("chat", salt="s" * 15)


def test_fractions_stay_below_one() -> None:
    """Fractions lie in [0, 1) for any name."""
    fractions = [stable_fraction(f"check-{i}", salt="offset") for i in range(2000)]
    assert min(fractions) >= 0.0
    assert max(fractions) < 1.0
    assert max(fractions) > 0.99
    assert min(fractions) < 0.01


def test_same_value_in_another_process() -> None:
    """A fresh interpreter (another hash seed) computes the same fraction."""
    code = (
        "from agent.runtime.shard import stable_fraction;"
        " print(repr(stable_fraction('chat', salt='offset')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        timeout=60,
    ).stdout
    assert float(out) == stable_fraction("chat", salt="offset")


@pytest.mark.parametrize(
    ("count", "shards"), [(3, [3, 2, 1, 1]), (7, [3, 7, 6, 1])], ids=["three", "seven"]
)
def test_shard_assignment_is_pinned(count: int, shards: list[int]) -> None:
    """The shard running each check is the one earlier releases chose."""
    assert [shard_of(n, count) for n in ("chat", "feed", "prices", "a" * 40)] == shards
