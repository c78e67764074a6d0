"""A row the cache cannot take is set aside on every path the server's rows come by, and stays said across restarts.

The main pulls set such a row aside (tests/test_far_timestamps.py); the backfill of a newly visible ticket (its
attachments, revisions and read markers) and the initial sync's staged messages did not: one such row failed the
backfill at every pull (a backfill is asked again until it is done) or the initial sync's messages page forever.
And the rows set aside were kept in memory only, so after a restart the status line no longer said a row was
skipped. Each test here fails before (sync17).

The hostile row is one the real server sends: a message whose ``created_at`` PostgreSQL holds as 'infinity' (no check
guards it; ``sync_message_rows`` sends it as null). An attachment row renamed onto the key of another one that was
removed on the server was one too (``attachments`` rows have no tombstone, so the cache still held the removed one and
its key is unique in the cache too) until sync17b: the stale row now makes way. Rows the server cannot send (its
checks refuse them) are tested on the cache.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from supportchat_app.components.sync_status import describe
from sync import attachments
from sync.cache import Cache, writes
from sync.cache import schema as cache_schema
from sync.cache.db import SET_ASIDE_PER_PAGE
from sync.engine import SyncEngine
from sync.models import MESSAGE_ROW
from tests.conftest import User, Users
from tests.helpers import cache_before
from tests.realtime.support import attach, new_ticket, post
from tests.stackproc import StackProcess
from tests.test_far_timestamps import ticket_row
from tests.test_sync_support import EngineFactory

SHA = "0" * 64
TS = "2026-11-30T12:00:00.000000+00:00"


def _rename(db_url: str, attachment: str, name: str) -> None:
    """The service role renames a file (its key follows its name, as the server's check wants)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("set role service_role")
        conn.execute(
            "update public.attachments set name = %s, object_path = ticket_id::text || '/' || message_id::text"
            " || '/' || %s where id = %s",
            (name, name, attachment),
        )


def _remove(db_url: str, attachment: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("set role service_role")
        conn.execute("delete from public.attachments where id = %s", (attachment,))


def _replaced(db_url: str, customer: User) -> tuple[str, dict[str, str]]:
    """A ticket of ``customer`` with one message and three files a, b, c."""
    ticket = new_ticket(db_url, customer, subject="files")
    message = post(db_url, customer, ticket, "three files")
    return ticket, {n: attach(db_url, customer, ticket, message, f"{n}.txt") for n in "abc"}


def _collide(db_url: str, files: dict[str, str]) -> None:
    """On the server: a.txt removed (the cache does not hear of it), b.txt renamed a.txt (a key the cache still
    holds for the removed row: this row cannot go in), c.txt renamed c2.txt (goes in)."""
    _remove(db_url, files["a"])
    _rename(db_url, files["b"], "a.txt")
    _rename(db_url, files["c"], "c2.txt")


def _names(engine: SyncEngine, ticket: str) -> set[str]:
    return {str(a["name"]) for m in engine.cache.thread(ticket) for a in engine.cache.attachments(m.id)}


async def test_a_file_renamed_onto_a_deleted_ones_name_replaces_its_stale_row(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """sync17b: attachment rows have no tombstone, so the cache kept a.txt's row after the server deleted it, and b
    renamed a.txt (its key unique in both) was set aside by every backfill and pull that brought it. The server's row
    under that key is the truth: the stale row goes, b goes in."""
    ticket, files = _replaced(stack.db_url, users.customer)
    engine = await engines.open(users.customer)
    await engine.pull()
    assert _names(engine, ticket) == {"a.txt", "b.txt", "c.txt"}
    _collide(stack.db_url, files)
    post(stack.db_url, users.agent, ticket, "a reply the backfill brings")
    await engine.parts.puller.backfill(ticket, lambda _: None)  # before: b set aside (sync16: IntegrityError)
    assert "a reply the backfill brings" in [m.content for m in engine.cache.thread(ticket)]
    assert _names(engine, ticket) == {"a.txt", "c2.txt"}
    assert engine.cache.attachment(files["a"]) is None, "the row the server deleted is gone"
    renamed = engine.cache.attachment(files["b"])
    assert renamed is not None and renamed["name"] == "a.txt"
    assert engine.cache.set_aside == []
    assert ticket not in await engine.cache.pending_backfills()


def _wedge(db_url: str, message: str) -> None:
    """The superuser, past the trigger that keeps created_at (no check refuses the value), as an older or compromised
    server could; a new device pulls every row from the start, so the row's change stamp may stay as it was."""
    with psycopg.connect(db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        conn.execute("update public.messages set created_at = 'infinity' where id = %s", (message,))


def _unwedge(db_url: str, message: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("delete from public.messages where id = %s", (message,))


async def test_the_initial_sync_sets_aside_a_message_it_cannot_stage_and_goes_on(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    ticket = new_ticket(stack.db_url, users.customer2, subject="staged")
    before = post(stack.db_url, users.customer2, ticket, "before the wedge")
    wedged = post(stack.db_url, users.customer2, ticket, "at infinity")
    post(stack.db_url, users.customer2, ticket, "after the wedge")
    _wedge(stack.db_url, wedged)
    try:
        engine = await engines.open(users.customer2)  # a new device: its first pull stages the messages
        await engine.sync_once()
        assert engine.cache.initial_sync_done()
        assert [m.content for m in engine.cache.thread(ticket)] == ["before the wedge", "after the wedge"]
        assert engine.cache.message(before) is not None and engine.cache.message(wedged) is None
        assert [(s.table, s.row_id) for s in engine.cache.set_aside] == [("messages", wedged)]
        label, _ = describe(engine.status)
        assert label == "Online · a row was skipped"
    finally:  # customer2's later devices in other tests would set it aside too
        _unwedge(stack.db_url, wedged)


async def test_a_row_set_aside_is_still_said_after_a_restart_until_it_applies(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    ticket = new_ticket(stack.db_url, users.customer, subject="restart")
    post(stack.db_url, users.customer, ticket, "kept")
    wedged = post(stack.db_url, users.customer, ticket, "at infinity")
    _wedge(stack.db_url, wedged)
    try:
        await _said_after_a_restart_until_it_applies(stack, engines, users.customer, tmp_path / "device", wedged)
    finally:  # the customer's later devices in other tests would set it aside too
        _unwedge(stack.db_url, wedged)


async def _said_after_a_restart_until_it_applies(
    stack: StackProcess, engines: EngineFactory, customer: User, data_dir: Path, wedged: str
) -> None:
    engine = await engines.open(customer, data_dir=data_dir)
    await engine.sync_once()  # the initial sync sets it aside
    assert engine.cache.set_aside[-1].row_id == wedged
    said = engine.status.last_error
    assert said is not None and wedged in said
    await engine.close()

    again = await engines.open(data_dir=data_dir)  # the app restarted: the saved session, the same cache
    assert again.cache.set_aside[-1].row_id == wedged, "forgotten by the restart"
    await again.sync_once()
    assert again.status.last_error == said
    assert describe(again.status)[0] == "Online · a row was skipped"

    with psycopg.connect(stack.db_url, autocommit=True) as conn:  # changed on the server: it applies now
        conn.execute("set role service_role")
        conn.execute("update public.messages set deleted_at = now() where id = %s", (wedged,))
    await again.sync_once()
    assert wedged not in {s.row_id for s in again.cache.set_aside}
    message = again.cache.message(wedged)
    assert message is not None and message.deleted_at is not None, "its tombstone went in"


# --- on the cache: rows the server's checks refuse today (an older server's, a compromised one's) ------------------


def _message(ticket: str, n: int, **over: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": ticket,
        "sender_id": str(uuid.uuid4()),
        "content": f"m{n}",
        "is_internal": False,
        "created_at": f"2026-11-30T12:00:0{n}.000000+00:00",
        "edited_at": None,
        "deleted_at": None,
        "change_xid": 5,
        **over,
    }


def _revision(ticket: str, message: str, **over: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "message_id": message, "ticket_id": ticket, "content": "was", **over}


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    c = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    yield c
    c.close()


async def test_a_backfill_sets_aside_a_revision_and_a_read_marker_it_cannot_read(cache: Cache) -> None:
    ticket = str(uuid.uuid4())
    first = _message(ticket, 1)
    good = _revision(ticket, first["id"], replaced_at=TS)
    bad_revision = _revision(ticket, first["id"], replaced_at="next tuesday")
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    reads = [
        {"ticket_id": ticket, "user_id": me, "last_read_at": TS},
        {"ticket_id": ticket, "user_id": other, "last_read_at": "never"},
    ]
    await cache.apply_backfill(ticket, [first], reads, (), [good, bad_revision])
    assert [r.id for r in cache.revisions(first["id"])] == [good["id"]]
    assert cache.read_markers(ticket) == {me: TS}
    assert {(s.table, s.row_id) for s in cache.set_aside} == {
        ("message_revisions", bad_revision["id"]),
        ("ticket_reads", f"{ticket}/{other}"),
    }
    assert ticket not in await cache.pending_backfills()


async def test_more_bad_rows_than_allowed_fail_the_backfill_which_stays_owed(cache: Cache) -> None:
    ticket = str(uuid.uuid4())
    await cache._store.awrite(lambda c: writes.add_backfills(c, [ticket]))
    first = _message(ticket, 1)
    bad = [_revision(ticket, first["id"], replaced_at="never") for _ in range(SET_ASIDE_PER_PAGE + 1)]
    with pytest.raises(ValueError):
        await cache.apply_backfill(ticket, [first], [], (), bad)
    assert ticket in await cache.pending_backfills() and cache.set_aside == []
    assert cache.message(first["id"]) is None, "the backfill failed whole"


def _array(row: dict[str, Any]) -> list[Any]:
    return [row.get(c) for c in MESSAGE_ROW]


async def test_a_staged_page_with_too_many_bad_rows_fails_and_keeps_its_cursor(cache: Cache) -> None:
    ticket = str(uuid.uuid4())
    await cache.begin_staging()
    good = [_array(_message(ticket, n)) for n in (1, 2)]
    await cache.apply_page("messages", [good[0], _array(_message(ticket, 3, created_at=None))], (5, 2), initial=True)
    assert await cache.cursor("messages") == (5, 2) and [s.table for s in cache.set_aside] == ["messages"]
    bad = [_array(_message(ticket, 4, created_at=None)) for _ in range(SET_ASIDE_PER_PAGE + 1)]
    with pytest.raises(sqlite3.IntegrityError):
        await cache.apply_page("messages", [good[1], *bad], (5, 9), initial=True)
    assert await cache.cursor("messages") == (5, 2)
    await cache.finish_initial_sync()
    assert [m.content for m in cache.thread(ticket)] == ["m1"]


async def test_a_cache_from_before_step_17_keeps_its_rows_and_notes_set_asides(tmp_path: Path) -> None:
    """Migration v16 → v17: the new table, nothing else touched."""
    path = tmp_path / "old.sqlite3"
    conn = cache_before(path, cache_schema.V17)
    ticket = str(uuid.uuid4())
    conn.execute(
        "insert into messages (id, ticket_id, sender_id, content, created_at) values ('m', ?, 's', 'kept', ?)",
        (ticket, TS),
    )
    conn.commit()
    conn.close()
    cache = Cache.open(path, str(uuid.uuid4()), "agent")
    try:
        assert [m.content for m in cache.thread(ticket)] == ["kept"] and cache.set_aside == []
        bad = _message(ticket, 2, created_at="not a time")
        await cache.apply_page("messages", [_message(ticket, 1), bad], (3, 1), initial=False)
        assert [(s.table, s.row_id) for s in cache.set_aside] == [("messages", bad["id"])]
    finally:
        cache.close()
    reopened = Cache.open(path, str(uuid.uuid4()), "agent")
    try:
        assert [s.row_id for s in reopened.set_aside] == [bad["id"]] and reopened.set_aside_note() is not None
    finally:
        reopened.close()


async def test_a_hostile_rows_key_is_cut_in_the_note(cache: Cache) -> None:
    """A server may send any text as an id: a row set aside under a key of 100,000 characters would carry it into the
    file and the status line."""
    ticket = str(uuid.uuid4())
    huge = _message(ticket, 1, id="x" * 100_000, created_at="not a time")
    await cache.apply_page("messages", [_message(ticket, 2), huge], (3, 2), initial=False)
    (noted,) = cache.set_aside
    assert noted.row_id == "x" * 100
    note = cache.set_aside_note()
    assert note is not None and len(note) < 500


def _attachment(ticket: str, message: str, name: str, **over: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "message_id": message,
        "ticket_id": ticket,
        "uploader_id": str(uuid.uuid4()),
        "name": name,
        "mime": "text/plain",
        "size": 3,
        "sha256": SHA,
        "object_path": f"{ticket}/{message}/{name}",
        "created_at": TS,
        **over,
    }


async def test_a_stale_attachment_row_makes_way_with_its_downloaded_copy(cache: Cache) -> None:
    """The row the server deleted leaves the cache when another id arrives under its key, and its downloaded copy
    and thumbnail leave the disk; a file this user queued keeps its row (the server's is set aside, as before)."""
    ticket = str(uuid.uuid4())
    first = _message(ticket, 1)
    old = _attachment(ticket, first["id"], "a.txt")
    await cache.apply_backfill(ticket, [first], [], [old])
    copy = cache.files_dir / "a.txt"
    thumbnail = attachments.thumbnail_path(cache.files_dir, old["id"])
    for path in (copy, thumbnail):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"old")
    await cache.set_attachment_file(old["id"], copy, 1.0)
    new = _attachment(ticket, first["id"], "a.txt")
    await cache.apply_page("attachments", [new], (2, 1), initial=False)  # before: new set aside, old kept
    assert cache.attachment(old["id"]) is None and cache.attachment(new["id"]) is not None
    assert not copy.exists() and not thumbnail.exists()
    assert cache.set_aside == []

    await cache.apply_page("tickets", [ticket_row(ticket)], (1, 1), initial=False)
    mine = str(uuid.uuid4())
    cache.queue_message_with_files(
        {"id": mine, "ticket_id": ticket, "sender_id": cache.me, "content": "with a file", "is_internal": 0},
        [_attachment(ticket, mine, "b.txt", uploader_id=cache.me, local_path=str(cache.files_dir / "b.txt"))],
    )
    theirs = _attachment(ticket, mine, "b.txt")
    await cache.apply_page("attachments", [theirs], (2, 2), initial=False)
    assert cache.attachment(theirs["id"]) is None
    assert [a["name"] for a in cache.attachments(mine)] == ["b.txt"]
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("attachments", theirs["id"])]


async def test_a_row_set_aside_in_a_pruned_ticket_is_no_longer_said(tmp_path: Path) -> None:
    """review17b: a ticket the server no longer shows this user is pruned, and its rows never come again; a row of
    it set aside stayed noted for good ("Online · a row was skipped" across every restart). Its note goes with it
    (cache schema v19: the note keeps its ticket)."""
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    try:
        kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
        await cache.apply_page("tickets", [ticket_row(kept), ticket_row(gone)], (1, 2), initial=False)
        in_gone, in_kept = _message(gone, 2, created_at="not a time"), _message(kept, 3, created_at="not a time")
        await cache.apply_page("messages", [_message(gone, 1), in_gone, in_kept], (3, 3), initial=False)
        assert {(s.row_id, s.ticket_id) for s in cache.set_aside} == {(in_gone["id"], gone), (in_kept["id"], kept)}
        assert await cache.prune({kept}) == {gone}
        assert [s.row_id for s in cache.set_aside] == [in_kept["id"]], "only the visible ticket's note is left"
    finally:
        cache.close()


async def test_a_cache_from_before_step_19_keeps_its_notes_and_notes_tickets_from_then_on(tmp_path: Path) -> None:
    """Migration v18 → v19: an older note stays (its ticket not known, so no prune drops it); new notes name theirs."""
    path = tmp_path / "old.sqlite3"
    conn = cache_before(path, cache_schema.V19)
    conn.execute("insert into set_aside (table_name, row_id, reason, at) values ('messages', 'old', 'why', ?)", (TS,))
    conn.commit()
    conn.close()
    cache = Cache.open(path, str(uuid.uuid4()), "agent")
    try:
        ticket = str(uuid.uuid4())
        await cache.apply_page("tickets", [ticket_row(ticket)], (1, 1), initial=False)
        bad = _message(ticket, 1, created_at="not a time")
        await cache.apply_page("messages", [bad], (2, 1), initial=False)
        assert [(s.row_id, s.ticket_id) for s in cache.set_aside] == [("old", None), (bad["id"], ticket)]
        await cache.prune(set())
        assert [s.row_id for s in cache.set_aside] == ["old"]
    finally:
        cache.close()
