"""What the HTTP endpoints read of the running agent (:class:`agent.http.server.AgentView`).

The daemon (:mod:`agent.runtime.daemon`) owns the services and their lifecycle; this
module only answers the endpoints' questions from the services it finds running, and
answers with nothing while they are not started yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from agent.alerting import AlertService
from agent.config.models import CheckConfig, Config
from agent.http.api import checks_json
from agent.http.status import summary_item
from agent.metrics.process import with_process
from agent.metrics.registry import Metrics
from agent.result import ProbeResult
from agent.runtime.runner import Runner
from agent.runtime.scheduler import CheckScheduler
from agent.runtime.watches import WatchSessions
from agent.storage import Store
from agent.storage.rollups import Rollups

__all__ = ["DaemonParts", "DaemonView"]


class DaemonParts(Protocol):
    """The daemon's services as they stand: each is None until started."""

    config: Config | None
    runner: Runner | None
    scheduler: CheckScheduler | None
    metrics: Metrics | None
    store: Store | None
    rollups: Rollups | None
    alerting: AlertService | None
    watches: WatchSessions

    def ready(self) -> tuple[bool, str]: ...

    async def reload(self) -> list[str]: ...


class DaemonView:
    """The endpoints' view of a daemon, read afresh on every call.

    Args:
        daemon: the daemon whose services answer.
    """

    def __init__(self, daemon: DaemonParts) -> None:
        self._daemon = daemon

    def ready(self) -> tuple[bool, str]:
        """Ready once the config is loaded and the scheduler runs."""
        return self._daemon.ready()

    async def reload(self) -> list[str]:
        """Re-read the config file and apply it if valid; the errors, empty when applied."""
        return await self._daemon.reload()

    def metrics_chunks(self) -> Iterator[str]:
        """The ``/metrics`` exposition, in pieces."""
        metrics = self._daemon.metrics
        if metrics is None:
            return iter(())
        return with_process(metrics.render_chunks())

    def checks_json(self, *, name: str | None, history: int) -> list[dict[str, Any]]:
        """The ``/api/v1/checks`` document."""
        daemon = self._daemon
        if daemon.runner is None or daemon.scheduler is None or daemon.metrics is None:
            return []
        return checks_json(
            daemon.runner.checks.values(),
            series=daemon.metrics.series,
            next_runs=daemon.scheduler.next_run_times(),
            store=daemon.store,
            alerting=daemon.alerting,
            watch_stats=daemon.watches.stats,
            name=name,
            history=history,
        )

    def rollup_view(self) -> Rollups | None:
        """The long-term aggregates (status page, badges, history API)."""
        return self._daemon.rollups

    def check_names(self) -> list[str]:
        """Every configured check's name, in config order."""
        runner = self._daemon.runner
        return list(runner.checks) if runner is not None else []

    def check_summaries(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """What the status page's overview reads of each check in ``names``."""
        runner, metrics = self._daemon.runner, self._daemon.metrics
        if runner is None or metrics is None:
            return []
        out = []
        for name in names:
            check = runner.current(name)
            if check is None:
                continue
            series = metrics.series(check)
            alerting = self._daemon.alerting
            out.append(
                summary_item(
                    name,
                    check.labels,
                    series.last if series is not None else None,
                    maintenance=alerting.in_maintenance(name) if alerting is not None else False,
                    flapping=alerting.flapping(name) if alerting is not None else False,
                )
            )
        return out

    def agent_location(self) -> str:
        """The ``location`` this agent reports."""
        config = self._daemon.config
        return config.agent.location if config is not None else ""

    def silence_view(self) -> AlertService | None:
        """The silences (``/api/v1/silences``), once alerting runs."""
        return self._daemon.alerting

    def find_check(self, name: str) -> CheckConfig | None:
        """The configured check called ``name``, in any shard.

        ``/probe`` runs on demand, so any agent can answer for any configured check:
        a Prometheus Operator ``Probe`` can point at the Service of a sharded StatefulSet.
        """
        runner, config = self._daemon.runner, self._daemon.config
        if runner is None or config is None:
            return None
        found = runner.current(name)
        if found is None:
            found = next((c for c in config.checks if c.name == name), None)
        return found

    async def probe_now(self, check: CheckConfig) -> tuple[ProbeResult, float]:
        """Run ``check`` now for ``/probe`` without touching its scheduled state."""
        runner = self._daemon.runner
        assert runner is not None
        return await runner.probe(check)
