"""The demo GraphQL API: strawberry-graphql served on aiohttp, both WebSocket subprotocols.

strawberry speaks ``graphql-transport-ws`` and the legacy ``graphql-ws``
(subscriptions-transport-ws) on the same path, picks the one the client offers, and
runs on aiohttp, which wsprobe already depends on: no ASGI server is needed. It is an
optional dependency (``pip install 'wsprobe[demo]'``); without it :func:`graphql_view`
is not importable and the demo goes on without its GraphQL target.

Schema (docs/demo.md)::

    type Query { health: String! }
    type Tick { seq: Int!  price: Float! }
    type Subscription { ticks(count: Int! = 3): Tick! }

The ``connection_init`` payload must be ``{"token": "demo-token"}``; otherwise
graphql-transport-ws closes with 4403 and the legacy protocol answers
``connection_error``.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import AsyncGenerator

import strawberry
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from agent.demo.handlers import DEMO_TOKEN

__all__ = ["MAX_TICKS", "TICK_INTERVAL", "DemoGraphQLView", "graphql_view"]

#: Seconds between two ``ticks`` of one subscription.
TICK_INTERVAL = 0.1
#: Upper bound of ``ticks(count:)``, so a client cannot hold a subscription forever.
MAX_TICKS = 100


@strawberry.type
class Tick:
    """One price tick of the demo subscription."""

    seq: int
    price: float


@strawberry.type
class Query:
    """Queries of the demo API."""

    @strawberry.field
    def health(self) -> str:
        """Always ``ok`` while the demo runs."""
        return "ok"


@strawberry.type
class Subscription:
    """Subscriptions of the demo API."""

    @strawberry.subscription
    async def ticks(self, count: int = 3) -> AsyncGenerator[Tick, None]:
        """``count`` ticks (at most MAX_TICKS), one every TICK_INTERVAL, then complete."""
        for seq in range(1, min(max(count, 0), MAX_TICKS) + 1):
            await asyncio.sleep(TICK_INTERVAL)
            # The same deterministic wiggle as /feed's ticker.
            yield Tick(seq=seq, price=round(100.0 + 5.0 * math.sin(seq / 20.0), 2))


class DemoGraphQLView(GraphQLView[None, None]):
    """strawberry's aiohttp view, admitting only the demo token in ``connection_init``."""

    async def on_ws_connect(self, context: None) -> UnsetType | dict[str, object] | None:
        """Refuse a ``connection_init`` whose payload lacks the demo token."""
        params = getattr(context, "connection_params", None)
        if isinstance(context, dict):
            params = context.get("connection_params")
        token = params.get("token") if isinstance(params, dict) else None
        if not isinstance(token, str) or not hmac.compare_digest(token, DEMO_TOKEN):
            raise ConnectionRejectionError({"message": "invalid token"})
        return await super().on_ws_connect(context)


def graphql_view() -> DemoGraphQLView:
    """The demo API as an aiohttp request handler (HTTP and both WebSocket subprotocols)."""
    schema = strawberry.Schema(query=Query, subscription=Subscription)
    # The demo's clients are probes, not browsers: no GraphiQL page.
    return DemoGraphQLView(schema=schema, graphql_ide=None, keep_alive=False)
