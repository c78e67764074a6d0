"""Websocket frames written to the socket once per event-loop tick instead of once per frame.

Why. At 100 subscribers x 200 changes/s the stack writes 20,000 websocket frames/s, and uvicorn's
websockets-sansio protocol turns every ASGI `websocket.send` into one `transport.write`, i.e. one
`send` system call: a profile of `realtime_latency_100` put 29 % of the stack's samples in that call
alone. Phoenix needs one websocket frame per message, so the frames cannot be merged; their bytes
can. When the capture delivers a batch, a socket's writer task sends that socket's frames back to
back in one task step (nothing in between suspends), so all of them can go out in one `write`.

How. uvicorn takes the websocket protocol class from its `ws` setting, which accepts a class as well
as a name (documented in `uvicorn.Config`); `CoalescingWebSocketProtocol` is uvicorn's own
`WebSocketsSansIOProtocol` with one change: the transport it writes to is `CoalescingTransport`,
which keeps the bytes of every `write` made in the current tick and hands them to the real transport
in one `write` from a callback in the next loop iteration (one `FlushTick` callback for all sockets).
Everything else (handshake, pings, close, flow control, ASGI) is uvicorn's unchanged code, and
Starlette's `WebSocket` stays the API the realtime session uses. No private attribute is touched: the
override is the protocol's public `connection_made`, and the wrapper forwards every other transport method.

Order and safety: bytes leave in the order they were written, a close flushes what is pending first
(the close frame uvicorn writes just before closing goes out), and the buffer only ever holds the
bytes of one socket, so coalescing can never put one subscriber's frame on another's socket. Flow
control is unchanged: the real transport calls `pause_writing` on the protocol when its buffer passes
the high-water mark, one tick later than before, and the session's bounded outbox (hub.Outbox) still
caps what a slow client can queue.

Several frames per send (`SEND_MANY`). Even coalesced, each frame still went through its own ASGI
`websocket.send`: Starlette's `send_text`, its exception wrapper, uvicorn's `send` (a flow-control
wait and its state checks) and a task switch back to the session's writer, ~19 % of the stack's
samples at 100 subscribers x 200 changes/s (py-spy). The protocol therefore offers an ASGI extension
(the scope's `extensions` mapping is ASGI's documented place for server-specific additions, as
`websocket.http.response`): `scope["extensions"][SEND_MANY]["send"]` is a coroutine function taking
a list of `str` (text frames) and `bytes` (binary frames) that does what `websocket.send` does for
each of them, in order, after one flow-control wait and with the same state checks, and writes them
in one `write`. Its `send_now` does the same synchronously and returns False instead of waiting
when the transport is paused (or raising when the socket is gone): a socket with nothing queued
and nothing in flight gets a frame written straight from the capture's delivery, with no queue
and no task switch (hub.Outbox). The session (session.py) uses both when present and falls back to
Starlette's sends otherwise. Frames are still framed by websockets' own protocol object (`send_text`/`send_binary`), so
its state and any negotiated extension stay consistent.

One text frame's bytes for every socket (`server_text_frame`). A postgres_changes event goes to many sockets as one
of a few texts (the capture assembles each distinct frame once, hub.Channel.push_change), and a server's text frame
is the same bytes on every socket: servers never mask, and the stack negotiates no extension (no permessage-deflate,
as Supabase's Phoenix server). Yet websockets' `send_text` built and serialized the frame again for each socket, ~10 %
of the stack's samples at 100 subscribers x 200 inserts/s (py-spy, realtime_latency_100). `_write` therefore writes
the bytes `server_text_frame` serialized once per distinct text (with websockets' own `Frame.serialize`, exactly what
`send_text` appends) whenever `send_text` would have written them unchanged: the connection is OPEN, no fragmented
message is in progress and no extension was negotiated; otherwise it calls `send_text` as before. Anything the
protocol object had queued (a pong) is written first, so the order of bytes on the socket is the same.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import OP_TEXT, Frame
from websockets.http11 import Request
from websockets.protocol import State

# the ASGI extension: {"send": async (list[str | bytes]) -> None, "send_now": (list[str | bytes]) -> bool}
SEND_MANY = "localbase.websocket.send_many"
# what `send_now` may leave written and not yet on the socket: uvicorn's default websocket high-water mark (above it
# the transport pauses the protocol); beyond it frames go to the socket's bounded outbox, whose caps drop a client
# that does not read
DIRECT_BYTES = 64 * 1024
# the serialized text frames kept for the sockets that get the same text: a delivery's few distinct frames
FRAME_CACHE_ENTRIES = 64
FRAME_CACHE_BYTES = 4 * 1024 * 1024

_frames: dict[str, bytes] = {}
_frames_bytes = 0

log = logging.getLogger(__name__)


def server_text_frame(text: str) -> bytes:
    """`text` as one unmasked, unfragmented text frame with no extension: what websockets' `send_text` appends for a
    server, serialized once per distinct text while it is among the last few sent (see the module docstring)."""
    global _frames_bytes  # noqa: PLW0603 - one small cache per process, shared by every socket
    data = _frames.get(text)
    if data is None:
        data = Frame(OP_TEXT, text.encode("utf-8", "replace")).serialize(mask=False, extensions=[])
        if len(_frames) >= FRAME_CACHE_ENTRIES or _frames_bytes + len(data) > FRAME_CACHE_BYTES:
            _frames.clear()
            _frames_bytes = 0
        if len(data) <= FRAME_CACHE_BYTES:
            _frames[text] = data
            _frames_bytes += len(data)
    return data


class FlushTick:
    """The transports written to in the current loop iteration, flushed by one callback for all of them.

    A capture delivery writes to every subscriber's socket in one task step; one `call_soon` per socket (500 handles
    per change at 500 subscribers) cost more than the flushes' own Python. Each transport is flushed once per tick as
    before, in the order first written; one failing flush is logged and does not keep the others waiting.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[CoalescingTransport] = []

    def add(self, transport: CoalescingTransport) -> None:
        if not self._due:
            self._loop.call_soon(self._run)
        self._due.append(transport)

    def _run(self) -> None:
        due, self._due = self._due, []
        for transport in due:
            try:
                transport.flush()
            except Exception:  # as a callback of its own would: logged, and the other sockets still flushed
                log.exception("flushing a websocket's frames failed")


