"""The JSON Schema: in sync with the models, accepting every example, refusing their mistakes.

The schema and the loader are held to the same files: every example and test config
passes both, and each mistake below (written into an example) fails both.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent.config.loader import ConfigError, load_config
from agent.config.schema import config_schema, schema_text
from agent.notifiers import NOTIFIERS
from agent.probes import PROBES
from agent.probes.protocols import PROTOCOLS
from agent.runtime.registries import REGISTRIES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema" / "wsprobe.schema.json"
EXAMPLES = [ROOT / "config.example.yaml", *sorted((ROOT / "checks").glob("*.yaml"))]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class _JsonView(yaml.SafeLoader):
    """YAML as an editor's language server sees it: timestamps stay strings (JSON has none)."""


_JsonView.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def as_json(text: str) -> Any:
    """Parse YAML into the JSON data model a JSON Schema validator checks."""
    return yaml.load(text, Loader=_JsonView)  # noqa: S506 - a SafeLoader subclass


def schema_errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message[:120]}"
        for e in validator.iter_errors(doc)
    ]


def test_committed_schema_is_what_the_models_generate() -> None:
    """schema/wsprobe.schema.json is regenerated whenever a model or registry changes."""
    expected = schema_text(kinds=PROBES, receiver_types=NOTIFIERS, protocols=PROTOCOLS)
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "schema/wsprobe.schema.json is stale: run `wsprobe schema > schema/wsprobe.schema.json`"
    )


def test_schema_names_the_registries() -> None:
    """Check kinds, receiver types and protocols are enumerated from their registries."""
    schema = config_schema(kinds=["a", "b"], receiver_types=["x"], protocols=["p", "q"])
    kind = schema["$defs"]["CheckConfig"]["properties"]["kind"]
    assert kind["anyOf"][0] == {"enum": ["a", "b"]}
    receiver_type = schema["$defs"]["ReceiverConfig"]["properties"]["type"]
    assert receiver_type["anyOf"][0] == {"enum": ["x"]}
    protocol = schema["$defs"]["CheckConfig"]["properties"]["protocol"]
    assert protocol["anyOf"][0] == {"enum": ["p", "q"]}
    name = schema["$defs"]["ProtocolConfig"]["properties"]["name"]
    assert name["anyOf"][0] == {"enum": ["p", "q"]}


@pytest.mark.parametrize("protocol", ["soap", {"name": "soap"}], ids=["short", "long"])
def test_an_unknown_protocol_is_refused_by_the_schema(
    validator: jsonschema.Draft202012Validator, protocol: Any
) -> None:
    """An editor flags `protocol: soap` as the loader does, in both of its forms."""
    check = {"name": "c", "url": "ws://127.0.0.1:1/", "protocol": protocol}
    assert schema_errors(validator, {"checks": [check]})
    check["protocol"] = "mqtt" if isinstance(protocol, str) else {"name": "mqtt"}
    assert schema_errors(validator, {"checks": [check]}) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_and_names_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    """Each example file passes the schema and points editors at it (yaml-language-server)."""
    text = path.read_text(encoding="utf-8")
    assert schema_errors(validator, as_json(text)) == []
    found = re.search(r"^# yaml-language-server: \$schema=(\S+)$", text, re.MULTILINE)
    assert found, f"{path.name} has no yaml-language-server $schema comment"
    assert (path.parent / found.group(1)).resolve() == SCHEMA_FILE


def _doc_blocks() -> list[tuple[str, str]]:
    """Every ```yaml block of the docs that is a whole config file (not a fragment)."""
    keys = set(json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["properties"])
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        for i, block in enumerate(blocks):
            try:
                doc = yaml.safe_load(block)
            except yaml.YAMLError:
                continue  # an illustration of a mistake
            if isinstance(doc, dict) and doc and set(doc) <= keys:
                found.append((f"{page.name}#{i}", block))
    return found


@pytest.mark.parametrize(("where", "block"), _doc_blocks(), ids=lambda v: str(v)[:30])
def test_config_files_shown_in_the_docs_validate(
    validator: jsonschema.Draft202012Validator, where: str, block: str
) -> None:
    """The docs' complete config files pass the schema too."""
    assert schema_errors(validator, as_json(block)) == []


#: A test config using every model and most keys; the loader and the schema accept it.
KITCHEN_SINK = """\
agent:
  listen: "[::1]:0"
  location: lab-1
  state_dir: state
  max_concurrency: 8
  history_size: 20
  loop_lag_budget: 20ms
  web:
    basic_auth_users:
      prom: $2b$12$abcdefghijklmnopqrstuu5ZK4/bVnbN5iN3lN0TGn0dw7BRH6Nre
check_files: []
defaults:
  interval: 1m30s
  timeout: 5s
  labels: {team: core}
alerting:
  failure_threshold: 2
  success_threshold: 2
  repeat_interval: 1h
  degraded_threshold: 3
  receivers: [hook]
  flap: {max_changes: 4, window: 30m}
  group_wait: 10s
  group_interval: 1m
  group_by: [team]
  routes:
    - match: {team: core}
      match_re: {check: "probe-.*"}
      receivers: [pd]
      continue: true
      default_receivers: true
      repeat_interval: 30m
      group_wait: 5s
      group_interval: 2m
      group_by: [check]
  templates: {title: "{{ check }} {{ event }}", text: "{{ message }}"}
maintenance:
  - {name: nightly, cron: "0 2 * * *", duration: 30m, checks: [probe-all]}
  - {name: once, start: 2026-12-05T22:00:00, end: 2026-12-06T01:00:00, matchers: [service=feed]}
receivers:
  - name: hook
    type: webhook
    url: ${WSPROBE_TEST_HOOK:-https://hooks.example/x}
    secret: s3cret
    headers: {X-Team: core}
    timeout: 5s
    retry_timeout: 1h2m3.5s
  - {name: pd, type: pagerduty, routing_key: k, severity: warning, rate_limit: 60,
     send_resolved: false, group: false, templates: {title: "[pd] {{ summary }}"}}
checks:
  - name: probe-all
    url: wss://feed.example/ws?x=1
    interval: 2m
    labels: {service: feed}
    headers: {Origin: "https://app.example"}
    subprotocols: [v1]
    compression: true
    max_size: 64KiB
    follow_redirects: true
    max_redirects: 2
    ip_version: 4
    pings: 2
    ping_timeout: 1s
    close_timeout: 1s
    expect: {status: 101, subprotocol: v1, close_code: 1000}
    tls: {server_name: feed.internal, min_version: 1.2}
    auth:
      headers: {X-Api-Key: key}
      oauth2:
        token_url: https://idp.example/token
        client_id: probe
        client_secret: ${WSPROBE_TEST_SECRET:-secret}
        scopes: [read]
        timeout: 3s
    steps:
      - send: {type: subscribe}
      - send_binary: aGVsbG8=
      - name: first
        expect:
          json: {type: tick}
          path: $.price
          gt: 0
          ge: 0.01
          lt: 1000001
          le: 1000000
          timeout: 2s
          first_message: true
          fail_if: {json: {type: error}}
          extract: {price: $.price}
      - sleep: 500ms
      - app_ping:
          count: 2
          timeout: 1s
          interval: 100ms
    limits: {handshake: 300ms, ping: 0.1, relay: 1s}
    alerting:
      failure_threshold: 1
      success_threshold: 1
      repeat_interval: 2h
      degraded_threshold: 2
      receivers: [pd]
      default_receivers: false
  - name: watch-all
    kind: watch
    url: ws://feed.example/ws
    timeout: 5s
    watch:
      initial_delay: 1s
      max_delay: 1m
      max_retries: 5
      reset_after: 2m
      grace: 5s
      stale_after: 30s
      match: {json: {type: trade}}
      min_rate: 0.5
      rate_window: 1m
      ping_interval: 20s
      sequence: $.seq
      answer:
        match: {json: {type: ping}}
        reply: {type: pong}
        echo: [id]
  - name: relay-all
    kind: relay
    url: ws://chat.example/ws
    relay:
      receivers: 2
      join: [{send: {type: join, room: "r-{{run}}"}}]
      publish: {text: "{{marker}}"}
      match: {json: {type: message}}
      deadline: 3s
  - name: protocol-all
    url: ws://broker.example/mqtt
    protocol:
      name: mqtt
      version: 5
      username: probe
      password: secret
      keepalive: 30s
      handshake_timeout: 2s
      steps:
        - subscribe: {topic: "t/#", qos: 1, timeout: 2s}
        - publish: {topic: t/a, payload: {n: 1}, qos: 2, retain: true, timeout: 2s}
        - expect: {topic: "t/#", path: $.n, gt: 0, ge: 1, lt: 2, le: 1, timeout: 2s}
        - sleep: 1s
  - name: socketio-all
    url: ws://chat.example
    protocol:
      name: socketio
      steps: [{emit: {event: e, args: [1], ack: true, timeout: 2s}}]
  - name: relay-mqtt-all
    kind: relay
    url: ws://broker.example/mqtt
    protocol: mqtt
    relay:
      receivers: 2
      subscribe: {topic: "r/{{run}}", qos: 1, timeout: 2s}
      publish: {topic: "r/{{run}}", payload: "{{marker}}", qos: 1}
  - name: relay-stomp-all
    kind: relay
    url: ws://broker.example/ws
    protocol: stomp
    relay:
      subscribe: {destination: /topic/r, timeout: 2s}
      send: {destination: /topic/r, payload: "{{marker}}", receipt: true, timeout: 2s}
"""

