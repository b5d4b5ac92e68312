"""Stable hashing of check names: which agent runs a check, and when in its interval.

Both answers must be the same on every machine, in every process and after every
restart, so they come from :mod:`hashlib` (Python's ``hash()`` is salted per process).
Raises nothing of its own but :class:`ValueError` for a malformed ``K/N``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from agent.config.models import CheckConfig

__all__ = ["in_shard", "parse_shard", "select_shard", "stable_fraction", "stable_hash"]

_HASH_BYTES = 8


def stable_hash(name: str, *, salt: str = "shard") -> int:
    """A 64-bit hash of ``name`` that never changes between processes or hosts.

    Args:
        name: the check name.
        salt: separates independent uses (sharding vs. start offsets) so that the
            checks of one shard are not also bunched in one part of the interval.

    Returns:
        An integer in ``[0, 2**64)``.
    """
    digest = hashlib.blake2b(
        name.encode("utf-8"), digest_size=_HASH_BYTES, person=salt.encode("utf-8")[:16]
    ).digest()
    return int.from_bytes(digest, "big")


def stable_fraction(name: str, *, salt: str) -> float:
    """``stable_hash`` mapped onto ``[0, 1)``."""
    return stable_hash(name, salt=salt) / float(1 << (8 * _HASH_BYTES))


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1-based shard K of N).

    Raises:
        ValueError: when the text is not two integers with ``1 <= K <= N``.
    """
    k_text, sep, n_text = text.partition("/")
    try:
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"shard must look like K/N, got {text!r}") from None
    if not sep or n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard must satisfy 1 <= K <= N, got {text!r}")
    return k, n


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Whether this agent (shard ``K/N``, or all checks when None) runs check ``name``."""
    if shard is None:
        return True
    k, n = shard
    return stable_hash(name) % n == k - 1


def select_shard(
    checks: Iterable[CheckConfig], shard: tuple[int, int] | None
) -> tuple[CheckConfig, ...]:
    """The checks of ``checks`` that belong to ``shard``, in their original order."""
    return tuple(check for check in checks if in_shard(check.name, shard))
