"""The push's first read (issue 15, ``e2e_latency``): a message just queued goes on the wire without waiting for the
cache's writer thread (its outbox read is on the loop's reader connection), it is still acknowledged exactly once,
and a long outbox or a held bulk transaction is still read on the writer thread.

Before, every read of the outbox was a turn of the writer thread; with that thread busy (a pull page being
applied) the message waited for it before its request was sent.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from sync import push
from sync.cache import Cache
from sync.push import Pusher
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(60)
TS = "2026-11-20T10:00:00.000000+00:00"


class Recorder:
    """The one call a message push makes, recorded (the server side is tested elsewhere)."""

    def __init__(self) -> None:
        self.inserted: list[str] = []

    async def insert_ignore(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> None:
        assert table == "messages" and on_conflict == "id"
        self.inserted += [str(r["id"]) for r in rows]


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[tuple[Cache, str]]:
    me, ticket = str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "agent")
    row = {"id": ticket, "customer_id": me, "subject": "s", "status": "open", "priority": "normal", "created_at": TS}
    await cache.apply_page("tickets", [row | {"updated_at": TS, "last_message_at": TS}], (1, 1), initial=False)
    yield cache, ticket
    cache.close()


def _queue(cache: Cache, ticket: str, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i in ids:
        cache.queue_message({"id": i, "ticket_id": ticket, "sender_id": cache.me, "content": "hi", "is_internal": 0})
    return ids


def _busy_writer(cache: Cache) -> threading.Event:
    """Occupy the cache's writer thread until the returned event is set."""
    release = threading.Event()
    cache._store._pool.submit(release.wait, 30)
    return release


async def test_a_queued_message_is_sent_while_the_writer_thread_is_busy(cache: tuple[Cache, str]) -> None:
    store, ticket = cache
    [message] = _queue(store, ticket, 1)
    remote = Recorder()
    release = _busy_writer(store)
    try:
        pushing = asyncio.create_task(Pusher(store, remote, lambda e: None).push())  # type: ignore[arg-type]
        await wait_for(lambda: remote.inserted == [message], timeout=5, what="the request, before the writer is free")
        assert not pushing.done()  # its acknowledgement is a write: it waits for the writer
    finally:
        release.set()
    result = await pushing
    assert (result.sent, remote.inserted) == (1, [message])
    assert store.outbox() == []
    assert store.message(message).local_state == "sent"  # type: ignore[union-attr]


async def test_a_long_outbox_goes_in_order_once_each(cache: tuple[Cache, str]) -> None:
    store, ticket = cache
    ids = _queue(store, ticket, push.SHORT_OUTBOX + 3)
    assert store.queued_at_once(push.SHORT_OUTBOX) is None  # read on the writer thread, off the loop
    remote = Recorder()
    result = await Pusher(store, remote, lambda e: None, max_batch=7).push()  # type: ignore[arg-type]
    assert result.sent == len(ids) and remote.inserted == ids
    assert store.outbox() == []


async def test_an_empty_outbox_or_a_held_bulk_transaction_is_read_on_the_writer_thread(
    cache: tuple[Cache, str],
) -> None:
    store, ticket = cache
    assert store.queued_at_once(push.SHORT_OUTBOX) is None
    [message] = _queue(store, ticket, 1)
    assert [e.entity_id for e in store.queued_at_once(push.SHORT_OUTBOX) or []] == [message]
    await store._store.abulk(lambda c: None, commit=False)  # the initial sync's held transaction
    assert store.queued_at_once(push.SHORT_OUTBOX) is None
    result = await Pusher(store, Recorder(), lambda e: None).push()  # type: ignore[arg-type]
    assert result.sent == 1 and not store._store.holding_bulk