#: Every numeric key of the kitchen sink: a boolean in its place must be refused.
NUMERIC_PATHS: list[tuple[Any, ...]] = [
    ("agent", "max_concurrency"),
    ("agent", "history_size"),
    ("agent", "state_max_bytes"),
    ("agent", "loop_lag_budget"),
    ("defaults", "interval"),
    ("alerting", "failure_threshold"),
    ("alerting", "success_threshold"),
    ("alerting", "repeat_interval"),
    ("alerting", "degraded_threshold"),
    ("alerting", "flap", "max_changes"),
    ("alerting", "flap", "window"),
    ("alerting", "group_wait"),
    ("alerting", "group_interval"),
    ("alerting", "routes", 0, "repeat_interval"),
    ("alerting", "routes", 0, "group_wait"),
    ("alerting", "routes", 0, "group_interval"),
    ("maintenance", 0, "duration"),
    ("receivers", 0, "timeout"),
    ("receivers", 0, "retry_timeout"),
    ("receivers", 1, "rate_limit"),
    ("checks", 0, "interval"),
    ("checks", 0, "timeout"),
    ("checks", 0, "max_size"),
    ("checks", 0, "max_redirects"),
    ("checks", 0, "pings"),
    ("checks", 0, "ping_timeout"),
    ("checks", 0, "close_timeout"),
    ("checks", 0, "expect", "status"),
    ("checks", 0, "expect", "close_code"),
    ("checks", 0, "auth", "oauth2", "timeout"),
    ("checks", 0, "steps", 2, "expect", "gt"),
    ("checks", 0, "steps", 2, "expect", "ge"),
    ("checks", 0, "steps", 2, "expect", "lt"),
    ("checks", 0, "steps", 2, "expect", "le"),
    ("checks", 0, "steps", 2, "expect", "timeout"),
    ("checks", 0, "steps", 3, "sleep"),
    ("checks", 0, "steps", 4, "app_ping", "count"),
    ("checks", 0, "steps", 4, "app_ping", "timeout"),
    ("checks", 0, "steps", 4, "app_ping", "interval"),
    ("checks", 0, "limits", "handshake"),
    ("checks", 0, "alerting", "failure_threshold"),
    ("checks", 0, "alerting", "success_threshold"),
    ("checks", 0, "alerting", "repeat_interval"),
    ("checks", 0, "alerting", "degraded_threshold"),
    ("checks", 1, "watch", "initial_delay"),
    ("checks", 1, "watch", "max_delay"),
    ("checks", 1, "watch", "max_retries"),
    ("checks", 1, "watch", "reset_after"),
    ("checks", 1, "watch", "grace"),
    ("checks", 1, "watch", "stale_after"),
    ("checks", 1, "watch", "min_rate"),
    ("checks", 1, "watch", "rate_window"),
    ("checks", 1, "watch", "ping_interval"),
    ("checks", 2, "relay", "receivers"),
    ("checks", 2, "relay", "deadline"),
    ("checks", 3, "protocol", "keepalive"),
    ("checks", 3, "protocol", "handshake_timeout"),
    ("checks", 3, "protocol", "steps", 0, "subscribe", "qos"),
    ("checks", 3, "protocol", "steps", 0, "subscribe", "timeout"),
    ("checks", 3, "protocol", "steps", 1, "publish", "qos"),
    ("checks", 3, "protocol", "steps", 1, "publish", "timeout"),
    ("checks", 3, "protocol", "steps", 2, "expect", "gt"),
    ("checks", 3, "protocol", "steps", 2, "expect", "ge"),
    ("checks", 3, "protocol", "steps", 2, "expect", "lt"),
    ("checks", 3, "protocol", "steps", 2, "expect", "le"),
    ("checks", 3, "protocol", "steps", 2, "expect", "timeout"),
    ("checks", 3, "protocol", "steps", 3, "sleep"),
    ("checks", 4, "protocol", "steps", 0, "emit", "timeout"),
    ("checks", 5, "relay", "subscribe", "qos"),
    ("checks", 5, "relay", "subscribe", "timeout"),
    ("checks", 6, "relay", "send", "timeout"),
]


