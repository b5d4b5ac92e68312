"""``wsprobe run``: the long-running agent.

Start order: config -> metrics, lag monitor, store, alerting -> demo targets (``--demo``)
-> HTTP -> scheduler and watch sessions. SIGHUP (or ``POST /-/reload``) reloads;
SIGTERM/SIGINT stop gracefully: scheduling stops, running probes get
:data:`STOP_GRACE_TIMEOUT` seconds to end and are then cancelled (a cancelled run
records nothing, so it never counts as a failure), watch sessions close with 1001,
then alerting and the store are flushed and closed.

A reload is all or nothing: the new config is loaded and validated completely, and
only a valid one replaces checks; unchanged checks (equal frozen configs) keep their
schedule, series, history and watch session.

Raises nothing to its caller: :meth:`Daemon.run` returns the exit code. The process
around it (event loop, signals) is :mod:`agent.runtime.serve`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.alerting import AlertService
from agent.config.loader import ConfigError, load_config
from agent.config.models import CheckConfig, Config
from agent.http.server import WebServer
from agent.metrics.alerts import NotificationCounts
from agent.metrics.registry import Metrics
from agent.probes import PROBES
from agent.result import ProbeResult
from agent.runtime.gc_policy import freeze_heap, gc_paused
from agent.runtime.loop_lag import LoopLagMonitor
from agent.runtime.overrides import AgentOverrides
from agent.runtime.readiness import notify_ready
from agent.runtime.registries import REGISTRIES
from agent.runtime.runner import Runner
from agent.runtime.scheduler import CheckScheduler
from agent.runtime.shard import select_shard
from agent.runtime.view import DaemonView
from agent.runtime.watches import WatchSessions
from agent.storage import DB_FILENAME, StateError, Store
from agent.storage.rollups import Rollups

if TYPE_CHECKING:
    from agent.demo import DemoServer

__all__ = [
    "DEMO_HOST",
    "DEMO_PORT",
    "STOP_GRACE_TIMEOUT",
    "Daemon",
]

log = logging.getLogger(__name__)

#: How long running probes may take to finish after SIGTERM before being cancelled.
STOP_GRACE_TIMEOUT = 2.0
DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8765


class Daemon:
    """The agent's services and their lifecycle.

    Args:
        config_path: the agent config file (re-read on reload).
        demo: start the demo targets in the same loop.
        shard: ``(K, N)`` or None for every check.
        overrides: agent settings from the command line, applied to every load.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        demo: bool,
        shard: tuple[int, int] | None,
        overrides: AgentOverrides | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.demo = demo
        self.shard = shard
        self.overrides = overrides or AgentOverrides()
        self.config: Config | None = None
        self.metrics: Metrics | None = None
        self.runner: Runner | None = None
        self.scheduler: CheckScheduler | None = None
        self.store: Store | None = None
        self.rollups: Rollups | None = None
        self.alerting: AlertService | None = None
        self.web: WebServer | None = None
        self.lag: LoopLagMonitor | None = None
        self.watches = WatchSessions(record=self._record_watch)
        self._demo_server: DemoServer | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Start everything, serve until asked to stop, stop everything; the exit code.

        Signals are the caller's to wire (:mod:`agent.runtime.serve`): to
        :meth:`request_stop` and :meth:`request_reload`.
        """
        # No cyclic GC while the configuration is built (see agent.runtime.gc_policy);
        # freeze_heap() collects once at the end of _start.
        with gc_paused():
            try:
                config = await asyncio.to_thread(
                    load_config, self.config_path, registries=REGISTRIES
                )
            except ConfigError as exc:
                for issue in exc.issues:
                    log.error("config error: %s", issue)
                return 1
            config = self.overrides.apply(config)
            try:
                await self._start(config)
            except StateError as exc:
                # Read-only or unwritable state directory: the operator's to fix.
                log.error("wsprobe could not start: %s", exc)
                await self._shutdown()
                return 2
            except (OSError, ValueError) as exc:
                log.error("wsprobe could not start: %s", exc)
                await self._shutdown()
                return 1
        self._started = True
        notify_ready()
        try:
            await self._stop.wait()
        finally:
            log.info("stopping")
            await self._shutdown()
        log.info("stopped")
        return 0

    def request_stop(self) -> None:
        """Begin a graceful stop (signal handler)."""
        self._stop.set()

    async def _start(self, config: Config) -> None:
        agent = config.agent
        self.config = config
        checks = select_shard(config.checks, self.shard)
        self.lag = LoopLagMonitor(budget=agent.loop_lag_budget)
        self.lag.start()
        # Relative to the working directory, like Prometheus' storage path.
        db_path = Path(agent.state_dir) / DB_FILENAME
        self.store = Store(
            db_path, history_size=agent.history_size, max_bytes=agent.state_max_bytes
        )
        notifications = NotificationCounts()
        notifications.set_receivers(r.name for r in config.receivers)
        try:
            self.rollups = Rollups.open(self.store.path)
            # Checks removed while the agent was down leave nothing behind.
            self.rollups.forget([c.name for c in checks])
            self.store.add_shedder(self.rollups)
        except sqlite3.Error as exc:
            # The status page's history is a convenience: probing goes on without it.
            log.error("long-term rollups disabled: %s: %s", self.store.path, exc)
        self.alerting = AlertService(
            self._sharded(config, checks), self.store, on_notification=notifications
        )
        await self.alerting.start()
        # Built last of the services it reads, so it is complete from the start.
        self.metrics = metrics = Metrics(
            location=agent.location,
            alert_flags=self.alerting.flagged,
            alert_suppressed=self.alerting.suppressed_counts,
            queue_depth=self.alerting.queue_depth,
            state_health=self.store.health.snapshot,
            watch_stats=self.watches.stats,
            loop_lag_samples=self.lag.drain_samples,
            notifications=notifications,
        )
        metrics.reloaded(ok=True)
        self.runner = Runner(
            metrics=metrics,
            probes=PROBES,
            max_concurrency=agent.max_concurrency,
            lag=self.lag,
            store=self.store,
            alerting=self.alerting,
            rollups=self.rollups,
        )
        self.runner.set_checks(checks)
        self.runner.result_log.policy = agent.log_results
        if self.demo:
            from agent.demo import DemoServer, ProtocolPorts

            self._demo_server = DemoServer(protocol_ports=ProtocolPorts.after(DEMO_PORT))
            await self._demo_server.start(DEMO_HOST, DEMO_PORT)
            log.info("demo targets on ws://%s:%d", DEMO_HOST, DEMO_PORT)
        self.web = WebServer(DaemonView(self), listen=agent.listen, web_config=agent.web)
        url = await self.web.start()
        self.alerting.set_web_url(url)
        log.info("listening on %s (status page at %s/, metrics at %s/metrics)", url, url, url)
        self.scheduler = CheckScheduler(run=self.runner.run_check, skipped=metrics.skipped)
        await self.scheduler.apply(checks)
        freeze_heap()
        self.scheduler.start()
        await self.watches.apply(checks)
        log.info(
            "wsprobe running %d checks (%d scheduled, %d watched), location %s%s, loop %s",
            len(checks),
            self.scheduler.job_count,
            len(self.watches),
            agent.location,
            f", shard {self.shard[0]}/{self.shard[1]}" if self.shard else "",
            type(asyncio.get_running_loop()).__module__.split(".")[0],
        )

    async def _shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.pause()
        watches = self.watches.stop()
        if self.runner is not None:
            cancelled, _ = await asyncio.gather(
                self.runner.drain(grace_timeout=STOP_GRACE_TIMEOUT), watches
            )
            if cancelled:
                log.info("cancelled %d unfinished runs (not counted)", cancelled)
        else:
            await watches
        if self.scheduler is not None:
            await self.scheduler.shutdown()
        for task in list(self._background):
            task.cancel()
        if self.web is not None:
            await self.web.stop()
        if self.alerting is not None:
            await self.alerting.aclose()
        if self.rollups is not None:
            if self.store is not None:
                self.store.remove_shedder(self.rollups)
            self.rollups.close()
        if self.store is not None:
            self.store.close()
        if self._demo_server is not None:
            await self._demo_server.stop()
        if self.lag is not None:
            await self.lag.stop()

    def request_reload(self) -> None:
        """Reload in the background (SIGHUP); ignored while the agent is starting."""
        if not self._started:
            log.warning("SIGHUP ignored: the agent is still starting")
            return
        log.info("SIGHUP: reloading %s", self.config_path)
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --------------------------------------------------------------------- reload

    async def reload(self) -> list[str]:
        """Re-read the config file and apply it if valid.

        Returns:
            The errors (``FILE:LINE: key.path: message``); empty when applied.
        """
        if not self._started or self.metrics is None:
            return ["the agent is still starting; reload again once /readyz answers 200"]
        async with self._reload_lock:
            try:
                # Built with the cyclic GC off, as at start-up (agent.runtime.gc_policy).
                with gc_paused():
                    config = await asyncio.to_thread(
                        load_config, self.config_path, registries=REGISTRIES
                    )
                config = self.overrides.apply(config)
            except ConfigError as exc:
                errors = [str(issue) for issue in exc.issues] or [str(exc)]
                for error in errors:
                    log.error("reload rejected, old config kept: %s", error)
                self.metrics.reloaded(ok=False)
                return errors
            try:
                await self._apply(config)
            except Exception as exc:
                # A bug while applying must not kill the agent or leave the endpoint
                # hanging; what was applied so far stays, and the reload reads as failed.
                log.exception("reload failed while applying the new config")
                self.metrics.reloaded(ok=False)
                return [f"internal error while applying the config: {type(exc).__name__}"]
            freeze_heap()
            self.metrics.reloaded(ok=True)
            log.info("config reloaded: %d checks", len(self.runner.checks if self.runner else ()))
            return []

    async def _apply(self, config: Config) -> None:
        assert self.runner is not None
        assert self.scheduler is not None
        old = self.config
        self.config = config
        agent = config.agent
        if old is not None and old.agent.listen != agent.listen:
            log.warning("agent.listen changed: restart wsprobe to apply")
        if old is not None and old.agent.state_dir != agent.state_dir:
            log.warning("agent.state_dir changed: restart wsprobe to apply")
        checks = select_shard(config.checks, self.shard)
        # Runner first: from here on a late result of a removed or changed check is
        # dropped instead of recreating its series.
        self.runner.set_checks(checks, location=agent.location)
        self.runner.set_max_concurrency(agent.max_concurrency)
        self.runner.result_log.policy = agent.log_results
        await self.scheduler.apply(checks)
        await self.watches.apply(checks)
        if self.lag is not None:
            self.lag.budget = agent.loop_lag_budget
        if self.store is not None:
            self.store.history_size = agent.history_size
            self.store.maintenance.max_bytes = agent.state_max_bytes
            self.store.forget_checks(c.name for c in checks)
        if self.rollups is not None:
            self.rollups.forget([c.name for c in checks])
        if self.alerting is not None:
            self.alerting.reconfigure(self._sharded(config, checks))
        if self.metrics is not None:
            self.metrics.set_receivers(r.name for r in config.receivers)
        if self.web is not None:
            self.web.update(agent.web)

    @staticmethod
    def _sharded(config: Config, checks: tuple[CheckConfig, ...]) -> Config:
        """The config as this agent runs it: only its shard's checks."""
        if len(checks) == len(config.checks):
            return config
        return config.model_copy(update={"checks": checks})

    def _record_watch(self, check: CheckConfig, result: ProbeResult) -> None:
        if self.runner is not None:
            self.runner.record(check, result, duration=result.phases.get("total", 0.0))

    # ------------------------------------------------------------------ readiness

    def ready(self) -> tuple[bool, str]:
        """Ready once the config is loaded and the scheduler runs."""
        if self.config is None:
            return False, "config not loaded"
        if self.scheduler is None or not self.scheduler.running:
            return False, "scheduler not running"
        if self._stop.is_set():
            return False, "stopping"
        return True, "ready"
