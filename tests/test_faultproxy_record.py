"""The fault proxy's traffic record (tests/faultproxy.py): kept for the tests that count requests and websocket
frames, and not kept at all with ``record=False`` — the soak (bench/soak.py) runs its proxy inside the process
whose memory it measures, for ten minutes, and a record of every request line and frame grew with the traffic.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from bench.soak import fault_proxy
from tests.faultproxy import FaultProxy

UPGRADE = b"GET /realtime/v1/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def _frame(payload: bytes) -> bytes:
    """One masked client text frame (RFC 6455), payload under 126 bytes."""
    mask = b"\x01\x02\x03\x04"
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    """A TCP server that reads everything and answers every chunk with one HTTP response."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy may reset its side when the client leaves
            while data := conn.recv(65536):
                if b"GET /" in data or b"POST /" in data:  # frames and a request may come as one chunk
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    thread.join(5)
    server.close()


def _talk(proxy: FaultProxy) -> None:
    """Two plain requests, then a websocket upgrade and two frames on it, through ``proxy``."""
    for path in (b"/rest/v1/messages", b"/auth/v1/user"):
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(UPGRADE)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.sendall(_frame(b'{"event":"phx_join","topic":"realtime:t1"}') + _frame(b'{"event":"heartbeat"}'))
        sock.sendall(b"GET /after HTTP/1.1\r\n\r\n")  # bytes on the socket after the frames: the proxy has read them
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")


def test_a_recording_proxy_counts_requests_and_frames(upstream: tuple[str, int]) -> None:
    proxy = FaultProxy(*upstream).start()
    try:
        _talk(proxy)
        assert proxy.requested(b"/rest/v1/messages") == 1
        assert proxy.requested(b"/realtime/v1/websocket") == 1
        assert proxy.ws_sent(b"phx_join", b"realtime:t1") == 1
        assert proxy.ws_sent(b"heartbeat") == 1
    finally:
        proxy.stop()


def test_a_proxy_without_a_record_keeps_nothing_and_says_so(upstream: tuple[str, int]) -> None:
    proxy = FaultProxy(*upstream, record=False).start()
    try:
        _talk(proxy)
        assert proxy.requests == 3  # it still forwards and counts them
        assert proxy.request_lines == [] and proxy.ws_frames == []
        with pytest.raises(RuntimeError, match="no record"):
            proxy.requested(b"/rest/v1/messages")
        with pytest.raises(RuntimeError, match="no record"):
            proxy.ws_sent(b"heartbeat")
    finally:
        proxy.stop()


def test_the_soaks_proxy_keeps_no_record(upstream: tuple[str, int]) -> None:
    """bench/soak.py measures its own process's memory: its proxy must not keep the run's traffic."""
    host, port = upstream
    proxy = fault_proxy(f"http://{host}:{port}")
    try:
        _talk(proxy)
        assert proxy.requests == 3
        assert proxy.request_lines == [] and proxy.ws_frames == []
    finally:
        proxy.stop()
