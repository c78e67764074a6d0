"""The replication stream's wait (walstream.py): woken by the socket or by a join, with no task per read.

`WalStream.read` runs once per commit on the one-subscriber path. It used to start two tasks per read (one waiting
for the socket, one for the join event) and cancel the loser, i.e. several event-loop callbacks per commit; now the
socket's reader callback completes the read's future itself and one task waits for the join event across reads.
The replication connection is a stand-in here (pure logic: which wait ends a read, and what it costs in tasks); the
real stream is exercised by every test of tests/realtime.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localbase.realtime.walstream import WalStream


class _Conn:
    """The part of libpq's connection the stream uses: a socket made readable by the test, one 'w' message per byte."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.socket = sock.fileno()
        self.pending: list[bytes] = []

    def consume_input(self) -> None:
        try:
            for byte in self.sock.recv(4096):
                self.pending.append(b"w" + struct.pack("!QQq", byte, byte, 0) + bytes([byte]))
        except BlockingIOError:
            pass

    def get_copy_data(self, _async: int) -> tuple[int, bytes]:
        if not self.pending:
            return 0, b""
        data = self.pending.pop(0)
        return len(data), data

    def put_copy_data(self, _data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self.sock.close()


@contextmanager
def _counting_tasks(loop: asyncio.AbstractEventLoop) -> Iterator[list[Any]]:
    made: list[Any] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(None)


async def test_reads_woken_by_the_socket_start_one_task_in_all_and_a_join_still_ends_a_read() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    stream = WalStream(_Conn(ours))
    joined = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        with _counting_tasks(loop) as made:
            for n in range(1, 6):  # a commit arrives while the read waits
                loop.call_later(0.01, theirs.send, bytes([n]))
                assert await stream.read(100, joined, timeout=5.0) == [bytes([n])]
            assert len(made) <= 1  # before: two tasks per read (socket and join), the loser cancelled
            # a join ends the wait with nothing read, and the next read waits again
            loop.call_later(0.01, joined.set)
            assert await stream.read(100, joined, timeout=5.0) == []
            joined.clear()
            loop.call_later(0.01, theirs.send, b"\x07")
            assert await stream.read(100, joined, timeout=5.0) == [b"\x07"]
            # an already set event ends a read at once; nothing at all ends it at the timeout
            joined.set()
            assert await stream.read(100, joined, timeout=5.0) == []
            joined.clear()
            assert await stream.read(100, joined, timeout=0.05) == []
    finally:
        stream.close()
        theirs.close()
