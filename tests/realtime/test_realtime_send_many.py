"""Several frames per send (`SEND_MANY`, localbase/realtime/coalesce.py) and the session's writer that uses it.

The protocol tests drive the real uvicorn protocol class over a recording transport (a real handshake, then
`send_many`); the session tests run the real `Session._write` against a stand-in websocket that records each
call, to show that a queue's frames leave in one send, in order, and that a closed socket gets nothing.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState

from localbase.realtime import session as session_module
from localbase.realtime.coalesce import DIRECT_BYTES, SEND_MANY, CoalescingWebSocketProtocol
from localbase.realtime.hub import MAX_DIRECT_BATCH, MAX_QUEUED_FRAMES, Hub, Outbox
from localbase.realtime.session import Session
from tests.realtime.test_realtime_coalesce import RecordingTransport

pytestmark = pytest.mark.timeout(30)

HANDSHAKE = (
    b"GET /realtime/v1/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef") + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def _protocol(app: Any) -> tuple[CoalescingWebSocketProtocol, RecordingTransport]:
    config = Config(app=app, ws=CoalescingWebSocketProtocol, ws_per_message_deflate=False, lifespan="off")
    config.load()
    protocol = CoalescingWebSocketProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    return protocol, transport


def _accepting_app() -> tuple[Any, asyncio.Event, list[dict[str, Any]]]:
    """An ASGI app that accepts the websocket and stays; the event is set once accepted, the scopes it got."""
    accepted = asyncio.Event()
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await asyncio.sleep(10)

    return app, accepted, scopes


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of unmasked server frames with payloads under 126 bytes."""
    out = []
    while data:
        opcode, size = data[0] & 0x0F, data[1]
        assert data[0] & 0x80 and size < 126
        out.append((opcode, data[2 : 2 + size]))
        data = data[2 + size :]
    return out


async def test_send_many_writes_text_and_binary_frames_in_order_in_one_write() -> None:
    app, accepted, scopes = _accepting_app()
    protocol, transport = await _protocol(app)
    await asyncio.wait_for(accepted.wait(), 5)
    await asyncio.sleep(0)  # the handshake's response leaves on the next tick
    before = len(transport.writes)
    send = scopes[0]["extensions"][SEND_MANY]["send"]
    assert send == protocol.send_many
    await send(["one", b"\x01\x02", "two", "é"])
    await asyncio.sleep(0)
    assert len(transport.writes) == before + 1  # four frames, one write
    assert _frames(transport.writes[-1]) == [(1, b"one"), (2, b"\x01\x02"), (1, b"two"), (1, "é".encode())]
    protocol.connection_lost(None)
    with pytest.raises(ClientDisconnected):
        await send(["after the peer left"])
    await asyncio.sleep(0)
    assert len(transport.writes) == before + 1
    for task in list(protocol.tasks):
        task.cancel()


async def test_send_many_refuses_before_accept_and_after_close() -> None:
    go = asyncio.Event()
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await go.wait()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        await asyncio.sleep(10)

    protocol, transport = await _protocol(app)
    while not scopes:
        await asyncio.sleep(0)
    send = scopes[0]["extensions"][SEND_MANY]["send"]
    with pytest.raises(ClientDisconnected):  # not accepted yet: nothing may be sent
        await send(["too early"])
    go.set()
    while not protocol.close_sent:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    written = b"".join(transport.writes)
    with pytest.raises(ClientDisconnected):  # after the close frame, nothing more
        await send(["too late"])
    await asyncio.sleep(0)
    assert b"too" not in b"".join(transport.writes) and b"".join(transport.writes) == written
    for task in list(protocol.tasks):
        task.cancel()


class _Socket:
    """What Session._write needs of Starlette's WebSocket, recording every send."""

    def __init__(self, with_send_many: bool, fail: bool = False) -> None:
        self.calls: list[list[str | bytes]] = []
        self.fail = fail
        self.scope: dict[str, Any] = {"extensions": {SEND_MANY: {"send": self._send_many}} if with_send_many else {}}

    async def _send_many(self, frames: list[str | bytes]) -> None:
        if self.fail:
            raise ClientDisconnected()
        self.calls.append(list(frames))

    async def send_text(self, text: str) -> None:
        self.calls.append([text])

    async def send_bytes(self, data: bytes) -> None:
        self.calls.append([data])


def _session(ws: _Socket) -> Session:
    return Session(ws, "1.0.0", keys=None, hub=Hub(), pool=None, apikey="")  # type: ignore[arg-type]


