"""The receiving end of a bench subscriber: a joined socket's frames read by a small asyncio protocol.

Why not `websockets`' own connection: the realtime benches run hundreds of subscribers in the bench process, on the
same two cores as the stack and PostgreSQL they measure. At 500 subscribers x 40 inserts/s the bench receives 20,000
frames a second; through `websockets`' asyncio connection (its sans-I/O parser, a message queue and an awaited
`recv` per frame) that was ~30 µs of the bench's CPU per frame (py-spy: 1.9 s of samples for a run's 60,000 frames),
most of a core during the load, taken from the server under test; read here, ~7 µs (0.42 s).
Here `websockets` still does everything up to the subscription (the HTTP upgrade, the join, its replies); then the
socket's transport is handed to `Listener`, which splits the server's frames itself: a server never masks its
frames, so a frame is a two- to ten-byte header and its payload. Text frames (and fragmented ones, joined) go to a
callback with the time their bytes arrived; a ping is answered with its pong (masked, as a client must), a close
frame is answered and ends the listener. Nothing else of RFC 6455 is needed to receive, and nothing is skipped: a
frame that is not whole yet waits for the rest of its bytes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class ProtocolError(Exception):
    """The server sent what no server may (a masked frame, an unknown opcode)."""


class Listener(asyncio.Protocol):
    """Takes over a joined `websockets` connection (`take`) and calls `on_text(payload, arrived)` per text message."""

    def __init__(self, on_text: Callable[[bytes, float], None]) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._kind = _TEXT
        self._close_sent = False

    @classmethod
    def take(cls, ws: ClientConnection, on_text: Callable[[bytes, float], None]) -> Listener:
        """Hand `ws`'s transport to a new listener. The connection must be joined and quiet (its frames so far read,
        nothing the server sends before the bench's first insert), and made with ``ping_interval=None`` (its keepalive
        would write pings on a socket it no longer reads)."""
        listener = cls(on_text)
        transport = ws.transport
        transport.set_protocol(listener)
        listener.transport = transport
        return listener

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        buffer = self._buffer
        buffer += data
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if second & 0x80:
                raise ProtocolError("a server frame was masked")
            length, head = second & 0x7F, 2
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            stop = pos + head + length
            if stop > end:
                break  # the rest of this frame is still on its way
            self._frame(first, bytes(buffer[pos + head : stop]), arrived)
            pos = stop
        del buffer[:pos]

    def _frame(self, first: int, payload: bytes, arrived: float) -> None:
        opcode, fin = first & 0x0F, bool(first & 0x80)
        if opcode in (_TEXT, _BINARY, _CONTINUATION):
            if opcode != _CONTINUATION:
                self._kind = opcode  # a fragmented message's kind is its first frame's
            if not fin:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments = []
            if self._kind == _TEXT:
                self.on_text(payload, arrived)
        elif opcode == _PING:
            self._send(_PONG, payload)
        elif opcode == _CLOSE:
            if not self._close_sent:
                self._send(_CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()
        elif opcode != _PONG:
            raise ProtocolError(f"unknown opcode {opcode}")

    def _send(self, opcode: int, payload: bytes) -> None:
        """One control frame, masked (RFC 6455: every client frame is)."""
        if self.transport is None or self.transport.is_closing():
            return
        if opcode == _CLOSE:
            self._close_sent = True
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def close(self) -> None:
        """Send a close frame (normal closure) and wait until the server closed the connection."""
        self._send(_CLOSE, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 10)
        except TimeoutError:
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
