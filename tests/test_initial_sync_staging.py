"""The initial sync stages its messages in a file of their own and moves them into the cache at the end of the
messages phase (issue 15, sync/cache/staging.py): pages are appended without index work, and what the UI reads
meanwhile still works. What must hold: staged pages and their cursor survive a restart (the pull continues);
inbox previews and tombstones are in the cache at once; after the move every message is there once, in its
newest version (a realtime edit or tombstone that came meanwhile wins over an older staged copy; a tombstone's
earlier text never lands), queued edits stay on top, the thread index is back, and the staging file is gone.
Pure cache logic on real SQLite files, no server.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sync.cache import Cache, staging
from sync.decisions import LATEST_TS

TS = "2026-11-20T10:{:02d}:00.000000+00:00"
DELETED = "2026-11-20T12:00:00.000000+00:00"


def _ticket(tid: str, customer: str) -> dict[str, Any]:
    return {
        "id": tid,
        "customer_id": customer,
        "subject": "s",
        "status": "open",
        "priority": "normal",
        "created_at": TS.format(0),
        "updated_at": TS.format(0),
        "last_message_at": TS.format(59),
    }


def _msg(mid: str, tid: str, sender: str, content: str, *, at: int, xid: int, deleted: bool = False) -> dict[str, Any]:
    return {
        "id": mid,
        "ticket_id": tid,
        "sender_id": sender,
        "content": "" if deleted else content,
        "created_at": TS.format(at),
        "deleted_at": DELETED if deleted else None,
        "change_xid": xid,
    }


def _in_file(path: Path, sql: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def _staging_cache(tmp_path: Path) -> tuple[Cache, str, str, str]:
    me, customer, tid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    await cache.apply_page("tickets", [_ticket(tid, customer)], (1, 1), initial=True)
    await cache.begin_staging()
    return cache, me, customer, tid


async def test_pages_are_staged_and_moved_at_the_end_of_the_phase(tmp_path: Path) -> None:
    cache, _me, customer, tid = await _staging_cache(tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    page = [_msg(ids[i], tid, customer, f"text {i}", at=i, xid=10 + i) for i in range(5)]
    await cache.apply_page("messages", page, (14, 1), initial=True, commit=True)
    # only the ticket's newest message is in the cache's table at once (the inbox preview), the rest waits
    assert _in_file(cache.path, "select id from messages") == [(ids[4],)]
    assert cache.inbox("all")[0].last_message_preview == "text 4"
    assert await cache.cursor("messages") == (14, 1)  # the staged cursor: the pull goes on after it
    assert _in_file(cache.path, "select count(*) from cursors where name = 'messages'") == [(0,)]
    assert await cache.acount("messages") == 5 and cache.count("messages") == 5  # each row once
    applied = await cache.unstage()
    assert applied.tickets == {tid}
    assert [m.content for m in cache.thread(tid)] == [f"text {i}" for i in range(5)]
    assert _in_file(cache.path, "select xid, id from cursors where name = 'messages'") == [(14, 1)]
    assert not staging.path_of(cache.path).exists()
    plan = _in_file(
        cache.path, "explain query plan select * from messages where ticket_id = ? order by created_at desc", tid
    )
    assert any("messages_thread" in str(row) for row in plan), plan  # the thread index is back
    await cache.finish_initial_sync()
    assert [h.message_id for h in cache.search("text")] != []
    cache.close()


async def test_staged_pages_survive_a_restart_and_the_pull_continues(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    first = [_msg(str(uuid.uuid4()), tid, customer, f"a{i}", at=i, xid=10 + i) for i in range(3)]
    await cache.apply_page("messages", first, (12, 1), initial=True, commit=True)
    held = [_msg(str(uuid.uuid4()), tid, customer, "held", at=30, xid=20)]
    await cache.apply_page("messages", held, (20, 1), initial=True, commit=False)  # not committed: a kill loses it
    store = cache._store  # the process dies here: its connections go without a commit (a rollback)
    store._pool.submit(lambda: store._local.conn.close()).result()  # noqa: PLW0108 (thread-local: read on the writer)
    store.reader.close()
    again = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    await again.begin_staging()
    assert await again.cursor("messages") == (12, 1)
    assert await again.acount("messages") == 3
    await again.apply_page("messages", held, (20, 1), initial=True, commit=True)
    await again.unstage()
    assert sorted(m.content for m in again.thread(tid)) == ["a0", "a1", "a2", "held"]
    again.close()


async def test_newer_copies_win_over_staged_ones_and_a_tombstone_text_never_lands(tmp_path: Path) -> None:
    cache, _me, customer, tid = await _staging_cache(tmp_path)
    edited, deleted, gone_later, newest = (str(uuid.uuid4()) for _ in range(4))
    await cache.apply_page(
        "messages",
        [
            _msg(edited, tid, customer, "before the edit", at=1, xid=10),
            _msg(deleted, tid, customer, "secret text", at=2, xid=11),
            _msg(gone_later, tid, customer, "also secret", at=3, xid=12),
            _msg(newest, tid, customer, "newest", at=9, xid=13),
        ],
        (13, 1),
        initial=True,
        commit=True,
    )
    # meanwhile realtime brings an edit and a tombstone (newer transactions) into the cache's table
    await cache.apply_live(
        {
            "messages": [
                _msg(edited, tid, customer, "after the edit", at=1, xid=50),
                _msg(deleted, tid, customer, "", at=2, xid=51, deleted=True),
            ]
        }
    )
    # and a later page brings the tombstone of another staged message
    tombstone = _msg(gone_later, tid, customer, "", at=3, xid=60, deleted=True)
    await cache.apply_page("messages", [tombstone], (60, 1), initial=True, commit=True)
    await cache.unstage()
    by_id = {m.id: m for m in cache.thread(tid)}
    assert by_id[edited].content == "after the edit"
    assert by_id[deleted].content == "" and by_id[deleted].deleted_at
    assert by_id[gone_later].content == "" and by_id[gone_later].deleted_at
    assert by_id[newest].content == "newest"
    assert _in_file(cache.path, "select count(*) from messages") == [(4,)]
    await cache.finish_initial_sync()
    cache.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"secret text" not in raw and b"also secret" not in raw


async def test_an_edit_queued_meanwhile_stays_on_top_after_the_move(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    page = [_msg(mine, tid, me, "my text", at=1, xid=10), _msg(other, tid, customer, "their text", at=2, xid=11)]
    await cache.apply_page("messages", page, (11, 1), initial=True, commit=True)
    # the user opens the thread (fetched at once) and edits their message before the move
    await cache.apply_backfill(tid, page, [])
    assert cache.queue_edit(mine, "my new text") == tid
    await cache.unstage()
    found = cache.message(mine)
    assert found is not None and found.content == "my new text"
    cache.close()


async def test_an_edit_the_server_refused_before_the_move_does_not_come_back_with_it(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    refused, kept = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [_msg(refused, tid, me, "original", at=1, xid=10), _msg(kept, tid, me, "mine", at=2, xid=11)]
    await cache.apply_backfill(tid, [dict(r) for r in rows], [])  # the thread was opened: fetched at once
    cache.queue_edit(refused, "edited, then refused")
    cache.queue_edit(kept, "edited, still queued")
    newer = _msg(str(uuid.uuid4()), tid, customer, "newer", at=5, xid=12)  # the page's preview, not these two
    await cache.apply_page("messages", [*(dict(r) for r in rows), newer], (12, 1), initial=True, commit=True)
    (entry,) = [e for e in await cache.queued(100) if e.entity_id == refused]
    await cache.lose_edit(entry, dict(rows[0]))  # the server says no: its text is shown again
    assert (found := cache.message(refused)) is not None and found.content == "original"
    await cache.unstage()
    after, still = cache.message(refused), cache.message(kept)
    assert after is not None and (after.content, after.local_state) == ("original", "sent")
    assert still is not None and still.content == "edited, still queued"  # what is still queued stays on top
    cache.close()


async def test_a_delete_the_server_refused_before_the_move_is_not_carried_out_by_it(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    mid = str(uuid.uuid4())
    row = _msg(mid, tid, me, "keep me", at=1, xid=10)
    await cache.apply_backfill(tid, [dict(row)], [])
    cache.queue_delete(mid)
    newer = _msg(str(uuid.uuid4()), tid, customer, "newer", at=5, xid=11)
    await cache.apply_page("messages", [dict(row), newer], (11, 1), initial=True, commit=True)
    (entry,) = [e for e in await cache.queued(100) if e.entity_id == mid]
    await cache.settle(entry, dict(row))  # refused: the server's live row comes back
    assert (found := cache.message(mid)) is not None and (found.content, found.deleted_at) == ("keep me", None)
    await cache.unstage()
    after = cache.message(mid)
    assert after is not None and (after.content, after.deleted_at) == ("keep me", None)
    cache.close()


async def test_a_damaged_staging_file_is_made_anew_and_its_rows_pulled_again(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    page = [_msg(str(uuid.uuid4()), tid, customer, f"m{i}", at=i, xid=10 + i) for i in range(3)]
    await cache.apply_page("messages", page, (12, 1), initial=True, commit=True)
    cache.close()
    staging.path_of(tmp_path / "cache.sqlite3").write_bytes(b"not a database " * 1000)
    again = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    assert await again.acount("messages") == 1  # the preview that went into the cache at once; no error
    await again.begin_staging()  # before: "file is not a database", at every retry of the initial sync
    assert await again.cursor("messages") == (0, 0)  # nothing staged: the pull starts the messages over
    await again.apply_page("messages", page, (12, 1), initial=True, commit=True)
    await again.unstage()
    assert sorted(m.content for m in again.thread(tid)) == ["m0", "m1", "m2"]
    again.close()


async def test_a_rebuilt_cache_does_not_resume_from_the_old_files_staging(tmp_path: Path) -> None:
    cache, me, customer, tid = await _staging_cache(tmp_path)
    page = [_msg(str(uuid.uuid4()), tid, customer, f"m{i}", at=i, xid=10 + i) for i in range(3)]
    await cache.apply_page("messages", page, (12, 1), initial=True, commit=True)
    cache.close()
    (tmp_path / "cache.sqlite3").write_bytes(b"damaged " * 4000)  # the cache file itself is damaged
    again = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    assert not staging.path_of(tmp_path / "cache.sqlite3").exists()
    await again.begin_staging()
    assert await again.cursor("messages") == (0, 0)  # pulled from the start, not from the old file's staged cursor
    again.close()


async def test_a_staged_page_is_written_once_with_what_went_into_the_cache_marked(tmp_path: Path) -> None:
    """The staged rows also in ``messages`` (the previews) are marked as they are inserted: an update of the page
    after its insert read it again (0.9 s of CPU per 1M messages, issue 15). The progress bar counts each row once."""
    cache, _me, customer, tid = await _staging_cache(tmp_path)
    other = str(uuid.uuid4())
    await cache.apply_page("tickets", [_ticket(other, customer)], (2, 1), initial=True)
    page = [
        _msg(str(uuid.uuid4()), t, customer, f"{t[:4]} {i}", at=i, xid=10 + i) for t in (tid, other) for i in range(4)
    ]
    statements: list[str] = []
    await cache._store.amaintain(lambda c: c.set_trace_callback(statements.append))
    await cache.apply_page("messages", page, (20, 1), initial=True, commit=True)
    await cache._store.amaintain(lambda c: c.set_trace_callback(None))
    assert not [s for s in statements if "update staging.messages_staged" in s.lower()]  # before: one per page
    marked = _in_file(staging.path_of(cache.path), "select id from messages_staged where in_cache = 1")
    assert sorted(marked) == sorted(_in_file(cache.path, "select id from messages")) and len(marked) == 2
    assert _in_file(staging.path_of(cache.path), "select count(*) from messages_staged") == [(8,)]
    assert await cache.acount("messages") == 8
    await cache.unstage()
    assert cache.count("messages") == 8
    cache.close()


async def test_rows_an_older_version_staged_are_checked_at_the_move(tmp_path: Path) -> None:
    """sync17b: the staged rows went into ``messages`` as staged. The staging table takes what ``messages`` takes, so
    none fails the move; but their timestamps were bound as sent (``sync_message_rows`` writes a year past 9999 with
    five digits, sorting before every real time), and a file an older version staged holds what that version took.
    Written here the old way, by a plain insert into the file a killed run left: the move stores every timestamp in
    the cache's shape, and sets aside a row whose time is none (before: stored as text, sorting wrongly)."""
    cache, me, customer, tid = await _staging_cache(tmp_path)
    cache.close()  # the older version was stopped during its messages phase
    staged = {
        "plain": TS.format(1),
        "trimmed": "2026-11-20T10:02:00.5+00:00",  # PostgREST's trimmed fraction (the dicts of an older server)
        "far": "20000-01-01T00:00:00.000000+00:00",  # to_char's year past 9999
        "broken": "not a time",
    }
    conn = sqlite3.connect(staging.path_of(tmp_path / "cache.sqlite3"))
    conn.executemany(
        "insert into messages_staged (id, ticket_id, sender_id, content, is_internal, created_at, edited_at,"
        " deleted_at, change_xid, in_cache) values (?, ?, ?, ?, 0, ?, ?, null, 10, 0)",
        [(k, tid, customer, k, v, "soon" if k == "broken" else None) for k, v in staged.items()],
    )
    conn.execute("insert into cursors (name, xid, id) values ('messages', 10, 4)")
    conn.commit()
    conn.close()
    again = Cache.open(tmp_path / "cache.sqlite3", me, "admin")
    try:
        await again.begin_staging()
        await again.unstage()  # before: every row moved as staged
        assert [(m.id, m.created_at) for m in again.thread(tid)] == [
            ("plain", TS.format(1)),
            ("trimmed", "2026-11-20T10:02:00.500000+00:00"),
            ("far", LATEST_TS),
        ]
        assert [(s.table, s.row_id) for s in again.set_aside] == [("messages", "broken")]
        assert again.message("broken") is None
    finally:
        again.close()
