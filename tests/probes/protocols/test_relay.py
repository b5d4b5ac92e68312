"""The relay kind speaking a protocol, through real servers and brokers on loopback."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.config import CheckConfig
from agent.probes.relay import run
from agent.result import ProbeResult, Reason
from tests.probes.protocols.conftest import Broker

# The first RabbitMQ test also waits for the broker to boot (~10 s idle, longer under load).
pytestmark = pytest.mark.timeout(150)

RECEIVERS = ["receiver1", "receiver2"]


async def relay(
    url: str, protocol: dict[str, Any] | str, *, timeout: float = 5, **relay: Any
) -> ProbeResult:
    """Run a ``relay`` check speaking ``protocol`` against ``url`` (two receivers)."""
    relay.setdefault("receivers", 2)
    check = CheckConfig.model_validate(
        {
            "name": "relay",
            "kind": "relay",
            "url": url,
            "timeout": timeout,
            "protocol": protocol,
            "relay": relay,
        }
    )
    return await run(check)


def named_connection(result: ProbeResult) -> bool:
    """The message names the connection that failed first (all share the credentials)."""
    return re.search(r": (publisher|receiver[12]): ", result.message) is not None


def delivered(result: ProbeResult) -> None:
    assert result.success, result.message
    assert sorted(result.relay) == RECEIVERS
    assert all(latency > 0 for latency in result.relay.values())
    assert result.phases["protocol"] > 0


# --- Socket.IO ---------------------------------------------------------------------

ROOM_JOIN = [{"emit": {"event": "join", "args": ["probe-{{run}}"], "ack": True}}]
SAY = {"event": "say", "args": ["probe-{{run}}", "{{marker}}"]}


async def test_socketio_room_emit_reaches_every_member(socketio_port: int) -> None:
    """Every connection joins the room (acked); the publisher's emit reaches each receiver."""
    protocol = {"name": "socketio", "steps": ROOM_JOIN}
    result = await relay(f"ws://127.0.0.1:{socketio_port}", protocol, emit=SAY, event="said")
    delivered(result)
    assert [s.name for s in result.steps] == ["emit"]  # the publisher's join


async def test_socketio_receiver_outside_the_room_gets_nothing(socketio_port: int) -> None:
    """Without joining, the room emit reaches nobody: expect_timeout naming both receivers."""
    result = await relay(
        f"ws://127.0.0.1:{socketio_port}", "socketio", emit=SAY, event="said", deadline=0.3
    )
    assert result.reason is Reason.EXPECT_TIMEOUT, result.message
    assert "receiver1, receiver2 did not receive the published marker" in result.message
    assert "0 of 2 receivers got it" in result.message
    assert result.relay == {}


async def test_socketio_refused_receiver_is_named(socketio_port: int) -> None:
    """A CONNECT_ERROR for one receiver fails the run as auth_rejected naming it."""
    protocol = {
        "name": "socketio",
        "namespace": "/members",
        "payload": {"user": "{{connection}}"},
        "steps": ROOM_JOIN,
    }
    result = await relay(f"ws://127.0.0.1:{socketio_port}", protocol, emit=SAY, event="said")
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert "receiver2" in result.message
    assert "not a member" in result.message


# --- GraphQL -----------------------------------------------------------------------

GRAPHQL = [
    pytest.param("graphql-transport-ws", "/graphql", id="graphql-transport-ws"),
    pytest.param("subscriptions-transport-ws", "/legacy", id="subscriptions-transport-ws"),
]
SAID = {"query": "subscription { said }"}
MUTATION = {"query": "mutation ($t: String!) { say(text: $t) }", "variables": {"t": "{{marker}}"}}


async def graphql_relay(
    url: str, protocol: dict[str, Any] | str = "graphql-transport-ws", **fields: Any
) -> ProbeResult:
    """A GraphQL relay at ``url``: the ``say`` mutation to ``said`` subscriptions by default."""
    fields.setdefault("subscribe", SAID)
    fields.setdefault("mutation", MUTATION)
    return await relay(url, protocol, **fields)


@pytest.mark.parametrize(("name", "path"), GRAPHQL)
async def test_graphql_mutation_reaches_every_subscription(
    graphql_port: int, name: str, path: str
) -> None:
    """Receivers subscribe (settled by a ping); the publisher's mutation reaches each."""
    url = f"ws://127.0.0.1:{graphql_port}{path}"
    delivered(await graphql_relay(url, {"name": name, "payload": {"token": "s3cret"}}))


@pytest.mark.parametrize(("name", "path"), GRAPHQL)
async def test_graphql_refused_token_is_auth_rejected(
    graphql_port: int, name: str, path: str
) -> None:
    """A refused connection_init is auth_rejected, naming the connection refused first."""
    url = f"ws://127.0.0.1:{graphql_port}{path}"
    result = await graphql_relay(url, {"name": name, "payload": {"token": "wrong-secret"}})
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert named_connection(result)
    assert "wrong-secret" not in result.message


async def test_graphql_operation_that_feeds_no_subscription_is_expect_timeout(
    graphql_port: int,
) -> None:
    """The publisher's operation succeeds but feeds nothing the receivers subscribed to."""
    result = await graphql_relay(
        f"ws://127.0.0.1:{graphql_port}/graphql",
        mutation={
            "query": "query ($t: String) { hello(name: $t) }",
            "variables": {"t": "{{marker}}"},
        },
        deadline=0.3,
    )
    assert result.reason is Reason.EXPECT_TIMEOUT, result.message
    assert "0 of 2 receivers got it" in result.message


async def test_graphql_subscription_completed_before_data_is_expect_mismatch(
    graphql_port: int,
) -> None:
    """A subscription the server completes at once fails as expect_mismatch, not a timeout."""
    result = await graphql_relay(
        f"ws://127.0.0.1:{graphql_port}/graphql",
        subscribe={"query": "subscription { greetings(count: 0) }"},
        deadline=0.3,
    )
    assert result.reason is Reason.EXPECT_MISMATCH, result.message
    assert "completed operation 'relay' before data" in result.message


async def test_graphql_mutation_error_fails_the_publish(graphql_port: int) -> None:
    """A GraphQL error answering the mutation fails as expect_mismatch with its message."""
    mutation = {
        "query": "mutation ($t: String!) { nope(text: $t) }",
        "variables": MUTATION["variables"],
    }
    result = await graphql_relay(f"ws://127.0.0.1:{graphql_port}/graphql", mutation=mutation)
    assert result.reason is Reason.EXPECT_MISMATCH, result.message
    assert "publisher (publishing)" in result.message
    assert "Cannot query field" in result.message