async def test_the_writer_sends_everything_queued_in_one_call_in_order_then_stops_at_close() -> None:
    ws = _Socket(with_send_many=True)
    session = _session(ws)
    frames: list[str | bytes] = [f"frame {i}" for i in range(10)] + [b"\x00binary"]
    for frame in frames:
        session.outbox.put(frame)
    session.outbox.close()
    await asyncio.wait_for(session._write(), 5)
    assert ws.calls == [frames]  # one send for the whole queue, the close ends the writer
    assert session.outbox.queued_bytes == 0


async def test_the_writer_caps_a_send_and_keeps_the_rest_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "MAX_FRAMES_PER_SEND", 4)
    ws = _Socket(with_send_many=True)
    session = _session(ws)
    for i in range(10):
        session.outbox.put(f"f{i}")
    session.outbox.close()
    await asyncio.wait_for(session._write(), 5)
    assert ws.calls == [["f0", "f1", "f2", "f3"], ["f4", "f5", "f6", "f7"], ["f8", "f9"]]


async def test_the_writer_without_the_extension_sends_frame_by_frame_and_a_gone_socket_ends_it() -> None:
    plain = _Socket(with_send_many=False)
    session = _session(plain)
    session.outbox.put("a")
    session.outbox.put(b"b")
    session.outbox.close()
    await asyncio.wait_for(session._write(), 5)
    assert plain.calls == [["a"], [b"b"]]

    gone = _Socket(with_send_many=True, fail=True)
    session = _session(gone)
    session.outbox.put("lost")
    session.outbox.put("never asked")
    await asyncio.wait_for(session._write(), 5)  # returns on the failed send, without waiting for a close
    assert gone.calls == []


async def test_send_now_writes_at_once_and_refuses_while_paused() -> None:
    app, accepted, scopes = _accepting_app()
    protocol, transport = await _protocol(app)
    await asyncio.wait_for(accepted.wait(), 5)
    await asyncio.sleep(0)
    before = len(transport.writes)
    send_now = scopes[0]["extensions"][SEND_MANY]["send_now"]
    protocol.pause_writing()  # the transport's buffer is over its high-water mark
    assert send_now(["held"]) is False
    await asyncio.sleep(0)
    assert len(transport.writes) == before
    protocol.resume_writing()
    assert send_now(["now"]) is True
    await asyncio.sleep(0)
    assert _frames(transport.writes[-1]) == [(1, b"now")]
    protocol.connection_lost(None)
    assert send_now(["gone"]) is False
    for task in list(protocol.tasks):
        task.cancel()


class _DirectSocket(_Socket):
    """A socket offering `send_now` too; `paused` makes it refuse, as a transport over its high-water mark."""

    def __init__(self) -> None:
        super().__init__(with_send_many=True)
        self.paused = False
        self.direct: list[str | bytes] = []
        self.scope["extensions"][SEND_MANY]["send_now"] = self._send_now

    def _send_now(self, frames: list[str | bytes]) -> bool:
        if self.paused:
            return False
        self.direct.extend(frames)
        return True


async def test_frames_go_straight_out_while_nothing_is_queued_and_queue_in_order_otherwise() -> None:
    ws = _DirectSocket()
    session = _session(ws)
    writer = asyncio.create_task(session._write())
    await asyncio.sleep(0)  # the writer is waiting on the empty queue
    session.outbox.put("a")
    session.outbox.put("b")
    assert ws.direct == ["a", "b"] and ws.calls == [] and session.outbox.queue.empty()
    ws.paused = True
    session.outbox.put("c")  # refused: queued
    ws.paused = False
    session.outbox.put("d")  # the socket would take it, but "c" is queued: it must wait behind "c"
    assert ws.direct == ["a", "b"]
    await asyncio.sleep(0)
    assert ws.calls == [["c", "d"]]  # the writer drained both, in order
    session.outbox.put("e")
    assert ws.direct == ["a", "b", "e"]
    session.outbox.close()
    await asyncio.wait_for(writer, 5)
    assert session.outbox.direct is None  # the writer is gone: nothing is written around it any more
    session.outbox.put("after")
    assert ws.direct == ["a", "b", "e"]


async def test_nothing_jumps_ahead_of_frames_the_writer_has_in_flight() -> None:
    ws = _DirectSocket()
    release = asyncio.Event()
    sent: list[list[str | bytes]] = []

    async def slow_send_many(frames: list[str | bytes]) -> None:
        await release.wait()  # flow control: the writer holds these frames, not yet written
        sent.append(list(frames))

    ws.scope["extensions"][SEND_MANY]["send"] = slow_send_many
    session = _session(ws)
    writer = asyncio.create_task(session._write())
    await asyncio.sleep(0)
    ws.paused = True
    session.outbox.put("first")
    ws.paused = False
    await asyncio.sleep(0)  # the writer took "first" and waits to send it
    assert session.outbox.queue.empty() and session.outbox.sending
    session.outbox.put("second")
    assert ws.direct == []  # not around the frame in flight
    release.set()
    session.outbox.close()
    await asyncio.wait_for(writer, 5)
    assert sent == [["first"], ["second"]]