_ticks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FlushTick] = weakref.WeakKeyDictionary()


def flush_tick(loop: asyncio.AbstractEventLoop) -> FlushTick:
    """The loop's `FlushTick`, made on first use."""
    tick = _ticks.get(loop)
    if tick is None:
        tick = _ticks[loop] = FlushTick(loop)
    return tick


class CoalescingTransport:
    """A transport proxy whose writes made in one event-loop tick reach the socket in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._tick = flush_tick(loop)
        self._pending: list[bytes] = []
        self._pending_bytes = 0  # their total: asked before every direct frame (send_now), so kept, not summed
        self._scheduled = False
        self.flushes = 0  # writes handed to the real transport (tests count them)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if not self._scheduled:
            self._scheduled = True
            self._tick.add(self)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand everything written since the last flush to the real transport, in one write."""
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if self._transport.is_closing():
            return  # the peer is gone or we closed: asyncio would only log a warning per write
        self.flushes += 1
        self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def __getattr__(self, name: str) -> Any:
        # everything else (is_closing, get_extra_info, pause_reading, resume_reading, ...) is the real one's
        return getattr(self._transport, name)


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol writing through a `CoalescingTransport` (see the module docstring)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real = cast(asyncio.Transport, transport)
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(real, self.loop)))

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][SEND_MANY] = {"send": self.send_many, "send_now": self.send_now}

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's, then the extension taken back out of the scope: its bound methods and the scope the protocol
        holds made a reference cycle, so every closed socket's protocol, buffers and scope waited for a full
        collection, which the stack makes rare (localbase/gctune.py); uvicorn's own protocol is freed at once."""
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(SEND_MANY, None)

    async def send_many(self, frames: Sequence[str | bytes]) -> None:
        """Text (`str`) and binary (`bytes`) frames, in order, in one write: what `websocket.send` does for each.

        Raises uvicorn's `ClientDisconnected` (as `send` does) when the socket is gone or closing, or the
        websocket was never accepted; nothing is written then.
        """
        await self.writable.wait()  # the transport's flow control, as `send`
        if not self._write(frames):
            raise ClientDisconnected()

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        """`send_many` without waiting: False (nothing written) while the transport is paused, while what is written
        and not yet on the socket passes `DIRECT_BYTES`, or when the socket is gone, closing or not accepted yet.

        The bound matters because one delivery of the capture writes frame after frame without yielding: the
        transport pauses only after the tick's flush, so without it a burst to a client that does not read went
        straight into the coalescing buffer, past the outbox's caps (hub.Outbox), and was never dropped."""
        if self.transport.get_write_buffer_size() >= DIRECT_BYTES:
            return False
        return self._write(frames)

    def _write(self, frames: Sequence[str | bytes]) -> bool:
        if not self.writable.is_set() or self.disconnected or self.close_sent:
            return False
        if not self.handshake_complete or self.initial_response is not None:
            return False
        conn = self.conn
        output: list[bytes] = []
        try:
            for frame in frames:
                if not isinstance(frame, str):
                    conn.send_binary(frame)
                elif conn.state is State.OPEN and not conn.extensions and not conn.expect_continuation_frame:
                    # exactly the bytes send_text would append, serialized once for every socket that gets this text;
                    # whatever the protocol object queued before (a pong, an earlier frame) goes first
                    output += conn.data_to_send()
                    output.append(server_text_frame(frame))
                else:  # "replace": a frame holding a lone surrogate must not stop the others
                    conn.send_text(frame.encode("utf-8", "replace"))
        except InvalidState:
            return False
        output += conn.data_to_send()
        if output:
            self.transport.write(output[0] if len(output) == 1 else b"".join(output))
        return True
