"""Application protocols spoken over the probe's WebSocket: the ``PROTOCOLS`` registry.

``PROTOCOLS`` maps a ``protocol.name`` to one :class:`Protocol`; its keys are the only
list of valid names (config validation reads them). Each protocol lives in one module
with a :class:`~agent.probes.protocols.base.Session` subclass; :func:`run_session`
(in :mod:`agent.probes.protocols.session`) is the one pipeline that drives them.
"""

from __future__ import annotations

from agent.probes.protocols import graphql, mqtt, socketio, stomp
from agent.probes.protocols.spec import Protocol, prepare

__all__ = ["PROTOCOLS", "Protocol", "prepare"]

#: protocol name -> how to speak it. Each protocol's module registers one entry here.
PROTOCOLS: dict[str, Protocol] = {
    "socketio": socketio.PROTOCOL,
    "graphql-transport-ws": graphql.TRANSPORT_WS,
    "subscriptions-transport-ws": graphql.SUBSCRIPTIONS_TRANSPORT_WS,
    "mqtt": mqtt.PROTOCOL,
    "stomp": stomp.PROTOCOL,
}
