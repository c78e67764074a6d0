"""Frames coalesced per socket and loop tick (localbase/realtime/coalesce.py): fewer writes, same bytes, no mix-ups.

The transport tests run on a real event loop with a recording transport; the stack tests check, through a
real socket, that a burst delivered in one batch (so written in one `write`) still carries, per channel,
exactly the rows RLS lets that channel's identity read, in commit order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from localbase.realtime.coalesce import CoalescingTransport
from tests.conftest import Users
from tests.realtime.support import RawSocket, new_ticket, post
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_writes_of_one_tick_reach_the_socket_in_one_write_in_order() -> None:
    real = RecordingTransport()
    wrapped = CoalescingTransport(real, asyncio.get_running_loop())
    for i in range(50):
        wrapped.write(f"frame {i};".encode())
    assert real.writes == []  # nothing yet: the flush runs on the next loop iteration
    assert wrapped.get_write_buffer_size() == 7 + sum(len(f"frame {i};") for i in range(50))
    await asyncio.sleep(0)
    assert real.writes == ["".join(f"frame {i};" for i in range(50)).encode()]
    wrapped.write(b"next tick")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next tick"]
    assert wrapped.flushes == 2


class CountingList(list[bytes]):
    """A pending-chunk list that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Any:
        CountingList.walks += 1
        return super().__iter__()


async def test_the_buffered_size_is_kept_not_summed_per_question() -> None:
    # send_now asks the size before every direct frame: summing the tick's chunks made a burst quadratic (5 % of
    # the stack's samples at 100 subscribers x 200 inserts/s)
    real = RecordingTransport()
    wrapped = CoalescingTransport(real, asyncio.get_running_loop())
    wrapped._pending = CountingList()
    CountingList.walks = 0
    sizes = []
    for i in range(200):
        wrapped.write(b"x" * (i + 1))
        sizes.append(wrapped.get_write_buffer_size())
    assert sizes == [7 + (i + 1) * (i + 2) // 2 for i in range(200)]
    assert CountingList.walks == 0
    await asyncio.sleep(0)  # flushed: nothing pending
    assert wrapped.get_write_buffer_size() == 7
    wrapped.write(b"abc")
    wrapped.abort()  # dropped: nothing pending either
    assert wrapped.get_write_buffer_size() == 7


async def test_close_sends_what_is_pending_first_and_a_gone_peer_gets_nothing() -> None:
    real = RecordingTransport()
    wrapped = CoalescingTransport(real, asyncio.get_running_loop())
    wrapped.write(b"last frame")
    wrapped.write(b"close frame")
    wrapped.close()  # uvicorn writes the close frame and closes in the same step
    assert real.writes == [b"last frameclose frame"] and real.closed
    wrapped.write(b"after close")
    await asyncio.sleep(0)
    assert real.writes == [b"last frameclose frame"]  # the transport is closing: dropped, not written
    assert wrapped.get_extra_info("peername") == ("127.0.0.1", 1)  # everything else is the real transport's

    lost = RecordingTransport()
    dropped = CoalescingTransport(lost, asyncio.get_running_loop())
    dropped.write(b"never")
    dropped.abort()
    await asyncio.sleep(0)
    assert lost.writes == [] and lost.aborted


async def test_one_socket_two_identities_each_channel_gets_only_its_rows(stack: StackProcess, users: Users) -> None:
    """One socket joins two channels with two customers' tokens; a burst for both tickets lands in one batch and
    one write per tick, yet each channel's frames carry only its own customer's rows, in commit order."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    other_ticket = new_ticket(stack.db_url, users.customer2, users.agent)
    binding = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages"}]}
    sock = await RawSocket.open(stack)
    try:
        owners = {"realtime:mine": (users.customer, ticket), "realtime:theirs": (users.customer2, other_ticket)}
        for topic, (who, _) in owners.items():
            reply = await sock.join(topic, binding, token=stack.mint(sub=who.id))
            assert reply["status"] == "ok"
            await sock.next(lambda f, topic=topic: f["event"] == "system" and f["topic"] == topic)
        with psycopg.connect(stack.db_url) as conn:  # one transaction: one batch, delivered in one tick
            for i in range(30):
                conn.execute(
                    "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                    (ticket if i % 3 else other_ticket, users.agent.id, f"burst {i}"),
                )
        post(stack.db_url, users.agent, ticket, "end")
        post(stack.db_url, users.agent, other_ticket, "end")
        got: dict[str, list[str]] = {topic: [] for topic in owners}
        while any(not seq or seq[-1] != "end" for seq in got.values()):
            frame = await sock.next(lambda f: f["event"] == "postgres_changes")
            record = frame["payload"]["data"]["record"]
            _, own_ticket = owners[frame["topic"]]
            assert record["ticket_id"] == own_ticket, "a row of the other identity arrived on this channel"
            got[frame["topic"]].append(record["content"])
        assert got["realtime:mine"] == [f"burst {i}" for i in range(30) if i % 3] + ["end"]
        assert got["realtime:theirs"] == [f"burst {i}" for i in range(30) if not i % 3] + ["end"]
    finally:
        await sock.close()


async def test_every_socket_written_in_a_tick_is_flushed_by_one_callback_and_a_failing_one_stops_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delivery to 100 sockets scheduled 100 `call_soon` flushes; now one callback flushes them all, each socket
    still in one write of its own bytes, and a socket whose flush raises neither stops the others nor stays stuck."""
    loop = asyncio.get_running_loop()
    reals = [RecordingTransport() for _ in range(100)]
    wrapped = [CoalescingTransport(real, loop) for real in reals]
    scheduled: list[Any] = []
    real_call_soon = loop.call_soon

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return real_call_soon(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", counting)
    broken = reals[10]
    monkeypatch.setattr(broken, "write", lambda data: (_ for _ in ()).throw(OSError("gone")))
    for i, transport in enumerate(wrapped):
        transport.write(f"a{i};".encode())
        transport.write(f"b{i}".encode())
    assert all(real.writes == [] for real in reals)
    assert len(scheduled) == 1  # one callback for the tick, not one per socket
    await asyncio.sleep(0)
    others = [real.writes for i, real in enumerate(reals) if i != 10]
    assert others == [[f"a{i};b{i}".encode()] for i in range(100) if i != 10]
    monkeypatch.undo()  # the socket works again: its next frames go out on the next tick
    wrapped[10].write(b"again")
    await asyncio.sleep(0)
    assert reals[10].writes == [b"again"]
