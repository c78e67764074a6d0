"""The sidebar's unread counts at scale (issue 15): "unread" lives on the ticket row (schema v9), kept in step
by triggers, so counting a list reads the tickets alone.

With a million cached messages the count probed the thread index once per ticket (4.3 s for an admin's
100,000 tickets) and the app's first page took longer than NiceGUI's 3 s response timeout: HTTP 500. These
tests pin the shape of the count (no message rows read, whatever the cache's size) and that the kept
columns always say what the old per-ticket probe of the messages said, through every write the cache does.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.cache import Cache, workspace_reads, writes
from sync.cache import schema as cache_schema
from sync.workspace_rows import InboxFilter
from tests.helpers import cache_before

ME = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
NOW = datetime(2026, 11, 29, tzinfo=UTC)

# the definition the kept columns replace: a live message by someone else after my read marker
OLD_UNREAD = (
    "select t.id from tickets t where exists (select 1 from messages m where m.ticket_id = t.id"
    " and m.sender_id <> :me and m.deleted_at is null and m.created_at > coalesce((select r.last_read_at"
    " from ticket_reads r where r.ticket_id = t.id and r.user_id = :me), ''))"
)


def ts(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00.000000+00:00"


def ticket(tid: str, minute: int = 0) -> dict[str, Any]:
    return {
        "id": tid,
        "customer_id": OTHER,
        "assignee_id": ME,
        "subject": "help",
        "status": "open",
        "priority": "normal",
        "created_at": ts(minute),
        "updated_at": ts(minute),
        "last_message_at": ts(minute),
    }


def message(tid: str, sender: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": tid,
        "sender_id": sender,
        "content": f"at {minute}",
        "is_internal": False,
        "created_at": ts(minute),
        **extra,
    }


class Cursor:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> tuple[int, int]:
        self.n += 1
        return (1, self.n)


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    c = Cache.open(tmp_path / "cache.sqlite3", ME, "agent")
    yield c
    c.close()


def unread_now(cache: Cache) -> set[str]:
    conn = sqlite3.connect(cache.path)
    try:
        return {r[0] for r in conn.execute(OLD_UNREAD, {"me": ME})}
    finally:
        conn.close()


def kept(cache: Cache) -> set[str]:
    return {t.id for t in cache.workspace.inbox(InboxFilter(unread_only=True), NOW)}


def check(cache: Cache, expected: set[str]) -> None:
    assert unread_now(cache) == expected  # the test's own arrangement is what it claims
    assert kept(cache) == expected
    assert cache.workspace.count_unread(InboxFilter(), NOW) == len(expected)


async def test_unread_follows_every_write_of_messages_reads_and_tickets(cache: Cache) -> None:
    cursor = Cursor()
    await cache.mark_initial_sync_done()  # a cache past its first sync: every write keeps unread in step
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    await cache.apply_page("tickets", [ticket(a), ticket(b), ticket(c)], cursor(), initial=False)
    check(cache, set())

    mine = message(a, ME, 1)
    await cache.apply_page("messages", [mine], cursor(), initial=False)
    check(cache, set())  # my own message is not unread

    theirs = message(a, OTHER, 2)
    await cache.apply_page("messages", [theirs, message(b, OTHER, 3)], cursor(), initial=False)
    check(cache, {a, b})

    cache.queue_read(a, ts(2))  # read up to their message
    check(cache, {b})
    await cache.apply_page("messages", [message(a, OTHER, 1)], cursor(), initial=False)  # an older one arrives
    check(cache, {b})
    await cache.apply_page("messages", [message(a, OTHER, 4)], cursor(), initial=False)
    check(cache, {a, b})
    await cache.apply_page(  # a read marker pulled from another device of mine
        "ticket_reads", [{"ticket_id": a, "user_id": ME, "last_read_at": ts(5)}], cursor(), initial=False
    )
    check(cache, {b})
    await cache.apply_page(  # someone else's marker changes nothing for me
        "ticket_reads", [{"ticket_id": b, "user_id": OTHER, "last_read_at": ts(9)}], cursor(), initial=False
    )
    check(cache, {b})

    # the only message by someone else on b is deleted: a tombstone arrives
    (b_msg,) = cache.thread(b, 50)
    tomb = message(b, OTHER, 3, id=b_msg.id, content="", deleted_at=ts(6))
    await cache.apply_page("messages", [tomb], cursor(), initial=False)
    check(cache, set())

    # messages pulled before their ticket (the ticket row arrives later): counted once it is there
    early = message(c, OTHER, 7)
    await cache.apply_page("messages", [early], cursor(), initial=False)
    await cache.apply_page("tickets", [{**ticket(c), "subject": "changed"}], cursor(), initial=False)
    check(cache, {c})

    # a ticket that stops being visible leaves with its messages and markers
    await cache.prune({a, b})
    check(cache, set())
    await cache.apply_page("tickets", [ticket(c)], cursor(), initial=False)
    check(cache, set())


async def test_initial_sync_pages_keep_unread_too(cache: Cache) -> None:
    cursor = Cursor()
    tickets = [str(uuid.uuid4()) for _ in range(30)]
    await cache.apply_page("tickets", [ticket(t) for t in tickets], cursor(), initial=True)
    rows = [message(t, OTHER if i % 3 else ME, i % 50) for i, t in enumerate(tickets * 4)]
    await cache.apply_page("messages", rows, cursor(), initial=True)
    reads = [{"ticket_id": t, "user_id": ME, "last_read_at": ts(30)} for t in tickets[:10]]
    await cache.apply_page("ticket_reads", reads, cursor(), initial=True)
    late = str(uuid.uuid4())  # a message seen live during the initial sync, on a ticket pulled after it
    await cache.apply_live({"messages": [message(late, OTHER, 40)]})
    await cache.apply_page("tickets", [ticket(late)], cursor(), initial=True)
    await cache.finish_initial_sync()  # the inserts left others_last_at to this one grouped pass
    expected = unread_now(cache)
    assert late in expected and 0 < len(expected) < len(tickets) + 1
    check(cache, expected)


def test_counting_unread_reads_no_message(cache: Cache) -> None:
    """The regression: the count's plan must not touch the messages table or its indexes (at 1M messages
    one probe per ticket took seconds)."""
    conn = sqlite3.connect(cache.path)
    try:
        for f in (InboxFilter(), InboxFilter(view="mine"), InboxFilter(statuses=("open",), unread_only=True)):
            params: dict[str, Any] = {"me": ME}
            where = [*workspace_reads._conditions(f, ME, NOW, params), workspace_reads._UNREAD]
            plan = " | ".join(
                str(r[3])
                for r in conn.execute(
                    "explain query plan select count(*) from tickets t where " + " and ".join(where), params
                )
            )
            assert "messages" not in plan, plan
    finally:
        conn.close()


async def test_a_cache_from_before_gets_its_unread_columns_filled(tmp_path: Path) -> None:
    """A cache from before the step (v8) is migrated: the new columns are computed from what it holds."""
    path = tmp_path / "old.sqlite3"
    conn = cache_before(path, cache_schema.V9)
    conn.execute("insert into meta (key, value) values ('user_id', ?)", (ME,))
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for t in (ticket(a), ticket(b)):
        conn.execute(
            "insert into tickets (id, customer_id, assignee_id, subject, status, priority, created_at, updated_at,"
            " last_message_at) values (:id, :customer_id, :assignee_id, :subject, :status, :priority,"
            " :created_at, :updated_at, :last_message_at)",
            t,
        )
    for m in (message(a, OTHER, 1), message(a, ME, 3), message(b, OTHER, 2)):
        conn.execute(
            "insert into messages (id, ticket_id, sender_id, content, created_at)"
            " values (:id, :ticket_id, :sender_id, :content, :created_at)",
            m,
        )
    conn.execute("insert into ticket_reads values (?, ?, ?)", (b, ME, ts(2)))
    conn.commit()
    conn.close()
    cache = Cache.open(path, ME, "agent")
    try:
        check(cache, {a})
    finally:
        cache.close()


async def _recount_steps(tmp_path: Path, per_ticket: int) -> int:
    """SQLite VM steps of the initial sync's unread recount over 20 tickets with ``per_ticket`` messages each by
    someone else (counted by a progress handler called every 100 steps)."""
    cache = Cache.open(tmp_path / f"recount-{per_ticket}.sqlite3", ME, "agent")
    try:
        cursor = Cursor()
        tickets = [str(uuid.uuid4()) for _ in range(20)]
        await cache.apply_page("tickets", [ticket(t) for t in tickets], cursor(), initial=True)
        rows = [message(t, OTHER, i) for t in tickets for i in range(per_ticket)]
        await cache.apply_page("messages", rows, cursor(), initial=True)
        await cache.finish_initial_sync()
        assert unread_now(cache) == set(tickets)  # the arrangement: every ticket has their newest message
        check(cache, set(tickets))
    finally:
        cache.close()
    conn = sqlite3.connect(tmp_path / f"recount-{per_ticket}.sqlite3")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        conn.set_progress_handler(count, 100)
        writes.recount_unread(conn)
        conn.rollback()
    finally:
        conn.close()
    return steps


async def test_the_initial_syncs_recount_reads_a_message_or_two_per_ticket(tmp_path: Path) -> None:
    """The regression (issue 15): the recount at the end of the initial sync took every message's newest time in
    a grouped pass, reading each message's row (1M random reads at 1M, ~2 s of CPU): its work grew with the
    threads' length. It takes each ticket's newest live message by someone else down the thread index."""
    short = await _recount_steps(tmp_path, 2)
    long = await _recount_steps(tmp_path, 50)  # 25 x the messages
    assert long < 2 * short, (short, long)  # before: 201 against 19