@pytest.mark.parametrize("batched", [False, True])
async def test_a_burst_to_a_socket_is_written_at_once_only_up_to_a_bound_then_the_outbox_caps_it(batched: bool) -> None:
    """One capture delivery writes frame after frame without yielding, and the transport pauses only after the
    tick's flush: `send_now` wrote a whole burst into the coalescing buffer, past the outbox's caps, so a client
    that does not read was never dropped and the stack's memory grew with every frame (found by the review).
    `batched`: the burst as one batch for the socket (`Outbox.put_many`, as the capture delivers), past the size one
    direct write may take, so it goes frame by frame."""
    app, accepted, scopes = _accepting_app()
    protocol, transport = await _protocol(app)
    await asyncio.wait_for(accepted.wait(), 5)
    await asyncio.sleep(0)
    overflows: list[str] = []
    outbox = Outbox("1.0.0", overflows.append)
    outbox.direct = scopes[0]["extensions"][SEND_MANY]["send_now"]
    burst: list[str | bytes] = ["x" * 1024] * (MAX_QUEUED_FRAMES + 200)
    if batched:
        assert sum(map(len, burst)) > MAX_DIRECT_BATCH
        outbox.put_many(burst)
    else:
        for frame in burst:  # one delivery: no await in between
            outbox.put(frame)
    written = protocol.transport.get_write_buffer_size() - transport.get_write_buffer_size()
    assert DIRECT_BYTES <= written <= DIRECT_BYTES + 4 * 1024  # written at once up to the bound, no further
    assert overflows == ["send queue full: client too slow"] and outbox.closed  # the rest met the outbox's caps
    protocol.connection_lost(None)
    for task in list(protocol.tasks):
        task.cancel()


async def test_a_text_sent_to_many_sockets_is_serialized_once_and_written_as_websockets_frames_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One postgres_changes frame for 50 sockets: the same bytes on each, framed once (websockets framed it 50x)."""
    from websockets.frames import Frame

    serialized: list[bytes] = []
    original = Frame.serialize

    def counting(self: Frame, *args: Any, **kwargs: Any) -> bytes:
        data = original(self, *args, **kwargs)
        serialized.append(data)
        return data

    sockets = []
    for _ in range(50):
        app, accepted, _scopes = _accepting_app()
        protocol, transport = await _protocol(app)
        await asyncio.wait_for(accepted.wait(), 5)
        sockets.append((protocol, transport))
    await asyncio.sleep(0)
    before = [len(transport.writes) for _, transport in sockets]
    monkeypatch.setattr(Frame, "serialize", counting)
    text = '{"event":"postgres_changes","payload":{"ids":[' + "7" * 30 + "]}}"  # a text never sent before
    other = "é, a second text " + "8" * 30
    for protocol, _ in sockets:
        assert protocol.send_now([text, other])
    await asyncio.sleep(0)
    expected = original(Frame(1, text.encode()), mask=False, extensions=[]) + original(
        Frame(1, other.encode()), mask=False, extensions=[]
    )
    for (protocol, transport), n in zip(sockets, before, strict=True):
        assert transport.writes[n:] == [expected]  # both frames, in order, in one write, exactly websockets' bytes
        assert _frames(transport.writes[-1]) == [(1, text.encode()), (1, other.encode())]
        protocol.connection_lost(None)
        for task in list(protocol.tasks):
            task.cancel()
    assert len(serialized) == 2, f"each distinct text framed once, not once per socket: {len(serialized)}"


async def test_a_fragmented_message_in_progress_keeps_websockets_own_checks() -> None:
    """The shared bytes are only written where websockets' send_text would write them; elsewhere it decides."""
    app, accepted, _scopes = _accepting_app()
    protocol, transport = await _protocol(app)
    await asyncio.wait_for(accepted.wait(), 5)
    await asyncio.sleep(0)
    protocol.conn.send_text(b"first part", fin=False)  # a fragmented message begun on this socket
    with pytest.raises(Exception, match="continuation"):  # websockets refuses a new message, as before
        protocol.send_now(["a new message"])
    protocol.conn.send_continuation(b" and the end", fin=True)
    assert protocol.send_now(["after it"])
    await asyncio.sleep(0)
    written = b"".join(transport.writes)
    # the fragments (the protocol object's own queue) first, then the new message: FIN + text, 8 bytes, unmasked
    assert written.endswith(b"\x81\x08after it")
    assert written.index(b"first part") < written.index(b" and the end") < written.index(b"after it")
    protocol.connection_lost(None)
    assert not protocol.send_now(["after the peer left"])
    for task in list(protocol.tasks):
        task.cancel()
