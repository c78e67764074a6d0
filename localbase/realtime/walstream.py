"""Logical replication streaming (pgoutput) over PostgreSQL's replication protocol, on asyncio.

The walsender pushes each committed transaction as soon as its WAL is flushed, so the capture wakes
on commit instead of polling the slot on a timer. Hand-written on psycopg's libpq binding
(`psycopg.pq`) because psycopg 3 has no replication API (psycopg2's would be a second driver for one
loop): a replication connection (`replication=database`), a TEMPORARY slot (it dies with this
connection, so a stopped or crashed stack never leaves WAL pinned), `START_REPLICATION ... LOGICAL`,
then CopyBoth messages:
    server 'w'  XLogData:  u64 start | u64 end | i64 send time | pgoutput message
    server 'k'  keepalive: u64 wal end | i64 send time | u8 reply requested
    client 'r'  standby status: u64 written | u64 flushed | u64 applied | i64 now | u8 reply requested
Times are microseconds since 2000-01-01. We confirm what we received: the slot is temporary, and a
capture that restarts starts over on a new slot anyway.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import psycopg
from psycopg import conninfo, pq

EPOCH_2000 = 946_684_800
FEEDBACK_EVERY = 1.0


class StreamError(Exception):
    """The replication connection failed or ended."""


def _now_us() -> int:
    return int((time.time() - EPOCH_2000) * 1_000_000)


class WalStream:
    def __init__(self, pgconn: Any) -> None:
        self.pgconn = pgconn
        self.received_lsn = 0
        self._last_feedback = 0.0
        self._readable = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        # `read`'s wait: the reader callback completes it directly (no task per read, nothing to cancel after)
        self._waiter: asyncio.Future[None] | None = None
        self._woken: asyncio.Future[Any] | None = None  # the wake event's waiter, kept across reads until it fires
        self._woken_by: asyncio.Event | None = None
        self._loop.add_reader(pgconn.socket, self._on_readable)

    def _on_readable(self) -> None:
        self._readable.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @classmethod
    async def open(cls, db_url: str, slot: str, publication: str) -> WalStream:
        info = conninfo.make_conninfo(db_url, replication="database")
        pgconn = await asyncio.to_thread(pq.PGconn.connect, info.encode())
        if pgconn.status != pq.ConnStatus.OK:
            message = pgconn.get_error_message()
            pgconn.finish()
            raise StreamError(f"replication connection failed: {message}")
        try:
            result = await asyncio.to_thread(
                pgconn.exec_, f'CREATE_REPLICATION_SLOT "{slot}" TEMPORARY LOGICAL pgoutput'.encode()
            )
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise StreamError(f"cannot create the slot: {pgconn.get_error_message()}")
            pgconn.nonblocking = 1
            stream = cls(pgconn)
            options = f"proto_version '1', publication_names '\"{publication}\"'"
            pgconn.send_query(f'START_REPLICATION SLOT "{slot}" LOGICAL 0/0 ({options})'.encode())
            await stream._started()
        except BaseException:
            pgconn.finish()
            raise
        return stream

    async def _started(self) -> None:
        while True:
            await self._wait_readable(30.0)
            self.pgconn.consume_input()
            if not self.pgconn.is_busy():
                result = self.pgconn.get_result()
                if result is None or result.status != pq.ExecStatus.COPY_BOTH:
                    raise StreamError(f"START_REPLICATION failed: {self.pgconn.get_error_message()}")
                return

    async def _wait_readable(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._readable.wait(), timeout)
        except TimeoutError:
            return
        self._readable.clear()

    def close(self) -> None:
        if self._woken is not None:
            self._woken.cancel()
        try:
            self._loop.remove_reader(self.pgconn.socket)
        except Exception:  # the socket is already gone
            pass
        self.pgconn.finish()

    async def read(self, limit: int, wake: asyncio.Event | None = None, timeout: float = 1.0) -> list[bytes]:
        """The pgoutput messages available now (at most `limit`), waiting up to `timeout` for the first one.

        Returns early (possibly empty) when `wake` is set. A readiness report that brings no whole message (a
        stale one from before the last drain, or a partial message) does not end the wait.
        """
        deadline = self._loop.time() + timeout
        while True:
            messages = self._drain(limit)
            left = deadline - self._loop.time()
            if messages or left <= 0 or (wake is not None and wake.is_set()):
                return messages
            await self._wait(wake, left)

    async def _wait(self, wake: asyncio.Event | None, timeout: float) -> None:
        """Until the socket is readable, `wake` is set or `timeout` passes."""
        self._readable.clear()
        waiter = self._waiter = self._loop.create_future()
        waiters: set[asyncio.Future[Any]] = {waiter}
        if wake is not None:
            # one task waits for `wake` across reads (the capture clears it before each): a read that the stream
            # completes leaves it pending for the next one instead of cancelling it and starting another
            woken = self._woken
            if woken is None or woken.done() or self._woken_by is not wake:
                if woken is not None:
                    woken.cancel()
                woken = self._woken = asyncio.ensure_future(wake.wait())
                self._woken_by = wake
            waiters.add(woken)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiter = None
            waiter.cancel()

    def _drain(self, limit: int) -> list[bytes]:
        pgconn = self.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as exc:
            raise StreamError(f"replication connection lost: {exc}") from None
        out: list[bytes] = []
        reply = False
        while len(out) < limit:
            try:
                size, data = pgconn.get_copy_data(1)
            except psycopg.Error as exc:
                raise StreamError(f"replication stream failed: {exc}") from None
            if size == 0:
                break
            if size < 0:
                raise StreamError(f"replication stream ended: {pgconn.get_error_message()}")
            kind = data[0]
            if kind == ord("w"):
                start, end = struct.unpack_from("!QQ", data, 1)
                self.received_lsn = max(self.received_lsn, end, start)
                out.append(bytes(data[25:]))
            elif kind == ord("k"):
                wal_end, _, requested = struct.unpack_from("!QqB", data, 1)
                if not out:  # nothing pending in this batch: everything up to wal_end is seen
                    self.received_lsn = max(self.received_lsn, wal_end)
                reply = reply or bool(requested)
        if reply or time.monotonic() - self._last_feedback > FEEDBACK_EVERY:
            self.feedback()
        return out

    def feedback(self) -> None:
        lsn = self.received_lsn
        message = b"r" + struct.pack("!QQQqB", lsn, lsn, lsn, _now_us(), 0)
        try:
            self.pgconn.put_copy_data(message)
            self.pgconn.flush()
        except psycopg.Error as exc:
            raise StreamError(f"cannot send the standby status to the server: {exc}") from None
        self._last_feedback = time.monotonic()