async def test_malformed_frame_on_a_receiver_is_protocol_error() -> None:
    """A receiver's server answering the subscription with junk fails as protocol_error."""
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        receiver = connections > 1
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "connection_init":
                await ws.send(json.dumps({"type": "connection_ack"}))
            elif message["type"] == "subscribe" and receiver:
                await ws.send("{not json")
            elif message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))

    async with serve(handler, "127.0.0.1", 0, subprotocols=["graphql-transport-ws"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        result = await graphql_relay(f"ws://127.0.0.1:{port}", receivers=1)
    assert result.reason is Reason.PROTOCOL_ERROR, result.message
    assert "receiver1" in result.message
    assert "not JSON" in result.message


async def test_graphql_publish_waits_until_subscriptions_are_registered() -> None:
    """A server that registers subscriptions slowly still gets them before the mutation;
    all connections are closed afterwards.

    It handles each connection's messages in order and takes 200 ms to register a
    subscription (as with a subscribe to Redis): only the settling ping, answered after
    that, keeps the mutation from overtaking the subscriptions.
    """
    registered: list[tuple[ServerConnection, str]] = []
    closed: list[ServerConnection] = []
    all_closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            await serve_one(ws)
        finally:
            closed.append(ws)
            if len(closed) == 3:
                all_closed.set()

    async def serve_one(ws: ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            kind, op = message["type"], message.get("id")
            if kind == "connection_init":
                await ws.send(json.dumps({"type": "connection_ack"}))
            elif kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "subscribe" and "subscription" in message["payload"]["query"]:
                await asyncio.sleep(0.2)
                registered.append((ws, op))
            elif kind == "subscribe":
                text = message["payload"]["variables"]["t"]
                for target, sub in registered:
                    await target.send(
                        json.dumps({"type": "next", "id": sub, "payload": {"data": {"said": text}}})
                    )
                await ws.send(json.dumps({"type": "next", "id": op, "payload": {"data": {}}}))

    async with serve(handler, "127.0.0.1", 0, subprotocols=["graphql-transport-ws"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        result = await graphql_relay(f"ws://127.0.0.1:{port}")
        delivered(result)
        await asyncio.wait_for(all_closed.wait(), timeout=5)  # every connection closed


# --- MQTT --------------------------------------------------------------------------

TOPIC = "wsprobe/relay/{{run}}"


def mqtt(qos: int, *, topic: str = TOPIC) -> dict[str, Any]:
    return {
        "subscribe": {"topic": topic, "qos": qos},
        "publish": {"topic": TOPIC, "payload": {"marker": "{{marker}}"}, "qos": qos},
    }


@pytest.mark.parametrize("version", ["3.1.1", "5"], ids=["mqtt-3.1.1", "mqtt-5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_mqtt_publish_reaches_every_subscriber(
    mosquitto: Broker, version: str, qos: int
) -> None:
    """Receivers SUBSCRIBE (SUBACK) at each QoS; one PUBLISH reaches each through Mosquitto."""
    protocol = {
        "name": "mqtt",
        "version": version,
        "client_id": "wsprobe-relay",
        "username": mosquitto.username,
        "password": mosquitto.password,
    }
    result = await relay(mosquitto.auth_url, protocol, **mqtt(qos))
    delivered(result)


async def test_mqtt_through_rabbitmq_web_mqtt(rabbitmq: Broker) -> None:
    """The same relay through RabbitMQ's rabbitmq_web_mqtt (MQTT 3.1.1)."""
    protocol = {"name": "mqtt", "username": rabbitmq.username, "password": rabbitmq.password}
    result = await relay(rabbitmq.mqtt_url, protocol, **mqtt(1))
    delivered(result)


async def test_mqtt_wrong_password_is_auth_rejected(mosquitto: Broker) -> None:
    """A CONNACK refusing the credentials is auth_rejected, without the secret."""
    protocol = {"name": "mqtt", "username": mosquitto.username, "password": "wrong-secret"}
    result = await relay(mosquitto.auth_url, protocol, **mqtt(1))
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert named_connection(result)
    assert "0x05 not authorized" in result.message
    assert "wrong-secret" not in result.message


async def test_mqtt_topic_nobody_publishes_to_is_expect_timeout(mosquitto: Broker) -> None:
    """Subscribed to another topic than the publisher's: the raw relay's expect_timeout."""
    result = await relay(
        mosquitto.open_url, "mqtt", deadline=0.3, **mqtt(1, topic="wsprobe/elsewhere/{{run}}")
    )
    assert result.reason is Reason.EXPECT_TIMEOUT, result.message
    assert "no matching message within 0.3s" in result.message
    assert "did not receive the published marker; 0 of 2 receivers got it" in result.message


async def test_mqtt_acl_that_denies_reading_is_expect_timeout(mosquitto: Broker) -> None:
    """Subscription granted, publish accepted, delivery denied by the ACL: expect_timeout."""
    protocol = {"name": "mqtt", "username": mosquitto.username, "password": mosquitto.password}
    inbox = "wsprobe/inbox/{{run}}"
    fields = {
        "subscribe": {"topic": inbox, "qos": 1},
        "publish": {"topic": inbox, "payload": "{{marker}}", "qos": 1},
    }
    result = await relay(mosquitto.auth_url, protocol, deadline=0.3, **fields)
    assert result.reason is Reason.EXPECT_TIMEOUT, result.message
    assert "0 of 2 receivers got it" in result.message


# --- STOMP -------------------------------------------------------------------------

DESTINATION = "/topic/wsprobe.relay.{{run}}"


def stomp(broker: Broker, **fields: Any) -> dict[str, Any]:
    return {"name": "stomp", "username": broker.username, "password": broker.password, **fields}


SEND = {"destination": DESTINATION, "payload": "{{marker}}", "headers": {"x-probe": "relay"}}


async def test_stomp_send_reaches_every_subscriber(rabbitmq: Broker) -> None:
    """Receivers SUBSCRIBE (receipt) to a topic; one SEND reaches each through RabbitMQ."""
    result = await relay(
        rabbitmq.open_url,
        stomp(rabbitmq),
        subscribe={"destination": DESTINATION},
        send=SEND,
        match={"regex": "^wsprobe-"},
    )
    delivered(result)


async def test_stomp_wrong_passcode_is_auth_rejected(rabbitmq: Broker) -> None:
    """An ERROR refusing the login is auth_rejected, without the secret."""
    result = await relay(
        rabbitmq.open_url,
        stomp(rabbitmq, password="wrong-secret"),
        subscribe={"destination": DESTINATION},
        send=SEND,
    )
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert named_connection(result)
    assert "wrong-secret" not in result.message


async def test_stomp_subscription_the_broker_drops_names_the_receiver(rabbitmq: Broker) -> None:
    """RabbitMQ ending the session over a missing queue fails the run as closed, naming it."""
    result = await relay(
        rabbitmq.open_url,
        stomp(rabbitmq),
        receivers=1,
        subscribe={"destination": "/amq/queue/wsprobe-missing-{{run}}"},
        send=SEND,
    )
    assert result.reason is Reason.CLOSED, result.message
    assert "receiver1" in result.message
    assert "step 1 'subscribe'" in result.message


async def test_stomp_other_destination_is_expect_timeout(rabbitmq: Broker) -> None:
    """Receivers on a destination the SEND does not go to: expect_timeout."""
    result = await relay(
        rabbitmq.open_url,
        stomp(rabbitmq),
        subscribe={"destination": "/topic/wsprobe.elsewhere.{{run}}"},
        send=SEND,
        deadline=0.3,
    )
    assert result.reason is Reason.EXPECT_TIMEOUT, result.message
    assert "0 of 2 receivers got it" in result.message
