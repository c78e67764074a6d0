"""A realtime session that ended is freed at once, by reference counting, not at the next full cycle collection.

The stack's collector runs its full collections rarely on purpose (localbase/gctune.py: one per 700,000 container
allocations, its start-up heap frozen), and a session that lived a few seconds has reached the oldest generation.
A session held in reference cycles (its outbox's overflow callback and its channels' shut-down callback are its own
bound methods; its reader task's) therefore outlived its socket until that collection, with its websocket protocol
and buffers: in the 10-minute soak (bench/soak.py: 50 clients whose connections a fault proxy keeps cutting) 695
ended sessions were waiting in the stack's heap 130 s after its restart, and its RSS grew 14-30 % after warm-up.

The socket's protocol had a cycle of its own: `CoalescingWebSocketProtocol` puts its `send_many`/`send_now` bound
methods in the ASGI scope it holds (localbase/realtime/coalesce.py), and 380 closed sockets' protocols were waiting
in the stack 2 minutes into a soak once the sessions were freed (uvicorn's own protocol is freed at once).

These tests run the real `Session.run` over a stand-in websocket (what `run` needs of Starlette's WebSocket), and the
real protocol over a recording transport, with the cycle collector off, and require that once a session ends or a
socket closes, nothing but the test's weak references is left of it, whichever way it ended.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect
from uvicorn.config import Config
from uvicorn.server import ServerState

from localbase.realtime.coalesce import SEND_MANY, CoalescingWebSocketProtocol
from localbase.realtime.hub import Channel, Hub
from localbase.realtime.session import Session
from tests.realtime.test_realtime_coalesce import RecordingTransport
from tests.realtime.test_realtime_send_many import HANDSHAKE

pytestmark = pytest.mark.timeout(30)

HEARTBEAT = '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}'


class _Socket:
    """Gives `run` one heartbeat, then waits for `end` and ends the way the test picked."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.end = asyncio.Event()
        self.sent: list[str | bytes] = []
        self.scope: dict[str, Any] = {"extensions": {}}
        self._heartbeat = True

    async def receive(self) -> dict[str, Any]:
        if self._heartbeat:
            self._heartbeat = False
            return {"type": "websocket.receive", "text": HEARTBEAT}
        await self.end.wait()
        if self.how == "raise":
            raise WebSocketDisconnect(1006)
        return {"type": "websocket.disconnect", "code": 1006}

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000) -> None:
        pass


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _ended_session(hub: Hub, how: str) -> tuple[weakref.ref[Session], list[weakref.ref[Any]], list[str | bytes]]:
    """A session with two joined channels (as `join` leaves them), run to its end; only weak references come back."""
    ws = _Socket(how)
    session = Session(ws, "1.0.0", keys=None, hub=hub, pool=None, apikey="")  # type: ignore[arg-type]
    running = asyncio.create_task(session.run())
    await asyncio.sleep(0.05)  # the heartbeat is answered
    channels = []
    for topic in ("realtime:one", "realtime:two"):
        claims = {"role": "authenticated", "sub": "u"}
        channel = Channel(session.outbox, topic, "1", claims, shut_down=session._shut_down)
        session.channels[topic] = channel
        session._schedule_expiry(channel)
        hub.add(channel)
        channels.append(channel)
    if how == "overflow":
        session._overflow("too many frames queued")
    else:
        ws.end.set()
    await asyncio.wait_for(running, 10)
    mine = weakref.ref(session)
    others: list[weakref.ref[Any]] = [weakref.ref(session.outbox), *(weakref.ref(c) for c in channels)]
    del session, channels, running
    return mine, others, ws.sent


@pytest.mark.parametrize("how", ["disconnect", "raise", "overflow"])
async def test_an_ended_session_is_freed_without_the_cycle_collector(no_cycle_collector: None, how: str) -> None:
    hub = Hub()
    session, others, sent = await _ended_session(hub, how)
    await asyncio.sleep(0)  # the tasks' last callbacks
    assert any("phx_reply" in str(frame) for frame in sent)  # it ran: the heartbeat was answered
    assert hub.topics == {} and len(hub.pg_channels) == 0
    leftover = [type(ref()).__name__ for ref in [session, *others] if ref() is not None]
    assert leftover == [], f"still alive without a cycle collection: {leftover}"


async def test_a_live_session_is_not_released(no_cycle_collector: None) -> None:
    """The release happens at the end only: while it runs, its channels are in the hub and it answers."""
    hub = Hub()
    ws = _Socket("disconnect")
    session = Session(ws, "1.0.0", keys=None, hub=hub, pool=None, apikey="")  # type: ignore[arg-type]
    running = asyncio.create_task(session.run())
    await asyncio.sleep(0.05)
    channel = Channel(session.outbox, "realtime:one", "1", {"role": "authenticated"}, shut_down=session._shut_down)
    session.channels["realtime:one"] = channel
    hub.add(channel)
    channel.system("system", "ok", "still here")
    await asyncio.sleep(0.05)
    assert any("still here" in str(frame) for frame in ws.sent)
    assert channel.shut_down is not None and hub.topics
    ws.end.set()
    await asyncio.wait_for(running, 10)
    assert channel.shut_down is None and not hub.topics


@pytest.mark.parametrize("closed_by", ["peer", "server"])
async def test_a_closed_sockets_protocol_is_freed_without_the_cycle_collector(
    no_cycle_collector: None, closed_by: str
) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        if closed_by == "server":
            await send({"type": "websocket.close", "code": 1000})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = Config(app=app, ws=CoalescingWebSocketProtocol, ws_per_message_deflate=False, lifespan="off")
    config.load()
    state = ServerState()
    protocol = CoalescingWebSocketProtocol(config, state, {}, _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.sleep(0.05)
    assert SEND_MANY in scopes[0]["extensions"]  # offered while the socket is open
    protocol.connection_lost(ConnectionResetError() if closed_by == "peer" else None)
    await asyncio.sleep(0.05)  # the app hears the disconnect and returns
    assert not state.tasks
    ref = weakref.ref(protocol)
    del protocol, transport
    scopes.clear()
    assert ref() is None, "the closed socket's protocol is still alive without a cycle collection"
