"""A python-socketio server on aiohttp, on 127.0.0.1 and a free port (printed first).

Namespace ``/`` accepts anyone; ``/private`` wants ``{"token": "s3cret"}`` as auth.
``echo`` answers with an ``echoed`` event and an ack carrying the same arguments;
``bye`` makes the server disconnect the client from the namespace. ``follow`` starts a
feed to the client: a ``tick`` event ``{"n": N}`` and a ``noise`` event every 20 ms, until
it leaves; with ``{"drop_after": K}`` the server disconnects it after K ticks.
``freeze`` blocks the server's event loop for the given seconds: a hung server whose
connections stay open. For relays: ``join`` enters the room named by its argument
(acknowledged once in it) and ``say`` emits ``said`` with its text to everyone else in
a room; on ``/members`` only the users ``publisher`` and ``receiver1`` may connect (auth
``{"user": NAME}``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import socketio
from aiohttp import web

# Pings every 0.2 s, and a client that does not answer within 0.3 s is dropped: the
# keepalive test sleeps past that.
sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=0.2, ping_timeout=0.3)


@sio.on("connect", namespace="/private")
async def _private(sid: str, environ: Any, auth: Any) -> None:
    if not isinstance(auth, dict) or auth.get("token") != "s3cret":
        raise socketio.exceptions.ConnectionRefusedError("invalid token")


#: Who may connect to ``/members``.
MEMBERS = frozenset({"publisher", "receiver1"})


@sio.on("connect", namespace="/members")
async def _members(sid: str, environ: Any, auth: Any) -> None:
    if not isinstance(auth, dict) or auth.get("user") not in MEMBERS:
        raise socketio.exceptions.ConnectionRefusedError("not a member")


for ns in ("/", "/private", "/members"):

    @sio.on("echo", namespace=ns)
    async def _echo(sid: str, *args: Any, _ns: str = ns) -> list[Any]:
        await sio.emit("echoed", tuple(args), to=sid, namespace=_ns)
        return list(args)

    @sio.on("follow", namespace=ns)
    async def _follow(sid: str, *args: Any, _ns: str = ns) -> None:
        options = args[0] if args and isinstance(args[0], dict) else {}
        sio.start_background_task(_feed, sid, _ns, options.get("drop_after"))

    @sio.on("freeze", namespace=ns)
    async def _freeze(sid: str, seconds: float, _ns: str = ns) -> None:
        time.sleep(seconds)  # blocks the loop on purpose: no pings, no reads

    @sio.on("join", namespace=ns)
    async def _join(sid: str, room: str, _ns: str = ns) -> str:
        await sio.enter_room(sid, room, namespace=_ns)
        return room

    @sio.on("say", namespace=ns)
    async def _say(sid: str, room: str, text: str, _ns: str = ns) -> None:
        await sio.emit("said", text, room=room, skip_sid=sid, namespace=_ns)

    @sio.on("bye", namespace=ns)
    async def _bye(sid: str, *args: Any, _ns: str = ns) -> None:
        await sio.disconnect(sid, namespace=_ns)


async def _feed(sid: str, namespace: str, drop_after: int | None) -> None:
    n = 0
    while sio.manager.is_connected(sid, namespace):
        await sio.sleep(0.02)
        n += 1
        await sio.emit("tick", {"n": n}, to=sid, namespace=namespace)
        await sio.emit("noise", n, to=sid, namespace=namespace)
        if drop_after is not None and n >= drop_after:
            await sio.disconnect(sid, namespace=namespace)


async def main() -> None:
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
