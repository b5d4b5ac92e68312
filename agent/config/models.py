"""The frozen, validated configuration: the checks, and the whole ``Config`` around them.

YAML is parsed and ``${ENV}`` references expanded by :mod:`agent.config.loader`;
these models hold the result. Defaults are named module constants. The agent
process's own settings (the ``agent:`` block) are in :mod:`agent.config.settings`.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ByteSize,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.config._compact import prime_instance_dict
from agent.config.alerting import (
    AgentAlertingConfig,
    AlertingConfig,
    ReceiverConfig,
)
from agent.config.maintenance import MaintenanceWindow
from agent.config.protocols import ProtocolConfig
from agent.config.relay import RelayConfig
from agent.config.settings import AgentSettings
from agent.config.steps import Step, check_variables
from agent.config.types import (
    NAME_PATTERN,
    ByteCount,
    Duration,
    Frozen,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Int,
    Secret,
    SecretHeaderValue,
    config_file,
    has_surrogate,
)
from agent.config.watch import WatchConfig
from agent.result import PHASES

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_PINGS",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LIMIT_KEYS",
    "RESERVED_LABELS",
    "AuthConfig",
    "BasicAuth",
    "CheckConfig",
    "CheckMetricsConfig",
    "Config",
    "ExpectConfig",
    "OAuth2Config",
    "QueryAuth",
    "TLSConfig",
]

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_PINGS = 3
DEFAULT_PING_TIMEOUT = 2.0
DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_CLOSE_TIMEOUT = 1.5

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Label names wsprobe's own series already use.
RESERVED_LABELS = ("check", "location", "phase", "reason", "result", "version", "receiver")
#: Keys of ``limits:``: phase names, plus ``relay`` (the slowest relay delivery).
LIMIT_KEYS: tuple[str, ...] = (*PHASES, "relay")


def _label_name(key: str) -> str:
    # Prometheus' label grammar is ASCII-only: str.isidentifier() admits
    # "équipe", which Alertmanager then refuses with a 400 (never retried).
    if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
        raise ValueError(f"label name {key!r} is not a valid Prometheus label name")
    if key in RESERVED_LABELS:
        raise ValueError(f"label name {key!r} is reserved by wsprobe")
    return key


def _limit_key(key: str) -> str:
    if key not in LIMIT_KEYS:
        close = difflib.get_close_matches(key, LIMIT_KEYS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(LIMIT_KEYS)}"
        raise ValueError(f"unknown limit {key!r} ({hint})")
    return key


#: A metric label name (each bad one of a mapping is reported at its own line).
LabelName = Annotated[str, AfterValidator(_label_name)]
#: A phase (or ``ping``, ``relay``) a latency limit applies to.
LimitKey = Annotated[str, AfterValidator(_limit_key)]


# Scheme, a host name or IPv4 address, a port of at most 5 digits, anything after:
# every URL this matches passes _checked_ws_url (urlsplit is most of a check's
# validation time), so only the port's range is left to compare.
_SIMPLE_WS_URL = re.compile(
    r"wss?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?(?:[/?#][^\ud800-\udfff]*)?", re.DOTALL
)


def _checked_ws_url(value: str) -> str:
    """``value`` if urlsplit reads it as a ws/wss URL with a host and a valid port."""
    if has_surrogate(value):
        raise ValueError("URL holds a lone surrogate (\\udXXX), not a character")
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"URL scheme must be ws or wss, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"URL port is invalid: {exc}") from None
    return value


class TLSConfig(Frozen):
    """How to verify the server and present a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: Secret | None = None
    server_name: str | None = None
    min_version: Literal["1.2", "1.3"] | None = None
    insecure_skip_verify: bool = False

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _file_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        return config_file(value, info)

    @field_validator("min_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # YAML reads an unquoted 1.2 as a float.
        return str(value) if isinstance(value, float) else value

    @field_validator("key_file")
    @classmethod
    def _key_needs_cert(cls, value: str | None, info: ValidationInfo) -> str | None:
        # cert_file absent from info.data means it failed on its own; say nothing more.
        if value and "cert_file" in info.data and not info.data["cert_file"]:
            raise ValueError("key_file needs cert_file")
        return value


class BasicAuth(Frozen):
    """HTTP basic credentials sent with the upgrade request."""

    username: str
    password: Secret


class QueryAuth(Frozen):
    """A token passed as a query parameter of the URL."""

    param: str = "token"
    value: Secret


class OAuth2Config(Frozen):
    """OAuth2 client-credentials: a token fetched over HTTP before connecting."""

    token_url: HttpUrl
    client_id: str
    client_secret: Secret
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    #: ``bearer``: sent as Authorization header; ``message``: only ``{{token}}`` in steps.
    use: Literal["bearer", "message"] = "bearer"
    timeout: Duration = Field(10.0, gt=0)


class AuthConfig(Frozen):
    """Credentials presented during the handshake (and, later, in messages)."""

    bearer: Secret | None = None
    basic: BasicAuth | None = None
    query: QueryAuth | None = None
    #: Headers whose values are secret (e.g. ``X-Api-Key``).
    headers: dict[HeaderName, SecretHeaderValue] = {}
    oauth2: OAuth2Config | None = None
    #: First-message auth: steps run right after the handshake, timed as ``auth``.
    steps: tuple[Step, ...] = ()
    #: A secret the steps use as ``{{token}}`` (kept out of messages, unlike a literal).
    token: Secret | None = None

    @model_validator(mode="after")
    def _one_authorization(self) -> AuthConfig:
        if self.bearer is not None and self.basic is not None:
            raise ValueError("bearer and basic both set the Authorization header; choose one")
        if self.token is not None and self.oauth2 is not None:
            raise ValueError("token and oauth2 both provide {{token}}; choose one")
        return self


class ExpectConfig(Frozen):
    """What the handshake and close must look like for the run to succeed."""

    #: HTTP status of the upgrade. 101 by default; e.g. 401 makes a negative check.
    status: Int = Field(101, ge=100, le=599)
    #: Subprotocol the server must choose (``""`` demands that it chooses none).
    subprotocol: str | None = None
    close_code: Int | None = Field(None, ge=1000, le=4999)


class CheckMetricsConfig(Frozen):
    """What a check exports beyond the default series (docs/metrics.md)."""

    #: Per-check histograms of every phase and ping RTT: ~90 more samples (~8 KB) per
    #: check, so off by default; the agent-wide histograms by kind serve fleet quantiles.
    histograms: bool = False


#: The ``auth`` of a check without one, shared by all of them. A plain ``= AuthConfig()``
#: default would be deep-copied for every check (pydantic copies a default it cannot
#: hash, and ``headers`` is a dict): 0.28 s of the 0.51 s of validating 10,000 checks.
#: TLSConfig and ExpectConfig defaults hash, so they are shared already; frozen models
#: are not changed.
_NO_AUTH = AuthConfig()


class CheckConfig(Frozen):
    """One check, as validated from a check file."""

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    kind: str = "probe"
    url: str
    interval: Duration = Field(DEFAULT_INTERVAL, gt=0)
    cron: str | None = None
    timeout: Duration = Field(DEFAULT_TIMEOUT, gt=0)
    labels: dict[LabelName, str] = Field(default_factory=dict)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    subprotocols: tuple[str, ...] = ()
    compression: bool = False
    max_size: ByteCount = ByteSize(DEFAULT_MAX_SIZE)
    proxy: str | None = None
    follow_redirects: bool = False
    max_redirects: Int = Field(3, ge=0, le=10)
    ip_version: Literal["auto", "4", "6"] = "auto"
    auth: AuthConfig = Field(default_factory=lambda: _NO_AUTH)
    tls: TLSConfig = TLSConfig()
    pings: Int = Field(DEFAULT_PINGS, ge=0, le=100)
    ping_timeout: Duration = Field(DEFAULT_PING_TIMEOUT, gt=0)
    close_timeout: Duration = Field(DEFAULT_CLOSE_TIMEOUT, gt=0, le=10)
    expect: ExpectConfig = ExpectConfig()
    steps: tuple[Step, ...] = ()
    #: Latency limits per phase (or ``ping`` for the max RTT): over them is degraded.
    limits: dict[LimitKey, Duration] = Field(default_factory=dict)
    alerting: AlertingConfig | None = None
    relay: RelayConfig | None = None
    watch: WatchConfig | None = None
    metrics: CheckMetricsConfig = CheckMetricsConfig()
    #: The application protocol spoken on the connection (agent/probes/protocols).
    protocol: ProtocolConfig | None = None

    @field_validator("url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        simple = _SIMPLE_WS_URL.fullmatch(value)
        if simple and int(simple.group(1) or 0) <= 65535:
            return value
        return _checked_ws_url(value)

    @field_validator("ip_version", mode="before")
    @classmethod
    def _ip_version_as_text(cls, value: object) -> object:
        # YAML reads an unquoted 4 as an int.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("auth")
    @classmethod
    def _one_authorization_source(cls, value: AuthConfig, info: ValidationInfo) -> AuthConfig:
        # websockets turns URL userinfo into an Authorization header; a second one from
        # bearer/basic would make the server see two.
        url = info.data.get("url")
        if url and (value.bearer or value.basic) and urlsplit(url).username is not None:
            raise ValueError(
                "the URL's user:password@ and auth.bearer/basic both set the Authorization"
                " header; use one"
            )
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout_below_interval(cls, value: float, info: ValidationInfo) -> float:
        # A field validator (not a model one) so the error points at the timeout key;
        # interval and cron are declared earlier, so they are in info.data when valid.
        interval = info.data.get("interval")
        if info.data.get("cron") is None and interval is not None and value >= interval:
            raise ValueError(f"timeout ({value:g}s) must be less than interval ({interval:g}s)")
        return value

    @model_validator(mode="after")
    def _protocol_owns_the_messages(self) -> CheckConfig:
        # The protocol session reads every frame; raw steps would race it for them.
        if self.protocol is not None and (self.steps or self.auth.steps):
            raise ValueError(
                "with protocol:, write the steps under protocol.steps (steps and"
                " auth.steps send raw frames)"
            )
        if self.protocol is not None and self.kind not in ("probe", "watch", "relay"):
            raise ValueError(
                f"protocol: is supported on kinds probe, watch and relay only, not {self.kind!r}"
            )
        return self

    @model_validator(mode="after")
    def _step_variables(self) -> CheckConfig:
        problems = check_variables(self)  # {{var}} used before any step defines it
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Before any check is validated: see agent.config._compact.
prime_instance_dict(CheckConfig)


class Config(Frozen):
    """The whole configuration: agent settings, receivers and every check."""

    agent: AgentSettings = AgentSettings()
    check_files: tuple[str, ...] = ("checks/*.yaml",)
    #: Values every check starts from (interval, timeout, pings, ...).
    defaults: dict[str, object] = {}
    alerting: AgentAlertingConfig = AgentAlertingConfig()
    receivers: tuple[ReceiverConfig, ...] = ()
    #: Maintenance windows: checks run and are measured, alerts stay quiet.
    maintenance: tuple[MaintenanceWindow, ...] = ()
    checks: tuple[CheckConfig, ...] = ()
    #: check name -> "file:line" where it was defined (for messages).
    sources: dict[str, str] = {}

    @field_validator("alerting", mode="before")
    @classmethod
    def _agent_alerting(cls, value: object) -> object:
        # Code may build the agent block with the check-level model (no routes).
        if isinstance(value, AlertingConfig) and not isinstance(value, AgentAlertingConfig):
            return value.model_dump()
        return value
