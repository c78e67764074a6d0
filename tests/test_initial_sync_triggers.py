"""The initial sync's bulk writes run no trigger program per row (issue 15, sync/cache/bulk_triggers.py).

SQLite enters a trigger's program for every row it fires for, even when its ``when`` clause then says "nothing to
do" (the bulk pages' ``meta.bulk_apply``): 100,000 tickets took about twice as long with the tickets' triggers in
place. During an initial-sync tickets page, the at-once messages of a staged page, the move of the staged
messages and a read markers page, the triggers whose work ``finish_initial_sync`` redoes are set aside inside the
transaction. What must hold: no trigger program per row (SQLite's statement trace reports the start of each one),
every trigger back after the write (a crash or the reader never sees one missing), and the result the same: a
subject changed by a later page of the same initial sync is found by search after the end, unread state recounted
(from my read markers only).
Pure cache logic on real SQLite files, no server.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sync.cache import Cache

TS = "2026-11-20T10:{:02d}:00.000000+00:00"
N = 120


def _ticket(tid: str, customer: str, subject: str) -> dict[str, Any]:
    return {
        "id": tid,
        "customer_id": customer,
        "subject": subject,
        "status": "open",
        "priority": "normal",
        "created_at": TS.format(0),
        "updated_at": TS.format(0),
        "last_message_at": TS.format(59),
    }


def _msg(tid: str, sender: str, at: int, xid: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": tid,
        "sender_id": sender,
        "content": f"hello {at}",
        "created_at": TS.format(at % 60),
        "deleted_at": None,
        "change_xid": xid,
    }


def _triggers(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return set(conn.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall())
    finally:
        conn.close()


async def _traced(cache: Cache) -> list[str]:
    """Every statement start the writer connection reports from now on (SQLite's trace reports the start of each
    trigger program too, with the statement's text)."""
    seen: list[str] = []
    await cache._store.amaintain(lambda c: c.set_trace_callback(seen.append))
    return seen


def _starts(seen: list[str], prefix: str) -> int:
    return sum(1 for s in seen if s.lower().lstrip().startswith(prefix))


async def test_an_initial_tickets_page_runs_no_trigger_per_row_and_search_finds_the_last_subject(
    tmp_path: Path,
) -> None:
    me, customer = str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    try:
        before = _triggers(cache.path)
        ids = [str(uuid.uuid4()) for _ in range(N)]
        seen = await _traced(cache)
        await cache.apply_page("tickets", [_ticket(t, customer, "printer jam") for t in ids], (1, 1), initial=True)
        # one statement start per row: no trigger program entered for any of them (3 per row before)
        assert _starts(seen, "insert into tickets") == N
        assert _triggers(cache.path) == before  # all back, as they were
        # a later page of the same initial sync changes a subject (an upsert: ``tickets_fts_au`` set aside too)
        seen.clear()
        await cache.apply_page("tickets", [_ticket(ids[0], customer, "warehouse keyboard")], (2, 1), initial=True)
        assert _starts(seen, "insert into tickets") == 1
        await cache.begin_staging()
        await cache.finish_initial_sync()
        assert [h.ticket_id for h in cache.search("warehouse")] == [ids[0]]
        assert "printer" not in {h.subject.split()[0] for h in cache.search("warehouse")}
        assert len(cache.search("printer", limit=500)) == N - 1
        assert _triggers(cache.path) == before
    finally:
        cache.close()


async def test_the_staged_messages_move_and_their_previews_run_no_trigger_per_row(tmp_path: Path) -> None:
    me, customer = str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    try:
        before = _triggers(cache.path)
        tickets = [str(uuid.uuid4()) for _ in range(N)]
        await cache.apply_page("tickets", [_ticket(t, customer, "s") for t in tickets], (1, 1), initial=True)
        await cache.begin_staging()
        seen = await _traced(cache)
        # two messages per ticket: one goes into ``messages`` at once (the preview), both are staged
        page = [_msg(t, customer, at, 10 + 2 * i + at) for i, t in enumerate(tickets) for at in (1, 2)]
        await cache.apply_page("messages", page, (500, 1), initial=True, commit=True)
        assert _starts(seen, "insert into messages (") == N  # the previews: one start per row
        seen.clear()
        await cache.unstage()
        # the move is one statement: its N new rows enter no trigger program (its N previews are updates, whose
        # triggers stay: their programs start once each)
        assert _starts(seen, "insert into messages (") <= 1 + 2 * N
        # the tickets it announces come from the thread index it built, not from a sort of the staged rows (~1 s at
        # 1M messages)
        assert not [s for s in seen if "distinct" in s.lower() and "messages_staged" in s]
        assert _triggers(cache.path) == before
        await cache.finish_initial_sync()
        assert cache.count("messages") == 2 * N
        view = cache.inbox("all")
        assert len(view) == N and all(t.unread_count > 0 for t in view)  # recounted at the end: the customer wrote last
    finally:
        cache.close()


async def test_an_initial_read_markers_page_runs_no_trigger_per_row_and_unread_follows_mine(tmp_path: Path) -> None:
    me, customer, other_agent = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    try:
        before = _triggers(cache.path)
        tickets = [str(uuid.uuid4()) for _ in range(N)]
        await cache.apply_page("tickets", [_ticket(t, customer, "s") for t in tickets], (1, 1), initial=True)
        await cache.begin_staging()
        page = [_msg(t, customer, 30, 10 + i) for i, t in enumerate(tickets)]
        await cache.apply_page("messages", page, (500, 1), initial=True, commit=True)
        await cache.unstage()
        seen = await _traced(cache)
        # my markers on the first half (after the customer's message: read), another agent's on every ticket
        reads = [{"ticket_id": t, "user_id": me, "last_read_at": TS.format(40)} for t in tickets[: N // 2]]
        reads += [{"ticket_id": t, "user_id": other_agent, "last_read_at": TS.format(50)} for t in tickets]
        await cache.apply_page("ticket_reads", reads, (600, 1), initial=True, commit=False)
        # one statement start per row: no trigger program entered (one per row before, mine or not)
        assert _starts(seen, "insert into ticket_reads") == len(reads)
        seen.clear()
        # a later page of the same initial sync moves one of my markers back before the message: max() keeps it
        await cache.apply_page(
            "ticket_reads",
            [{"ticket_id": tickets[0], "user_id": me, "last_read_at": TS.format(20)}],
            (601, 1),
            initial=True,
        )
        assert _starts(seen, "insert into ticket_reads") == 1
        assert _triggers(cache.path) == before  # all back, as they were
        await cache.finish_initial_sync()
        unread = {t.id for t in cache.inbox("all") if t.unread_count > 0}
        assert unread == set(tickets[N // 2 :])  # recounted at the end from my markers only
        assert _triggers(cache.path) == before
    finally:
        cache.close()
