"""A realtime batch of messages looks its ids up in the cache once (sync17).

The foreign-id guard (``writes.fail_foreign``: a server row under the id of a local message of another ticket or
sender) read the batch's ids from ``messages``, and the apply read them again to tell new messages from known
ones (what makes a notification). One query now answers both. Counted here with SQLite's statement trace on the
writer's connection: the queries over the batch's id list (``json_each``) that read ``messages``. Before, 2.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sync.cache import Cache
from sync.cache.writes import FOREIGN_ID_ERROR

ME = str(uuid.uuid4())
TICKET = str(uuid.uuid4())


def _message(n: int, ticket: str = TICKET, sender: str | None = None) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": ticket,
        "sender_id": sender or str(uuid.uuid4()),
        "content": f"m{n}",
        "is_internal": False,
        "created_at": f"2026-11-30T12:00:{n:02d}.000000+00:00",
        "change_xid": n,
    }


TS = "2026-11-30T12:00:00.000000+00:00"


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[Cache]:
    c = Cache.open(tmp_path / "cache.sqlite3", ME, "agent")
    ticket = {"id": TICKET, "customer_id": str(uuid.uuid4()), "assignee_id": ME, "subject": "s", "status": "open"}
    await c.apply_live(
        {"tickets": [{**ticket, "priority": "normal", "created_at": TS, "updated_at": TS, "last_message_at": TS}]}
    )
    yield c
    c.close()


def _lookups(cache: Cache) -> list[str]:
    seen: list[str] = []

    def trace(statement: str) -> None:
        text = " ".join(statement.split()).lower()
        if "from messages" in text and "json_each" in text:
            seen.append(text)

    cache._store.write(lambda c: c.set_trace_callback(trace))
    return seen


async def test_a_realtime_batch_reads_its_message_ids_once_and_still_guards_and_notifies(cache: Cache) -> None:
    known = _message(1)
    await cache.apply_live({"messages": [known]})
    mine = str(uuid.uuid4())
    cache.queue_message({"id": mine, "ticket_id": TICKET, "sender_id": ME, "content": "my reply", "is_internal": False})
    seen = _lookups(cache)
    foreign = _message(2, ticket=str(uuid.uuid4()))
    foreign["id"] = mine  # a server row under the id of this user's queued reply, in another ticket
    new = _message(3)
    applied = await cache.apply_live({"messages": [{**known, "content": "m1 edited", "change_xid": 4}, foreign, new]})
    assert len(seen) == 1, seen
    # the guard still held: the reply is kept as written, failed; the new message from someone else notifies, the
    # known one does not
    reply = cache.message(mine)
    assert reply is not None and (reply.content, reply.local_state, reply.error) == (
        "my reply",
        "failed",
        FOREIGN_ID_ERROR,
    )
    ids, from_others = applied.messages[TICKET]  # the failed reply's thread is named too: its bubble shows it failed
    assert ids == {known["id"], new["id"], mine} and from_others
    edited = cache.message(str(known["id"]))
    assert edited is not None and edited.content == "m1 edited"
    seen.clear()
    again = await cache.apply_live({"messages": [{**known, "content": "m1 again", "change_xid": 5}]})
    assert len(seen) == 1 and again.messages[TICKET] == ({known["id"]}, False), "a known message is no news"
