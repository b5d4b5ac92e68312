"""Stable hashing of check names: which agent runs a check, and when in its interval.

Both answers must be the same on every machine, in every process and after every
restart, so they come from :mod:`hashlib` (Python's ``hash()`` is salted per process).

Which agent runs a check is rendezvous (highest random weight) hashing: each of the N
shards scores a check with ``hash(name, shard)`` and the highest score wins. A shard's
score does not depend on N, so going from N to N+1 agents moves only the checks the new
shard now wins, about 1/(N+1) of them, where ``hash mod N`` would move most of them.

``--shard auto`` reads K from the pod index of a Kubernetes StatefulSet (see
:func:`auto_shard`). Raises nothing of its own but :class:`ValueError` for a malformed
``K/N`` or an ordinal that cannot be determined.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from agent.config.models import CheckConfig

__all__ = [
    "COUNT_ENV",
    "INDEX_ENV",
    "auto_shard",
    "in_shard",
    "parse_shard",
    "select_shard",
    "shard_of",
    "stable_fraction",
    "stable_hash",
]

_HASH_BYTES = 8
#: Environment variable holding the pod's ordinal (the StatefulSet's
#: ``apps.kubernetes.io/pod-index`` label, passed through the downward API).
INDEX_ENV = "WSPROBE_POD_INDEX"
#: Environment variable holding the number of shards (the StatefulSet's replicas).
COUNT_ENV = "WSPROBE_SHARD_COUNT"
#: A StatefulSet pod's hostname is ``NAME-ORDINAL``.
_ORDINAL = re.compile(r"-(\d+)$")


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


def shard_of(name: str, count: int) -> int:
    """The 1-based shard among ``count`` that runs check ``name`` (highest weight wins).

    Args:
        name: the check name.
        count: the number of shards, at least 1.

    Returns:
        K in ``[1, count]``; the same on every host for the same ``name`` and ``count``.
    """
    best, winner = -1, 1
    for k in range(1, count + 1):
        # The shard number is the salt, so a weight depends only on (name, K), never on N.
        weight = stable_hash(name, salt=f"shard-{k}")
        if weight > best:
            best, winner = weight, k
    return winner


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1-based shard K of N).

    Raises:
        ValueError: when the text is not two integers with ``1 <= K <= N``.
    """
    k_text, sep, n_text = text.partition("/")
    try:
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"shard must look like K/N or auto, got {text!r}") from None
    if not sep or n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard must satisfy 1 <= K <= N, got {text!r}")
    return k, n


def auto_shard(
    *, environ: Mapping[str, str], hostname: str, count: int | None = None
) -> tuple[int, int]:
    """This pod's shard in a StatefulSet: ``(ordinal + 1, replicas)``.

    The ordinal is ``$WSPROBE_POD_INDEX`` when set (Kubernetes 1.28+ labels every
    StatefulSet pod with ``apps.kubernetes.io/pod-index``; the downward API passes it
    as an environment variable), else the ``-K`` suffix of the hostname, which a
    StatefulSet names ``NAME-K``. The number of shards is ``count`` (``--shard-count``)
    or ``$WSPROBE_SHARD_COUNT``: Kubernetes does not tell a pod its replica count.

    Args:
        environ: the process environment.
        hostname: the pod's hostname.
        count: the number of shards from the command line, if given.

    Returns:
        ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        ValueError: when the ordinal or the count is missing or malformed, or the
            ordinal is not below the count.
    """
    index_text = environ.get(INDEX_ENV, "").strip()
    if index_text:
        if not index_text.isdigit():
            raise ValueError(f"${INDEX_ENV} must be a pod ordinal (0, 1, ...), got {index_text!r}")
        ordinal = int(index_text)
        source = f"${INDEX_ENV}"
    else:
        match = _ORDINAL.search(hostname)
        if match is None:
            raise ValueError(
                f"cannot tell this pod's ordinal: set ${INDEX_ENV} (the downward API label"
                f" apps.kubernetes.io/pod-index) or run with a StatefulSet hostname NAME-K,"
                f" got hostname {hostname!r}"
            )
        ordinal = int(match.group(1))
        source = f"hostname {hostname!r}"
    if count is None:
        count_text = environ.get(COUNT_ENV, "").strip()
        if not count_text:
            raise ValueError(
                f"the number of shards is unknown: pass --shard-count N or set ${COUNT_ENV}"
                " to the StatefulSet's replicas"
            )
        if not count_text.isdigit():
            raise ValueError(f"${COUNT_ENV} must be a positive integer, got {count_text!r}")
        count = int(count_text)
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, got {count}")
    if ordinal >= count:
        raise ValueError(
            f"pod ordinal {ordinal} (from {source}) is not below the number of shards"
            f" {count}: raise --shard-count/${COUNT_ENV} with the replicas"
        )
    return ordinal + 1, count


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Whether this agent (shard ``K/N``, or all checks when None) runs check ``name``."""
    if shard is None:
        return True
    k, n = shard
    return shard_of(name, n) == k


def select_shard(
    checks: Iterable[CheckConfig], shard: tuple[int, int] | None
) -> tuple[CheckConfig, ...]:
    """The checks of ``checks`` that belong to ``shard``, in their original order."""
    return tuple(check for check in checks if in_shard(check.name, shard))
