"""The protocol: key as config validation sees it: registry names, steps, placement."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.loader import ConfigError, load_config
from agent.config.protocols import ProtocolConfig
from agent.config.relay import RelayConfig
from agent.probes.protocols import PROTOCOLS
from agent.probes.protocols.base import Session
from agent.probes.protocols.spec import Protocol
from agent.runtime.registries import REGISTRIES

#: The start of a one-line check entry.
A = "  - {name: a, url: 'ws://h', "


def _errors(tmp_path: Path, check: str) -> list[str]:
    path = tmp_path / "wsprobe.yaml"
    path.write_text("checks:\n" + check, encoding="utf-8")
    try:
        load_config(path, registries=REGISTRIES)
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return []


@pytest.mark.parametrize(
    ("check", "says"),
    [
        (
            A + "protocol: amqp}\n",
            "checks[0].protocol: unknown protocol 'amqp' (known: graphql-transport-ws,",
        ),
        (
            A + "protocol: {name: mqtt, steps: [{emit: {event: e}}]}}\n",
            "mqtt has no 'emit' step",
        ),
        (
            A + "protocol: {name: mqtt, steps: [{publish: {payload: x}}]}}\n",
            "an MQTT publish needs topic",
        ),
        (
            A + "protocol: {name: stomp, steps: [{subscribe: {topic: t}}]}}\n",
            "a STOMP subscribe needs destination",
        ),
        (
            A + "protocol: {name: graphql-transport-ws, steps: [{subscribe: {id: x}}]}}\n",
            "a GraphQL operation needs query",
        ),
        (
            A + "protocol: {name: socketio, steps: [{expect: {json: 1}}]}}\n",
            "name the Socket.IO event",
        ),
        (
            A + "protocol: socketio, steps: [{send: hi}]}\n",
            "write the steps under protocol.steps",
        ),
        (
            "  - {name: a, kind: watch, url: 'ws://h', protocol: mqtt}\n",
            "checks[0].protocol.steps: a watch over mqtt needs a subscribe step",
        ),
        (
            "  - {name: a, kind: watch, url: 'ws://h', protocol: socketio,"
            " watch: {answer: {match: {json: {t: p}}, reply: {t: q}}}}\n",
            "checks[0].watch.answer: socketio answers its own keepalives",
        ),
        (
            A + "protocol: {name: stomp, listen: [tick]}}\n",
            "checks[0].protocol.listen: stomp has no listen",
        ),
        (
            A + "protocol: {name: mqtt, steps: [{publish: {topic: t}, sleep: 1s}]}}\n",
            "exactly one of emit, subscribe",
        ),
    ],
    ids=[
        "unknown-name",
        "foreign-step",
        "publish-without-topic",
        "stomp-subscribe-without-destination",
        "graphql-without-document",
        "socketio-expect-without-event",
        "raw-steps-with-protocol",
        "watch-without-subscribe",
        "watch-answer-with-protocol",
        "listen-outside-socketio",
        "two-actions",
    ],
)
def test_mistakes_are_reported_at_the_check(tmp_path: Path, check: str, says: str) -> None:
    """Each protocol mistake is one error naming the file, line and the cause."""
    errors = _errors(tmp_path, check)
    assert any(says in e for e in errors), errors
    assert all("wsprobe.yaml:2: checks[0]" in e for e in errors), errors


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (
            "  - name: a\n    url: ws://h\n    protocol:\n      name: stomp\n      steps:\n"
            "        - subscribe: {destination: /topic/a}\n"
            "        - send: {payload: x}\n",
            "8: checks[0].protocol.steps[1].send: a STOMP send needs destination: NAME",
        ),
        (
            "  - name: r\n    kind: relay\n    url: ws://h\n    protocol: mqtt\n    relay:\n"
            "      subscribe: {topic: 't/{{run}}'}\n"
            "      publish:\n"
            "        topic: t/+\n"
            "        payload: '{{marker}}'\n",
            "9: checks[0].relay.publish.topic: a PUBLISH topic has no + or # wildcards",
        ),
    ],
    ids=["probe-step", "relay-publish"],
)
def test_protocol_mistakes_point_at_their_line(tmp_path: Path, check: str, error: str) -> None:
    """A protocol's own objection names the line and key path it is about."""
    assert _errors(tmp_path, check) == [f"{tmp_path / 'wsprobe.yaml'}:{error}"]


def test_every_registered_protocol_loads_in_short_form(tmp_path: Path) -> None:
    """protocol: NAME is valid for every key of PROTOCOLS (and only those)."""
    checks = "".join(
        f"  - {{name: c{i}, url: 'ws://h', protocol: {name}}}\n" for i, name in enumerate(PROTOCOLS)
    )
    path = tmp_path / "wsprobe.yaml"
    path.write_text("checks:\n" + checks, encoding="utf-8")
    loaded = load_config(path, registries=REGISTRIES)
    assert [c.protocol.name for c in loaded.checks if c.protocol] == list(PROTOCOLS)


#: The start of a one-line relay check entry.
R = "  - {name: r, kind: relay, url: 'ws://h', "
MQTT_SUB = "subscribe: {topic: 't/{{run}}'}"


