"""The agent's HTTP endpoints (aiohttp): metrics, health, API, reload and ``/probe``.

    /metrics         Prometheus exposition of every check and the agent
    /healthz         200 while the process serves HTTP
    /readyz          200 once the config is loaded and the scheduler runs, else 503
    /                the status page (agent.http.page); /checks/NAME one check's page
    /public/         the same, read-only, for the checks agent.web.public_status chooses
    /badges/NAME/... shields-style SVG badges (agent.http.badges)
    /api/v1/checks   JSON: each check's state, last result, history, alert state;
                     ?state=S&label=K=V filter; /api/v1/checks/NAME[/history?range=7d]
    /api/v1/silences GET lists, POST creates; DELETE /api/v1/silences/ID ends one
    POST /-/reload   re-read the config; 200, or 400 with the errors
    /probe?check=N   run configured check N now; its probe_* metrics (blackbox style);
                     ?target=N is the same (the Prometheus Operator's Probe sends it)

Optional TLS (``agent.web.cert_file``/``key_file``) and HTTP basic auth against bcrypt
hashes (``agent.web.basic_auth_users``, :mod:`agent.http.auth`) cover every endpoint,
like Prometheus' exporter-toolkit web config, except ``/public/`` (which shows only the checks the
config makes public, and answers 404 when none is configured) and ``/static/``.
Raises :class:`ValueError` for an unusable ``listen``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from aiohttp import web

from agent.config.models import CheckConfig
from agent.config.settings import PublicStatusConfig, WebConfig
from agent.http.api import SilenceView, silence_routes
from agent.http.auth import Authenticator, basic_auth
from agent.http.checks_api import checks_api_routes
from agent.http.page import status_routes
from agent.http.request_log import RequestErrorLog
from agent.http.status import RollupView, filter_checks, parse_label_filters
from agent.metrics.text import render_probe
from agent.result import ProbeResult

__all__ = [
    "GZIP_LEVEL",
    "SCRAPE_PAUSE",
    "SHUTDOWN_TIMEOUT",
    "AgentView",
    "WebServer",
    "accepts_gzip",
    "build_app",
    "parse_listen",
]

log = logging.getLogger(__name__)

_DEFAULT_HISTORY = 10
#: On stop, requests still running (a ``/probe``) get this long before being dropped.
SHUTDOWN_TIMEOUT = 5.0
_MAX_HISTORY = 1000
#: zlib level of a gzip-compressed ``/metrics`` (see the handler).
GZIP_LEVEL = 1
#: Pieces larger than this are compressed in a worker thread.
_INLINE_GZIP_BYTES = 64 * 1024
#: The worker that compresses ``/metrics`` pieces: one thread, so each scrape's pieces
#: go through its compressor in order (zlib releases the GIL while it works).
_GZIP_WORKER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wsprobe-gzip")
#: Seconds the ``/metrics`` handler sleeps after each piece (at least one timer tick of
#: uvloop, whose timers count whole milliseconds). Yielding with ``sleep(0)`` instead
#: kept the loop saturated for the whole scrape at 10,000 checks (the probes already use
#: ~70 % of the core): every turn carried a piece plus the probes queued behind it, and
#: loop-lag samples during the scrape had a p50 of ~3 ms (docs/bench-log.md). The pause
#: lets the loop catch up between pieces; a 100 MB exposition (~600 pieces) takes
#: about 0.6 s longer.
SCRAPE_PAUSE = 0.001


class AgentView(Protocol):
    """What the endpoints need from the running agent (agent.runtime.view.DaemonView)."""

    def ready(self) -> tuple[bool, str]: ...

    def metrics_chunks(self) -> Iterator[str]: ...

    def checks_json(self, *, name: str | None, history: int) -> list[dict[str, Any]]: ...

    async def reload(self) -> list[str]: ...

    def find_check(self, name: str) -> CheckConfig | None: ...

    async def probe_now(self, check: CheckConfig) -> tuple[ProbeResult, float]: ...

    def silence_view(self) -> SilenceView | None: ...

    def check_names(self) -> list[str]: ...

    def check_summaries(self, names: Iterable[str]) -> list[dict[str, Any]]: ...

    def rollup_view(self) -> RollupView | None: ...

    def agent_location(self) -> str: ...


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*``, q > 0)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        q = params.strip()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:9470`` for IPv6) into host and port.

    Raises:
        ValueError: when there is no port or it is not a number in range.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen must be HOST:PORT, got {listen!r}")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    return host, int(port_text)


def build_app(
    agent: AgentView,
    auth: Authenticator,
    *,
    public: Callable[[], PublicStatusConfig | None] = lambda: None,
) -> web.Application:
    """The aiohttp application serving every endpoint of ``agent``.

    Args:
        agent: the running agent.
        auth: basic auth of every endpoint but ``/public/`` and ``/static/``.
        public: the current ``agent.web.public_status``.
    """

    async def metrics(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": _CONTENT_TYPE, "Vary": "Accept-Encoding"}
        gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        if gzip:
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        # Our own gzip at level 1 rather than aiohttp's (zlib's default level 6): at
        # 10,000 checks the exposition is ~16 MB; level 6 costs ~0.13 s of the agent's
        # core per scrape, level 1 ~0.045 s for 20 % more bytes (1.3 MB instead of 1.1).
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzip else None
        loop = asyncio.get_running_loop()
        # A piece's compression runs while the next piece renders, and is written one
        # piece later: awaiting it at once cost every piece an extra turn of the event
        # loop, which on a loop busy with probes made a gzip scrape 2-3 times slower
        # than a plain one.
        pending: asyncio.Future[bytes] | None = None
        try:
            for chunk in agent.metrics_chunks():
                data = chunk.encode("utf-8")
                if packer is not None:
                    if len(data) > _INLINE_GZIP_BYTES or pending is not None:
                        # In order behind the piece already in the worker.
                        queued = loop.run_in_executor(_GZIP_WORKER, packer.compress, data)
                        data = b"" if pending is None else await pending
                        pending = queued
                    else:
                        data = packer.compress(data)
                if data:
                    await response.write(data)
                # Thousands of checks make a large exposition: let probes run between
                # pieces, and the loop catch up with them.
                await asyncio.sleep(SCRAPE_PAUSE)
            if pending is not None:
                await response.write(await pending)
            if packer is not None:
                await response.write(packer.flush())
            await response.write_eof()
        except ConnectionResetError:
            # The scraper gave up (scrape_timeout): nothing to answer, nothing to log.
            pass
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = agent.ready()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    async def checks(request: web.Request) -> web.Response:
        try:
            history = int(request.query.get("history", _DEFAULT_HISTORY))
        except ValueError:
            return web.json_response({"error": "history must be an integer"}, status=400)
        history = max(0, min(history, _MAX_HISTORY))
        name = request.query.get("check")
        try:
            labels = parse_label_filters(request.query.getall("label", []))
            states = [s for v in request.query.getall("state", []) for s in v.split(",") if s]
            data = agent.checks_json(name=name, history=history)
            if name is not None and not data:
                return web.json_response({"error": f"no check named {name!r}"}, status=404)
            if states or labels:
                data = filter_checks(data, states=states, labels=labels)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"checks": data})

    async def reload(_: web.Request) -> web.Response:
        errors = await agent.reload()
        if errors:
            return web.json_response({"status": "error", "errors": errors}, status=400)
        return web.json_response({"status": "ok"})

    async def probe(request: web.Request) -> web.Response:
        # Only configured checks run: a URL (or any other parameter) would let anyone
        # who reaches this port make the agent connect anywhere. ``target`` is accepted
        # as the check's name because the Prometheus Operator's Probe resource sends
        # ``?target=`` (like blackbox_exporter's), never as a URL.
        extra = sorted(set(request.query) - {"check", "target"})
        if extra:
            return web.Response(
                status=400,
                text=f"only ?check=NAME (or ?target=NAME) is accepted; arbitrary targets are"
                f" refused (got {', '.join(extra)})\n",
            )
        names = request.query.getall("check", []) + request.query.getall("target", [])
        if len(names) != 1 or not names[0]:
            return web.Response(
                status=400, text="exactly one ?check=NAME (or ?target=NAME) is required\n"
            )
        check = agent.find_check(names[0])
        if check is None:
            return web.Response(
                status=404, text="no configured check of that name; arbitrary targets are refused\n"
            )
        result, duration = await agent.probe_now(check)
        body = render_probe(result, duration=duration)
        return web.Response(body=body, headers={"Content-Type": _CONTENT_TYPE})

    app = web.Application(middlewares=[basic_auth(auth)])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/checks", checks)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/probe", probe)
    silence_routes(app, agent.silence_view, clock=time.time)
    checks_api_routes(app, agent)
    status_routes(app, agent, public=public)
    return app


#: The text format agent.metrics.text writes.
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WebServer:
    """Runs :func:`build_app` on ``agent.listen`` with the optional TLS.

    Args:
        agent: the running agent.
        listen: ``HOST:PORT``.
        web_config: TLS files and basic-auth users.
    """

    def __init__(self, agent: AgentView, *, listen: str, web_config: WebConfig) -> None:
        self.listen = listen
        self.web_config = web_config
        self.auth = Authenticator(web_config.basic_auth_users)
        self._app = build_app(agent, self.auth, public=lambda: self.web_config.public_status)
        self._runner: web.AppRunner | None = None
        self.url = ""
        #: Where aiohttp logs request errors (malformed requests: rate-limited).
        self.request_log = RequestErrorLog()

    async def start(self) -> str:
        """Bind and serve; returns the base URL actually bound (port 0 resolved).

        Raises:
            OSError: when the address cannot be bound.
            ValueError: for a malformed ``listen``.
        """
        host, port = parse_listen(self.listen)
        ssl_context = _ssl_context(self.web_config)
        # access_log=None: a scrape every few seconds is not news worth a log line.
        self._runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            logger=self.request_log,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        addresses = self._runner.addresses
        bound = int(addresses[0][1]) if addresses else port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if ssl_context else 'http'}://{shown}:{bound}"
        return self.url

    def update(self, web_config: WebConfig) -> None:
        """Apply a reloaded web config: users change live; TLS needs a restart."""
        if (web_config.cert_file, web_config.key_file) != (
            self.web_config.cert_file,
            self.web_config.key_file,
        ):
            log.warning("agent.web TLS files changed: restart wsprobe to apply")
        self.auth.update(web_config.basic_auth_users)
        self.web_config = web_config

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _ssl_context(cfg: WebConfig) -> ssl.SSLContext | None:
    if not cfg.cert_file:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx
