"""A fault-injecting TCP proxy for sync tests: it sits between a client and the stack and can
pass traffic, drop connections, stall them, reset them mid-request, or let a request reach the
server and then lose its response (the "committed but the client never heard" case).

It runs its own asyncio loop in a thread, so tests on any loop (or in another process) can use it.
Modes (``proxy.mode = ...``, thread-safe):

- ``pass``   forward both ways
- ``drop``   new connections are reset at once, open ones are reset now (the network is gone)
- ``stall``  connections open but no byte moves in either direction (a dead Wi-Fi)

``freeze()`` stalls the connections open now for good, new ones pass: a laptop woken from sleep, whose sockets the
server forgot while its network works again.

One-shot faults, matched against the bytes a client sends (e.g. ``b"POST /rest/v1/messages"``):

- ``lose_response(pattern, times)``  forward the request, let the server answer, reset the client
  before it sees the answer
- ``reset_request(pattern, times)``  forward only the first half of the request, then reset both sides

Each HTTP request's first line is kept (``requested``), and what clients send on websockets, frame by frame and
unmasked (``ws_sent``): a test counts, say, the
``phx_join`` frames of one realtime topic the server was sent (localbase does not compress frames). That record grows
with the traffic for the proxy's whole life, so a long run that never asks (the soak, bench/soak.py) passes
``record=False``: nothing is kept and the two questions raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_METHODS = (b"GET ", b"POST ", b"PATCH ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ")


@dataclass
class _Rule:
    pattern: bytes
    times: int
    kind: str  # 'lose_response' | 'reset_request'
    hits: int = 0


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    mode: str = "pass"
    rules: list[_Rule] = field(default_factory=list)
    connections: int = 0
    faults: int = 0
    requests: int = 0  # HTTP requests forwarded (a chunk that starts one; websocket frames never look like it)
    ws_frames: list[bytes] = field(default_factory=list)  # the payloads of the frames clients sent on websockets
    request_lines: list[bytes] = field(default_factory=list)  # each forwarded HTTP request's first line
    record: bool = True  # keep ws_frames and request_lines (False: a long run's memory stays flat)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self._frozen: set[asyncio.StreamWriter] = set()  # client sides whose connections stall for good

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            for writer in list(self._open):
                self._reset(writer)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "drop", "stall"), mode
        self.mode = mode
        if mode == "drop":
            self.cut()

    def freeze(self) -> None:
        """Stall every open connection for good (no byte moves on it again); new connections pass."""

        async def freeze() -> None:
            self._frozen.update(self._open)

        asyncio.run_coroutine_threadsafe(freeze(), self._loop).result(10)

    def cut(self) -> None:
        """Reset every open connection now."""

        async def cut() -> None:
            for writer in list(self._open):
                self._reset(writer)

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(10)

    def ws_sent(self, *parts: bytes) -> int:
        """How many websocket frames clients sent that hold every one of ``parts``."""
        self._recording()
        with self._lock:
            return sum(all(part in frame for part in parts) for frame in self.ws_frames)

    def requested(self, part: bytes) -> int:
        """How many HTTP requests were forwarded whose first line (method, path, query) holds ``part``."""
        self._recording()
        with self._lock:
            return sum(part in line for line in self.request_lines)

    def _recording(self) -> None:
        if not self.record:
            raise RuntimeError("this FaultProxy keeps no record of the traffic (record=False)")

    def lose_response(self, pattern: bytes, times: int = 1) -> _Rule:
        rule = _Rule(pattern, times, "lose_response")
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset_request(self, pattern: bytes, times: int = 1) -> _Rule:
        rule = _Rule(pattern, times, "reset_request")
        with self._lock:
            self.rules.append(rule)
        return rule

    # --- internals ---------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    def _match(self, data: bytes) -> _Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.hits < rule.times and rule.pattern in data:
                    rule.hits += 1
                    self.faults += 1
                    return rule
        return None

    def _keep_frames(self, buf: bytearray) -> None:
        """Take the whole frames off the front of ``buf`` (RFC 6455: a client's frames are masked) into ws_frames."""
        while len(buf) >= 2:
            size, at = buf[1] & 0x7F, 2
            if size == 126:
                size, at = int.from_bytes(buf[2:4]), 4
            elif size == 127:
                size, at = int.from_bytes(buf[2:10]), 10
            mask = bytes(buf[at : at + 4]) if buf[1] & 0x80 else b""
            at += len(mask)
            if len(buf) < at + size:
                return
            payload = bytes(buf[at : at + size])
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            del buf[: at + size]
            with self._lock:
                self.ws_frames.append(payload)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "drop":
            self._reset(writer)
            return
        self._open.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            self._reset(writer)
            self._open.discard(writer)
            return
        self._open.add(up_writer)
        state = {"lose": False}
        frames: bytearray | None = None  # after a websocket upgrade: what the client sent, not yet a whole frame

        async def client_to_server() -> None:
            nonlocal frames
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self.mode == "stall" or writer in self._frozen:
                    await asyncio.sleep(0.05)
                if frames is not None:
                    if self.record:
                        frames += data
                        self._keep_frames(frames)
                elif data.startswith(_METHODS):
                    self.requests += 1
                    if self.record:
                        with self._lock:
                            self.request_lines.append(data.partition(b"\r\n")[0])
                    if b"\r\nupgrade: websocket\r\n" in data.lower():
                        frames = bytearray(data.partition(b"\r\n\r\n")[2] if self.record else b"")
                rule = self._match(data)
                if rule is not None and rule.kind == "reset_request":
                    up_writer.write(data[: len(data) // 2])
                    await up_writer.drain()
                    self._reset(up_writer)
                    self._reset(writer)
                    return
                if rule is not None and rule.kind == "lose_response":
                    state["lose"] = True
                up_writer.write(data)
                await up_writer.drain()
            with contextlib.suppress(OSError):
                up_writer.write_eof()

        async def server_to_client() -> None:
            while True:
                data = await up_reader.read(65536)
                if not data:
                    break
                while self.mode == "stall" or writer in self._frozen:
                    await asyncio.sleep(0.05)
                if state["lose"]:
                    # the server has processed the request and answered: the client never hears it
                    self._reset(writer)
                    self._reset(up_writer)
                    return
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a reset or the proxy shutting down: the connection is simply gone
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                self._frozen.discard(w)
                with contextlib.suppress(Exception):
                    w.close()