@pytest.mark.parametrize(
    ("check", "key", "says"),
    [
        (
            R + "protocol: mqtt, relay: {publish: {topic: t, payload: '{{marker}}'}}}\n",
            "relay.subscribe",
            "an MQTT relay needs subscribe: {topic: FILTER, qos: N}",
        ),
        (
            R + "protocol: mqtt, relay: {" + MQTT_SUB + "}}\n",
            "relay.publish",
            "an MQTT relay publishes with publish: {topic: NAME",
        ),
        (
            R + "protocol: mqtt, relay: {" + MQTT_SUB + ", publish: {topic: 't/#',"
            " payload: '{{marker}}'}}}\n",
            "relay.publish.topic",
            "no + or # wildcards",
        ),
        (
            R + "protocol: mqtt, relay: {" + MQTT_SUB + ", publish: {topic: t, qos: 3,"
            " payload: '{{marker}}'}}}\n",
            "relay.publish.qos",
            "less than or equal to 2",
        ),
        (
            R + "protocol: socketio, relay: {" + MQTT_SUB + ", emit: {event: e,"
            " args: ['{{marker}}']}}}\n",
            "relay.subscribe",
            "a socketio relay has no 'subscribe' (it uses: emit, event)",
        ),
        (
            R + "protocol: socketio, relay: {emit: {event: e, args: [hi]}}}\n",
            "relay.emit.args",
            "emit.args must contain {{marker}}",
        ),
        (
            R + "protocol: socketio, relay: {publish: '{{marker}}', emit: {event: e,"
            " args: ['{{marker}}']}}}\n",
            "relay.publish",
            "a socketio relay has no 'publish'",
        ),
        (
            R + "protocol: graphql-transport-ws, relay: {subscribe: {query: 'subscription"
            " { s }'}}}\n",
            "relay.mutation",
            "a GraphQL relay needs mutation: {query: MUTATION}",
        ),
        (
            R + "protocol: graphql-transport-ws, relay: {subscribe: {query: 'subscription"
            " { s }'}, mutation: {query: 'mutation { m }'}}}\n",
            "relay.mutation.variables",
            "mutation.variables must contain {{marker}}",
        ),
        (
            R + "protocol: stomp, relay: {subscribe: {destination: /topic/t}, send:"
            " {payload: '{{marker}}'}}}\n",
            "relay.send",
            "a STOMP relay needs send: {destination: NAME",
        ),
        (
            R + "protocol: stomp, relay: {join: [{send: hi}], subscribe: {destination: /t},"
            " send: {destination: /t, payload: '{{marker}}'}}}\n",
            "relay.join",
            "relay.join sends raw frames",
        ),
        (
            R + "relay: {" + MQTT_SUB + "}}\n",
            "relay.subscribe",
            "relay.subscribe is read only with protocol:",
        ),
    ],
    ids=[
        "mqtt-without-subscribe",
        "mqtt-without-publish-mapping",
        "mqtt-publish-wildcard",
        "mqtt-publish-qos",
        "socketio-foreign-key",
        "socketio-emit-without-marker",
        "socketio-publish-unused",
        "graphql-without-mutation",
        "graphql-mutation-without-marker",
        "stomp-send-without-destination",
        "raw-join-with-protocol",
        "protocol-key-without-protocol",
    ],
)
def test_relay_mistakes_are_reported_at_their_key(
    tmp_path: Path, check: str, key: str, says: str
) -> None:
    """Each relay-over-protocol mistake is one error at FILE:LINE and its key path."""
    errors = _errors(tmp_path, check)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 'wsprobe.yaml'}:2: checks[0].{key}: "), errors
    assert says in errors[0], errors


def test_relay_in_each_protocol_loads(tmp_path: Path) -> None:
    """A complete relay block for every registered protocol is valid."""
    relays = {
        "socketio": "{emit: {event: say, args: ['{{marker}}']}, event: said}",
        "graphql-transport-ws": "{subscribe: {query: 'subscription { s }'},"
        " mutation: {query: 'mutation ($t: String!) { m(t: $t) }',"
        " variables: {t: '{{marker}}'}}}",
        "mqtt": "{subscribe: {topic: 't/#', qos: 1},"
        " publish: {topic: t/a, payload: '{{marker}}', qos: 1}}",
        "stomp": "{subscribe: {destination: /topic/t},"
        " send: {destination: /topic/t, payload: '{{marker}}'}}",
    }
    relays["subscriptions-transport-ws"] = relays["graphql-transport-ws"]
    assert sorted(relays) == sorted(PROTOCOLS)
    checks = "".join(
        f"  - {{name: r{i}, kind: relay, url: 'ws://h', protocol: {name}, relay: {relays[name]}}}\n"
        for i, name in enumerate(PROTOCOLS)
    )
    path = tmp_path / "wsprobe.yaml"
    path.write_text("checks:\n" + checks, encoding="utf-8")
    loaded = load_config(path, registries=REGISTRIES)
    assert [c.protocol.name for c in loaded.checks if c.protocol] == list(PROTOCOLS)


@pytest.mark.parametrize(
    ("relay", "where"),
    [
        ("emit: {event: e, args: ['{{marker}}', '{{nope}}']}", "relay.emit"),
        ("emit: {event: e, args: ['{{marker}}']}", "protocol.steps"),
    ],
    ids=["relay-key", "protocol-steps"],
)
def test_relay_undefined_variable_is_reported(tmp_path: Path, relay: str, where: str) -> None:
    """A {{variable}} a relay's connections cannot know is a config error, not a run error."""
    steps = "[{emit: {event: join, args: ['{{nope}}']}}]" if where == "protocol.steps" else "[]"
    check = R + f"protocol: {{name: socketio, steps: {steps}}}, relay: {{{relay}}}}}\n"
    errors = _errors(tmp_path, check)
    assert len(errors) == 1, errors
    assert f"{where} uses {{{{nope}}}}, which no earlier step defines" in errors[0], errors


def test_protocol_without_a_relay_plan_refuses_relay_checks() -> None:
    """A registry entry that cannot carry a relay says so instead of failing at run time."""
    problems = Protocol(session=Session).validate_relay(ProtocolConfig(name="x"), RelayConfig())
    assert problems == [((), "x cannot carry a relay check")]