def test_benchmark_configs_validate(
    tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    """The configs the benchmarks generate pass the schema and the loader."""
    from bench.gen import write_config

    agent_file = write_config(tmp_path, url="ws://127.0.0.1:9/", checks=3)
    for path in [agent_file, *sorted((tmp_path / "checks").glob("*.yaml"))]:
        assert schema_errors(validator, as_json(path.read_text(encoding="utf-8"))) == []
    assert len(load_config(agent_file, registries=REGISTRIES).checks) == 3


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _load(tmp_path: Path, doc: Any) -> list[str]:
    """The loader's errors for ``doc`` written as wsprobe.yaml ([] when it loads)."""
    path = tmp_path / "wsprobe.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    try:
        load_config(path, registries=REGISTRIES)
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return []


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    return as_json(KITCHEN_SINK)


def test_kitchen_sink_passes_loader_and_schema(
    tmp_path: Path, sink: Any, validator: jsonschema.Draft202012Validator
) -> None:
    """The test config using every model loads and validates."""
    assert _load(tmp_path, sink) == []
    assert schema_errors(validator, sink) == []


def _numeric_properties(schema: dict[str, Any]) -> set[tuple[str, str]]:
    """(model, key) of every property the schema types as a number (map values too)."""

    def numeric(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("type") in ("number", "integer"):
            return True
        return any(numeric(b) for b in node.get("anyOf", [])) or numeric(
            node.get("additionalProperties")
        )

    return {
        (name, key)
        for name, model in schema["$defs"].items()
        for key, prop in model.get("properties", {}).items()
        if numeric(prop)
    }


def _model_of(schema: dict[str, Any], path: tuple[Any, ...]) -> tuple[str, str]:
    """The (model, key) a document path ends in, following $ref, anyOf, items."""
    defs = schema["$defs"]
    node: Any = schema
    model = "Config"
    for part in path[:-1]:
        node = node["items"] if isinstance(part, int) else node["properties"][part]
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                model = node["$ref"].rsplit("/", 1)[1]
                node = defs[model]
            else:
                node = next(b for b in node["anyOf"] if "$ref" in b or "items" in b)
    return model, path[-1]


def test_numeric_paths_cover_every_numeric_key_of_the_schema() -> None:
    """Adding a numeric key to a model without a boolean test here fails this test."""
    schema = config_schema(kinds=PROBES, receiver_types=NOTIFIERS)
    covered = {_model_of(schema, p) for p in NUMERIC_PATHS}
    # A mapping's values (limits) are covered by one of its keys.
    covered |= {(m, k) for p in NUMERIC_PATHS for m, k in [_model_of(schema, p[:-1])]}
    missing = _numeric_properties(schema) - covered
    missing -= {("CheckDefaults", k) for _, k in covered}  # same keys as CheckConfig
    missing -= {("Matcher", k) for m, k in covered if m == "Expect"}  # Expect extends it
    assert missing == set()


@pytest.mark.parametrize("path", NUMERIC_PATHS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_never_a_number(
    tmp_path: Path,
    sink: Any,
    validator: jsonschema.Draft202012Validator,
    path: tuple[Any, ...],
    value: bool,
) -> None:
    """true/false where a number or duration goes: the loader names the key, the schema too."""
    _set(sink, path, value)
    errors = _load(tmp_path, sink)
    rendered = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    mine = [e for e in errors if f": {rendered}: " in e]
    assert mine, errors
    assert any(f"not the boolean {str(value).lower()}" in e for e in mine), mine
    assert all(re.match(r"wsprobe\.yaml:\d+: ", e) for e in mine)
    assert schema_errors(validator, sink) != []


#: A mistake written into an example file: (file, key path, value). None deletes the key.
MISTAKES: list[tuple[str, str, tuple[Any, ...], Any]] = [
    ("unknown-check-key", "checks/echo.yaml", ("checks", 0, "intervall"), "10s"),
    ("unknown-top-key", "config.example.yaml", ("agnet",), {}),
    ("bool-timeout", "checks/flaky.yaml", ("checks", 0, "timeout"), True),
    ("bad-duration", "checks/flaky.yaml", ("checks", 0, "interval"), "5 minutes"),
    ("units-out-of-order", "checks/flaky.yaml", ("checks", 0, "interval"), "30s1m"),
    ("negative-pings", "checks/auth.yaml", ("checks", 0, "pings"), -1),
    ("too-many-pings", "checks/auth.yaml", ("checks", 0, "pings"), 101),
    ("missing-name", "checks/auth.yaml", ("checks", 0, "name"), None),
    ("missing-url", "checks/auth.yaml", ("checks", 0, "url"), None),
    ("name-with-space", "checks/auth.yaml", ("checks", 0, "name"), "demo auth"),
    ("http-url", "checks/auth.yaml", ("checks", 0, "url"), "http://127.0.0.1:8765/auth"),
    ("unknown-kind", "checks/echo.yaml", ("checks", 0, "kind"), "nosuch"),
    ("bad-label-name", "checks/echo.yaml", ("checks", 0, "labels", "1team"), "x"),
    ("reserved-label", "checks/echo.yaml", ("checks", 0, "labels", "location"), "x"),
    ("unknown-limit", "checks/echo.yaml", ("checks", 0, "limits", "handshak"), "1s"),
    ("bad-header-name", "checks/echo.yaml", ("checks", 0, "headers"), {"Bad Name": "x"}),
    ("header-line-break", "checks/echo.yaml", ("checks", 0, "headers"), {"X": "a\r\nB: c"}),
    ("two-actions", "checks/echo.yaml", ("checks", 0, "steps", 0, "sleep"), "1s"),
    ("no-action", "checks/echo.yaml", ("checks", 0, "steps", 0), {"name": "nothing"}),
    ("gt-without-path", "checks/echo.yaml", ("checks", 0, "steps", 1, "expect", "gt"), 1),
    ("bad-status", "checks/negative-auth.yaml", ("checks", 0, "expect", "status"), 600),
    ("tls-1.1", "checks/echo.yaml", ("checks", 0, "tls"), {"min_version": "1.1"}),
    ("ip-version-5", "checks/echo.yaml", ("checks", 0, "ip_version"), 5),
    (
        "ftp-token-url",
        "checks/echo.yaml",
        ("checks", 0, "auth"),
        {"oauth2": {"token_url": "ftp://idp/t", "client_id": "a", "client_secret": "b"}},
    ),
    ("bad-listen", "config.example.yaml", ("agent", "listen"), "not a host:port:99"),
    ("bad-location", "config.example.yaml", ("agent", "location"), "two words"),
    ("zero-concurrency", "config.example.yaml", ("agent", "max_concurrency"), 0),
    ("name-in-defaults", "config.example.yaml", ("defaults", "name"), "x"),
    ("unknown-default", "config.example.yaml", ("defaults", "intervall"), "1s"),
    (
        "unknown-receiver-type",
        "config.example.yaml",
        ("receivers",),
        [{"name": "r", "type": "nosuch"}],
    ),
    (
        "ftp-receiver-url",
        "config.example.yaml",
        ("receivers",),
        [{"name": "r", "type": "webhook", "url": "ftp://hooks.example/x"}],
    ),
    (
        "secret-file-with-extra-key",
        "checks/auth.yaml",
        ("checks", 0, "auth", "bearer"),
        {"file": "x", "mode": "r"},
    ),
    ("watch-zero-delay", "checks/feed-watch.yaml", ("checks", 0, "watch", "max_delay"), 0),
    ("relay-receivers-0", "checks/chat.yaml", ("checks", 0, "relay", "receivers"), 0),
]


@pytest.mark.parametrize(
    ("file", "path", "value"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_schema_refuses_what_check_config_refuses(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    validator: jsonschema.Draft202012Validator,
    file: str,
    path: tuple[Any, ...],
    value: Any,
) -> None:
    """The same mistake in a copy of the examples: the loader and the schema both refuse it."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "config.example.yaml", tmp_path)
    shutil.copytree(ROOT / "checks", tmp_path / "checks")
    doc = as_json((tmp_path / file).read_text(encoding="utf-8"))
    original = copy.deepcopy(doc)
    if value is None:
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
    else:
        _set(doc, path, value)
    assert doc != original
    (tmp_path / file).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "config.example.yaml", registries=REGISTRIES)
    assert schema_errors(validator, doc) != []


def test_env_references_are_accepted_where_typed_values_go(
    validator: jsonschema.Draft202012Validator,
) -> None:
    """${VAR} may stand for a number, a duration, an enum or a patterned string."""
    doc = as_json(
        textwrap.dedent(
            """\
            agent: {listen: "${LISTEN}", max_concurrency: "${CONC:-8}"}
            checks:
              - {name: a, url: "${URL}", pings: "${PINGS}", kind: "${KIND}", timeout: "${T}"}
            """
        )
    )
    assert schema_errors(validator, doc) == []
