"""The agent process's own settings: its listen address, state directory, concurrency,
loop-lag budget, per-run log lines and the TLS and basic auth of its HTTP endpoints.

These are the ``agent:`` block of the config file; the checks are in
:mod:`agent.config.models`, which composes both into :class:`~agent.config.models.Config`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ByteSize, Field, ValidationInfo, field_validator

from agent.config.alerting import check_external_url
from agent.config.types import NAME_PATTERN, ByteCount, Duration, Frozen, Int, config_file

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_LISTEN",
    "DEFAULT_LOG_RESULTS",
    "DEFAULT_LOOP_LAG_BUDGET",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_STATE_MAX_BYTES",
    "LISTEN_PATTERN",
    "MIN_STATE_MAX_BYTES",
    "AgentSettings",
    "LogResults",
    "PublicStatusConfig",
    "WebConfig",
]

#: The state directory's default bound (``agent.state_max_bytes``).
DEFAULT_STATE_MAX_BYTES = 512 * 1024 * 1024
#: Below this the bound cannot hold even an idle agent's file and WAL.
MIN_STATE_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_LISTEN = "127.0.0.1:9470"
DEFAULT_MAX_CONCURRENCY = 256
DEFAULT_HISTORY = 50
#: 10 ms: the bench showed 50 ms let results carrying ~36 ms of error pass unflagged.
DEFAULT_LOOP_LAG_BUDGET = 0.01
#: Which runs get a log line: only failed ones, by default (a line per run of 10,000
#: checks would drown the log); ``changes`` adds the first run and every flip between
#: success and failure; ``all`` logs every run.
LogResults = Literal["failures", "changes", "all"]
DEFAULT_LOG_RESULTS: LogResults = "failures"

_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: ``HOST:PORT``: a host name or IPv4 address (or nothing: loopback), or ``[IPv6]``.
LISTEN_PATTERN = rf"^(?:(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*)?|\[[0-9A-Fa-f:.]+\]):[0-9]{{1,5}}$"
_LISTEN = re.compile(LISTEN_PATTERN)

_BCRYPT_PATTERN = r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"
_BCRYPT = re.compile(_BCRYPT_PATTERN)


def _bcrypt_hash(value: str) -> str:
    # A plain-text password would never match, and would sit in the file in clear.
    if not _BCRYPT.match(value):
        raise ValueError(
            "the password must be a bcrypt hash ($2b$...), e.g. from htpasswd -nbBC 12 USER PASS"
        )
    return value


class PublicStatusConfig(Frozen):
    """Checks the read-only status page under ``/public/`` shows without basic auth:
    those named in ``checks`` and those whose labels include every ``labels`` pair."""

    checks: tuple[str, ...] = ()
    labels: dict[str, str] = {}


class WebConfig(Frozen):
    """TLS and basic auth for the agent's own HTTP endpoints."""

    cert_file: str | None = None
    key_file: str | None = None
    #: username -> bcrypt hash
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_bcrypt_hash)]] = {}
    #: An unauthenticated read-only status page for some checks (off when None).
    public_status: PublicStatusConfig | None = None

    @field_validator("cert_file", "key_file")
    @classmethod
    def _file_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        return config_file(value, info)


class AgentSettings(Frozen):
    """The agent process itself."""

    listen: str = DEFAULT_LISTEN
    location: str = Field("default", pattern=NAME_PATTERN)
    state_dir: str = ".wsprobe-state"
    max_concurrency: Int = Field(DEFAULT_MAX_CONCURRENCY, ge=1)
    history_size: Int = Field(DEFAULT_HISTORY, ge=1, le=10_000)
    #: Bound of the state directory's SQLite file and WAL (docs/state.md), e.g. "512MiB".
    state_max_bytes: ByteCount = Field(ByteSize(DEFAULT_STATE_MAX_BYTES), ge=MIN_STATE_MAX_BYTES)
    loop_lag_budget: Duration = Field(DEFAULT_LOOP_LAG_BUDGET, gt=0)
    #: One logfmt (or JSON) line per run: of failed runs, of changes, or of every run.
    log_results: LogResults = DEFAULT_LOG_RESULTS
    web: WebConfig = WebConfig()
    #: How people and tools reach this agent (behind a proxy, a DNS name, a port
    #: mapping); alert links use it. Unset: the address the HTTP server bound.
    external_url: str | None = None

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, value: str | None) -> str | None:
        return check_external_url(value)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        valid = bool(_LISTEN.match(value)) and int(port) <= 65535
        if valid and host.startswith("["):
            try:
                ipaddress.IPv6Address(host[1:-1])
            except ValueError:
                valid = False
        if not valid:
            raise ValueError(
                f"listen must be HOST:PORT (e.g. 127.0.0.1:9470, [::1]:9470), not {value!r}"
            )
        return value
