"""The probes' error boundary: the failure classes and :func:`map_errors`.

Probes raise :class:`ProbeError` subclasses internally (defined in
:mod:`agent.probes.errors.failures`, re-exported here; the exception tree is drawn there);
the probe's entry point turns them into a failed :class:`~agent.result.ProbeResult`.
Library exceptions (websockets, ssl, OSError, asyncio) are translated in exactly
one place, :func:`map_errors` (its table is :func:`agent.probes.errors.mapping.translate`).

Messages are built in ``__str__`` from structured fields. Nothing here ever formats
a library exception's own text blindly: those may quote a URL holding a token
(free text that must be shown goes through :func:`agent.redact.scrub`).
"""

from __future__ import annotations

from types import TracebackType

from agent.probes.errors import failures
from agent.probes.errors.failures import *  # noqa: F403 - the failure classes are re-exported here
from agent.probes.errors.failures import ProbeError
from agent.probes.errors.mapping import translate

__all__ = ["map_errors"]
__all__ += failures.__all__


class map_errors:  # lower case: it reads as a call at its use, `with map_errors(phase):`
    """The one boundary where library exceptions become :class:`ProbeError`.

    ``with map_errors(phase):`` works around synchronous and asynchronous code
    alike (around awaits). ``CancelledError`` is never caught. A class rather than a
    ``@contextmanager`` generator: a probe enters several, and the generator cost
    3.7 us per use against 1.1 us here.

    Args:
        phase: the phase being run (``resolve``, ``connect``, ``tls``, ``handshake``,
            ``auth``, ``steps``, ``ping``, ...); it decides what a timeout means.

    Raises:
        ProbeError: the translated failure, chained with ``from exc``.
    """

    __slots__ = ("phase",)

    def __init__(self, phase: str | None = None) -> None:
        self.phase = phase

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, ProbeError) or not isinstance(exc, Exception):
            return
        raise translate(exc, self.phase) from exc
