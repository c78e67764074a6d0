"""The cache's writes as functions of an open transaction, called only by ``Cache`` (sync/cache/db.py),
which runs them on its writer thread: local changes with their outbox entries, acknowledgements and
failures from push, and rows applied from pulls and realtime.

Hot paths (applying pulled pages) use ``executemany`` with ``INSERT … ON CONFLICT DO UPDATE``:
one prepared statement for a whole page is several times faster than sqlite-utils' per-row
upsert, and the pull benchmark depends on it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sync import attachments
from sync.cache.files import dumps
from sync.cache.id_lists import IN_LIST, as_param
from sync.decisions import OutboxEntry, canonical_ts, overlay_ticket

TABLES = ("profiles", "tickets", "messages", "attachments", "ticket_reads")


def now_ts() -> str:
    ts = canonical_ts(datetime.now(UTC))
    assert ts is not None
    return ts


# --- local changes: row + outbox entry in the caller's transaction ------------------------------


def _enqueue(conn: sqlite3.Connection, kind: str, entity_id: str, ticket_id: str, payload: Mapping[str, Any]) -> None:
    conn.execute(
        "insert into outbox (kind, entity_id, ticket_id, payload, created_at) values (?, ?, ?, ?, ?)",
        (kind, entity_id, ticket_id, dumps(dict(payload)), now_ts()),
    )


def index_new_messages(conn: sqlite3.Connection, after_rowid: int) -> None:
    """Add messages inserted since ``after_rowid`` to the search index, in one statement."""
    conn.execute(
        "insert into messages_fts (rowid, content) select rowid, content from messages where rowid > ?", (after_rowid,)
    )


def max_message_rowid(conn: sqlite3.Connection) -> int:
    return int(conn.execute("select coalesce(max(rowid), 0) from messages").fetchone()[0])


def next_message_ts(conn: sqlite3.Connection, ticket_id: str) -> str:
    """A pending message's local time: now, but strictly after every message of its thread, so the
    cache orders what was just written after what is there (as the server will, see the migration
    20261129000200_message_order.sql) even when two sends share a clock tick or the server's clock is ahead."""
    now = now_ts()
    last = conn.execute("select max(created_at) from messages where ticket_id = ?", (ticket_id,)).fetchone()[0]
    if last is None or str(last) < now:
        return now
    after = datetime.fromisoformat(str(last)) + timedelta(microseconds=1)
    return after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def queue_message(conn: sqlite3.Connection, row: Mapping[str, Any]) -> None:
    if not_created(conn, str(row["ticket_id"])):
        raise ValueError(_NOT_CREATED)
    before = max_message_rowid(conn)
    row = {**row, "created_at": next_message_ts(conn, str(row["ticket_id"]))}
    conn.execute(
        "insert into messages (id, ticket_id, sender_id, content, is_internal, created_at, local_state)"
        " values (:id, :ticket_id, :sender_id, :content, :is_internal, :created_at, 'pending')",
        row,
    )
    index_new_messages(conn, before)
    _enqueue(
        conn,
        "message",
        str(row["id"]),
        str(row["ticket_id"]),
        {
            "id": row["id"],
            "ticket_id": row["ticket_id"],
            "sender_id": row["sender_id"],
            "content": row["content"],
            "is_internal": bool(row["is_internal"]),
        },
    )


def queue_message_with_files(
    conn: sqlite3.Connection, row: Mapping[str, Any], files: Sequence[Mapping[str, Any]]
) -> None:
    """A message and its attachments in one transaction, queued in the order the server needs them:
    each file's upload, then the message (so others never see it without its files), then the
    attachment rows (which reference the message)."""
    for f in files:
        conn.execute(
            "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256, object_path,"
            " created_at, local_path, local_state) values (:id, :message_id, :ticket_id, :uploader_id, :name, :mime,"
            " :size, :sha256, :object_path, :created_at, :local_path, 'pending')",
            {"created_at": now_ts(), **f},
        )
        _enqueue(
            conn,
            "attachment_upload",
            str(f["id"]),
            str(f["ticket_id"]),
            {
                "id": f["id"],
                "message_id": f["message_id"],
                "object_path": f["object_path"],
                "local_path": f["local_path"],
                "mime": f["mime"],
            },
        )
    queue_message(conn, row)
    for f in files:
        _enqueue(
            conn,
            "attachment",
            str(f["id"]),
            str(f["ticket_id"]),
            {
                "id": f["id"],
                "message_id": f["message_id"],
                "ticket_id": f["ticket_id"],
                "name": f["name"],
                "sha256": f["sha256"],
                "object_path": f["object_path"],
            },
        )


def queue_ticket(conn: sqlite3.Connection, row: Mapping[str, Any]) -> None:
    conn.execute(
        "insert into tickets (id, customer_id, assignee_id, subject, status, priority, created_at, updated_at,"
        " last_message_at, local_state) values (:id, :customer_id, :assignee_id, :subject, :status, :priority,"
        " :created_at, :created_at, :created_at, 'pending')",
        {"created_at": now_ts(), **row},
    )
    _enqueue(
        conn,
        "ticket_create",
        str(row["id"]),
        str(row["id"]),
        {
            "id": row["id"],
            "customer_id": row["customer_id"],
            "assignee_id": row["assignee_id"],
            "subject": row["subject"],
            "status": row["status"],
            "priority": row["priority"],
        },
    )


def queue_ticket_update(conn: sqlite3.Connection, ticket_id: str, changes: Mapping[str, Any]) -> None:
    """Apply field changes locally and queue them with the values they replace (the merge base)."""
    current = conn.execute("select * from tickets where id = ?", (ticket_id,)).fetchone()
    if current is None:
        raise KeyError(ticket_id)
    if current["error"] == FOREIGN_TICKET_ERROR:
        raise ValueError(_NOT_CREATED)
    create = conn.execute(
        "select seq, payload from outbox where kind = 'ticket_create' and entity_id = ? and state = 'queued'",
        (ticket_id,),
    ).fetchone()
    if create is not None:
        # not on the server yet: fold the change into the creation itself
        payload = json.loads(create["payload"]) | dict(changes)
        conn.execute("update outbox set payload = ? where seq = ?", (dumps(payload), create["seq"]))
    else:
        queued = conn.execute(
            "select seq, payload from outbox where kind = 'ticket_update' and entity_id = ?"
            " and state = 'queued' order by seq desc limit 1",
            (ticket_id,),
        ).fetchone()
        if queued is not None:
            payload = json.loads(queued["payload"])
            for key, value in changes.items():
                payload["base"].setdefault(key, current[key])
                payload["wanted"][key] = value
            conn.execute("update outbox set payload = ? where seq = ?", (dumps(payload), queued["seq"]))
        else:
            _enqueue(
                conn,
                "ticket_update",
                ticket_id,
                ticket_id,
                {"id": ticket_id, "base": {k: current[k] for k in changes}, "wanted": dict(changes)},
            )
    sets = ", ".join(f"{key} = :{key}" for key in changes)
    conn.execute(
        f"update tickets set {sets}, local_state = 'pending', error = null where id = :id", {**changes, "id": ticket_id}
    )


def queue_read(conn: sqlite3.Connection, ticket_id: str, user_id: str, at: str) -> None:
    conn.execute(
        "insert into ticket_reads (ticket_id, user_id, last_read_at) values (?, ?, ?)"
        " on conflict (ticket_id, user_id) do update"
        " set last_read_at = max(last_read_at, excluded.last_read_at)",
        (ticket_id, user_id, at),
    )
    if not_created(conn, ticket_id):
        return  # read here; the server's ticket under its id is another's
    payload = {"ticket_id": ticket_id, "user_id": user_id, "last_read_at": at}
    updated = conn.execute(
        "update outbox set payload = ? where kind = 'read' and entity_id = ? and state = 'queued'",
        (dumps(payload), ticket_id),
    ).rowcount
    if not updated:
        _enqueue(conn, "read", ticket_id, ticket_id, payload)


def save_draft(conn: sqlite3.Connection, ticket_id: str, text: str) -> None:
    if text:
        conn.execute(
            "insert into drafts (ticket_id, text, updated_at) values (?, ?, ?) on conflict (ticket_id)"
            " do update set text = excluded.text, updated_at = excluded.updated_at",
            (ticket_id, text, now_ts()),
        )
    else:
        conn.execute("delete from drafts where ticket_id = ?", (ticket_id,))


# --- outbox bookkeeping for push ------------------------------------------------------------------


def queued_entries(conn: sqlite3.Connection, limit: int) -> list[OutboxEntry]:
    rows = conn.execute(
        "select seq, kind, entity_id, ticket_id, payload from outbox where state = 'queued' order by seq limit ?",
        (limit,),
    ).fetchall()
    return [OutboxEntry(r["seq"], r["kind"], r["entity_id"], r["ticket_id"], json.loads(r["payload"])) for r in rows]


def acknowledge(conn: sqlite3.Connection, entries: Sequence[OutboxEntry]) -> None:
    """The server has these: drop their outbox rows and mark the local rows sent. A ticket entry that was
    changed while in flight (a change folded into it after the pusher read it) keeps what was added."""
    for e in entries:
        if e.kind in ("ticket_create", "ticket_update"):
            _keep_folded(conn, e)
    conn.executemany("delete from outbox where seq = ?", [(e.seq,) for e in entries])
    messages = [(e.entity_id,) for e in entries if e.kind == "message"]
    if messages:
        conn.executemany("update messages set local_state = 'sent', error = null where id = ?", messages)
    uploaded = [(e.entity_id,) for e in entries if e.kind == "attachment_upload"]
    if uploaded:
        conn.executemany("update attachments set local_state = 'uploaded', error = null where id = ?", uploaded)
    described = [(e.entity_id,) for e in entries if e.kind == "attachment"]
    if described:
        conn.executemany("update attachments set local_state = 'sent', error = null where id = ?", described)
    tickets = [(e.entity_id, e.entity_id) for e in entries if e.kind in ("ticket_create", "ticket_update")]
    if tickets:
        conn.executemany(
            "update tickets set local_state = 'sent', error = null where id = ? and not exists"
            " (select 1 from outbox where entity_id = ? and kind like 'ticket%')",
            tickets,
        )


def _keep_folded(conn: sqlite3.Connection, sent: OutboxEntry) -> None:
    """``queue_ticket_update`` folds a change into a queued entry, which may be in flight: what the server
    acknowledged is only what was sent, so whatever was folded in meanwhile is queued again as an update
    whose base is the value sent (a regression: "take, then change the status" lost the status)."""
    row = conn.execute("select payload from outbox where seq = ?", (sent.seq,)).fetchone()
    if row is None:
        return
    now = json.loads(row["payload"])
    if sent.kind == "ticket_create":
        before, after = dict(sent.payload), now
    else:
        before, after = dict(sent.payload["wanted"]), now["wanted"]
    base = {k: before.get(k, now.get("base", {}).get(k)) for k, v in after.items() if before.get(k, _MISSING) != v}
    if base:
        _enqueue(
            conn,
            "ticket_update",
            sent.entity_id,
            sent.ticket_id,
            {"id": sent.entity_id, "base": base, "wanted": {k: after[k] for k in base}},
        )


_MISSING = object()


def fail(conn: sqlite3.Connection, entry: OutboxEntry, reason: str) -> None:
    """The server refused this entry for good: keep it visible as failed, with the reason."""
    conn.execute(
        "update outbox set state = 'failed', error = ?, attempts = attempts + 1 where seq = ?", (reason, entry.seq)
    )
    if entry.kind == "message":
        conn.execute("update messages set local_state = 'failed', error = ? where id = ?", (reason, entry.entity_id))
    elif entry.kind in ("ticket_create", "ticket_update"):
        conn.execute("update tickets set local_state = 'failed', error = ? where id = ?", (reason, entry.entity_id))
    elif entry.kind in ("attachment_upload", "attachment"):
        # a message goes out whole or not at all: its queued message and attachment entries fail with it
        message_id = str(entry.payload["message_id"])
        conn.execute("update attachments set local_state = 'failed', error = ? where id = ?", (reason, entry.entity_id))
        why = f"A file could not be sent: {reason}"
        conn.execute(
            "update outbox set state = 'failed', error = ? where state = 'queued' and ("
            " (kind = 'message' and entity_id = ?) or (kind in ('attachment_upload', 'attachment')"
            "  and entity_id in (select id from attachments where message_id = ?)))",
            (why, message_id, message_id),
        )
        conn.execute(
            "update messages set local_state = 'failed', error = ? where id = ? and local_state <> 'sent'",
            (why, message_id),
        )


def mark_ticket_error(conn: sqlite3.Connection, ticket_id: str, reason: str) -> None:
    conn.execute("update tickets set local_state = 'failed', error = ? where id = ?", (reason, ticket_id))


def drop(conn: sqlite3.Connection, entry: OutboxEntry) -> None:
    conn.execute("delete from outbox where seq = ?", (entry.seq,))


def retry_message(conn: sqlite3.Connection, message_id: str) -> bool:
    if conn.execute(
        "select 1 from messages where id = ? and error in (?, ?)", (message_id, FOREIGN_ID_ERROR, FOREIGN_TICKET_ERROR)
    ).fetchone():
        # sent again under the same id it would be taken for delivered again (fail_foreign), or go to the ticket
        # another holds under its ticket's id (sync/cache/foreign_tickets.py)
        return False
    n = conn.execute(
        "update outbox set state = 'queued', error = null where state = 'failed' and (entity_id = ?"
        " or entity_id in (select id from attachments where message_id = ?))",
        (message_id, message_id),
    ).rowcount
    conn.execute(
        "update attachments set local_state = 'pending', error = null where message_id = ? and local_state = 'failed'",
        (message_id,),
    )
    conn.execute(
        "update messages set local_state = 'pending', error = null where id = ? and local_state = 'failed'",
        (message_id,),
    )
    return n > 0


def discard_message(conn: sqlite3.Connection, message_id: str) -> bool:
    row = conn.execute("select local_state from messages where id = ?", (message_id,)).fetchone()
    if row is None or row["local_state"] == "sent":
        return False
    conn.execute(
        "delete from outbox where (entity_id = ? and kind = 'message') or (kind in ('attachment_upload',"
        " 'attachment') and entity_id in (select id from attachments where message_id = ?))",
        (message_id, message_id),
    )
    conn.execute("delete from attachments where message_id = ?", (message_id,))
    conn.execute("delete from messages where id = ?", (message_id,))
    return True


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    # two index-only counts (outbox_state): cheap enough to run after every local write
    queued = conn.execute("select count(*) from outbox where state = 'queued'").fetchone()[0]
    failed = conn.execute("select count(*) from outbox where state = 'failed'").fetchone()[0]
    return int(queued), int(failed)


# --- cursors and applying server rows -----------------------------------------------------------


def get_cursor(conn: sqlite3.Connection, name: str) -> tuple[int, int]:
    row = conn.execute("select xid, id from cursors where name = ?", (name,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def set_cursor(conn: sqlite3.Connection, name: str, cursor: tuple[int, int]) -> None:
    conn.execute(
        "insert into cursors (name, xid, id) values (?, ?, ?) on conflict (name) do update set"
        " xid = excluded.xid, id = excluded.id",
        (name, cursor[0], cursor[1]),
    )


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("select value from meta where key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "insert into meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value",
        (key, value),
    )


# tickets whose thread must still be fetched by id (they became visible); kept in the cache, in the
# same transaction as the ticket row and the cursor that passed it, so a failed backfill is retried
_BACKFILL_KEY = "pending_backfill"


def pending_backfills(conn: sqlite3.Connection) -> set[str]:
    value = get_meta(conn, _BACKFILL_KEY)
    return set(json.loads(value)) if value else set()


def add_backfills(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> None:
    ids = set(ticket_ids)
    if ids:
        set_meta(conn, _BACKFILL_KEY, json.dumps(sorted(pending_backfills(conn) | ids)))


def backfill_done(conn: sqlite3.Connection, ticket_id: str) -> None:
    pending = pending_backfills(conn)
    if ticket_id in pending:
        set_meta(conn, _BACKFILL_KEY, json.dumps(sorted(pending - {ticket_id})))


# a server copy older than the cached one (by its writing transaction, schema v16) never lands over it
_MESSAGE_UPSERT = (
    "insert into messages (id, ticket_id, sender_id, content, is_internal, created_at, edited_at, deleted_at,"
    " local_state, error, change_xid) values (?, ?, ?, ?, ?, ?, ?, ?, 'sent', null, ?)"
    " on conflict (id) do update set content = excluded.content, is_internal = excluded.is_internal,"
    " created_at = excluded.created_at, edited_at = excluded.edited_at, deleted_at = excluded.deleted_at,"
    " local_state = 'sent', error = null, change_xid = coalesce(excluded.change_xid, messages.change_xid)"
    " where (excluded.change_xid is null or messages.change_xid is null or excluded.change_xid >= messages.change_xid)"
    " and messages.ticket_id = excluded.ticket_id and messages.sender_id is excluded.sender_id"  # see fail_foreign
)
FOREIGN_TICKET_ERROR = (
    "The server holds another ticket under this new ticket's id, so it was not created and its messages were"
    ' not sent. Use "Send as a new ticket" to send them again.'
)
_NOT_CREATED = 'this ticket was not created on the server: use "Send as a new ticket" first'


def not_created(conn: sqlite3.Connection, ticket_id: str) -> bool:
    """Whether this new ticket's creation failed for its id (sync/cache/foreign_tickets.py): nothing more may be
    queued under its id, which names another's ticket on the server."""
    row = conn.execute("select error from tickets where id = ?", (ticket_id,)).fetchone()
    return row is not None and row[0] == FOREIGN_TICKET_ERROR


FOREIGN_ID_ERROR = (
    "The server holds another message under this reply's id, so this reply was not sent."
    " Copy its text into a new reply, then discard this one."
)


def fail_foreign(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, set[str]]:
    """Server rows whose id names a local message of another ticket or sender are never adopted (the upserts'
    ``where`` says so); the local message is marked failed instead, with its queued entries. Ids are random
    uuids made here, so only a compromised server sends one: adopting it showed another thread's text as this
    user's own reply, and the push, which ignores duplicates, took the server's row for the reply's delivery.
    Returns the failed messages by their (local) ticket, for the thread to show them failed."""
    failed: dict[str, set[str]] = {}
    for message_id in ids:
        if (row := conn.execute("select ticket_id from messages where id = ?", (message_id,)).fetchone()) is not None:
            failed.setdefault(str(row[0]), set()).add(message_id)
        conn.execute(
            "update messages set local_state = 'failed', error = ? where id = ?", (FOREIGN_ID_ERROR, message_id)
        )
        conn.execute(
            "update outbox set state = 'failed', error = ? where state = 'queued' and ((kind = 'message'"
            " and entity_id = ?) or (kind in ('attachment_upload', 'attachment') and entity_id in"
            " (select id from attachments where message_id = ?)))",
            (FOREIGN_ID_ERROR, message_id, message_id),
        )
    return failed


@dataclass(frozen=True)
class Known:
    """What the cache holds under the ids of a batch of server messages, read in one lookup (``known_messages``):
    the ids a local message of another ticket or sender has (``fail_foreign``), and those of sent messages already
    here (the rest are new: what makes a notification, ``apply_message_rows``)."""

    foreign: set[str]
    sent: set[str]


def known_messages(conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> Known:
    """``Known`` of these server rows: one query per 500 ids (a realtime batch, a pull page), not one per use."""
    theirs = {str(r["id"]): (str(r["ticket_id"]), r["sender_id"] and str(r["sender_id"])) for r in rows}
    ids, known = list(theirs), Known(set(), set())
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            f"select id, ticket_id, sender_id, local_state from messages where id {IN_LIST}", (as_param(chunk),)
        ):
            if theirs[row[0]] != (row[1], row[2]):
                known.foreign.add(row[0])
            elif row[3] == "sent":
                known.sent.add(row[0])
    return known


def ticket_exists(conn: sqlite3.Connection, ticket_id: str) -> bool:
    return conn.execute("select 1 from tickets where id = ?", (ticket_id,)).fetchone() is not None


def apply_message_rows(
    conn: sqlite3.Connection, rows: list[dict[str, Any]], me: str, initial: bool, sent: set[str]
) -> dict[str, tuple[set[str], bool]]:
    """Upsert server messages; per ticket, the message ids and whether any is new here and from someone else
    (what makes a notification): not among ``sent``, those already here as sent (``known_messages``, read before
    the rows were laid over). During the initial pull nothing counts as new, and the rows are not added
    to the search index one page at a time: ``rebuild_search`` indexes them all at its end. None is under the
    id of a local message of another ticket or sender: the caller took those out (``Known.foreign``), and the
    upsert's ``where`` would not adopt one anyway."""
    new_ids = set() if initial else {r["id"] for r in rows} - sent
    by_ticket = apply_messages(conn, rows, index=not initial)
    senders = {r["id"]: r["sender_id"] for r in rows}
    return {tid: (ids_, any(i in new_ids and senders[i] != me for i in ids_)) for tid, ids_ in by_ticket.items()}


def message_values(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """A server message row as the cache stores it: id, ticket_id, sender_id, content, is_internal, created_at,
    edited_at, deleted_at, change_xid (the column order of ``_MESSAGE_UPSERT`` and of the staging table)."""
    return (
        r["id"],
        r["ticket_id"],
        r["sender_id"],
        r["content"],
        1 if r.get("is_internal") else 0,
        canonical_ts(r["created_at"]),
        canonical_ts(r.get("edited_at")),
        canonical_ts(r.get("deleted_at")),
        int(r["change_xid"]) if r.get("change_xid") is not None else None,
    )


def apply_messages(
    conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]], *, index: bool = True
) -> dict[str, set[str]]:
    """Upsert server messages; returns message ids by ticket id. ``index=False`` leaves new rows out of the
    search index (the initial sync builds it once at its end, see ``rebuild_search``)."""
    params = []
    by_ticket: dict[str, set[str]] = {}
    # thread order makes the (ticket_id, created_at) index inserts mostly sequential
    for r in sorted(rows, key=lambda r: (str(r["ticket_id"]), str(r["created_at"]))):
        params.append(message_values(r))
        by_ticket.setdefault(str(r["ticket_id"]), set()).add(str(r["id"]))
    before = max_message_rowid(conn)
    conn.executemany(_MESSAGE_UPSERT, params)
    if index:
        index_new_messages(conn, before)  # updated rows are re-indexed by the messages_fts_au trigger
    return by_ticket


_SCOPE_KEY = "sync_scope_days"


def get_scope_days(conn: sqlite3.Connection) -> int | None:
    value = get_meta(conn, _SCOPE_KEY)
    return int(value) if value else None


def set_scope_days(conn: sqlite3.Connection, days: int | None, scoped_tables: Iterable[str]) -> None:
    """The partial sync's setting (sync/scope.py); widening it restarts the scoped tables' cursors, so what
    the narrower scope skipped is pulled (re-pulled rows are upserts: nothing duplicates)."""
    old = get_scope_days(conn)
    widened = old is not None and (days is None or days > old)
    if days is None:
        conn.execute("delete from meta where key = ?", (_SCOPE_KEY,))
    else:
        set_meta(conn, _SCOPE_KEY, str(days))
    if widened:
        conn.executemany("delete from cursors where name = ?", [(t,) for t in scoped_tables])


def rebuild_search(conn: sqlite3.Connection) -> None:
    """Build the search indexes (message contents, ticket subjects) from their tables in one pass each (FTS5
    ``rebuild``): at the end of the initial sync, several times cheaper than indexing a million rows page by
    page (each page's index segment is merged again and again). It also repairs whatever the update triggers
    did to rows that were not indexed yet (an edit pulled twice during the initial sync)."""
    conn.execute("insert into messages_fts (messages_fts) values ('rebuild')")
    conn.execute("insert into tickets_fts (tickets_fts) values ('rebuild')")


BULK = "bulk_apply"  # meta key set inside an initial-sync page's transaction only: triggers skip per-row work


def recount_unread(conn: sqlite3.Connection) -> None:
    """Every ticket's unread state (schema v9's ``others_last_at`` and ``my_read_at``): the end of the initial
    sync, whose pages leave them alone (schema v12). ``others_last_at`` is each ticket's first row down the thread
    index (newest first) that is live and by someone else, usually its newest message: a grouped ``max`` over all
    messages read every message's row (1M random table reads, 1.8 to 2.0 s of CPU at 1M; the probe per ticket
    0.7 s, issue 15)."""
    me = "coalesce((select value from meta where key = 'user_id'), '')"
    conn.execute(
        "update tickets set others_last_at = (select m.created_at from messages m where m.ticket_id = tickets.id"
        f" and m.deleted_at is null and m.sender_id <> {me} order by m.created_at desc limit 1)"
    )
    conn.execute(
        "update tickets set my_read_at = r.last_read_at from ticket_reads r"
        f" where r.ticket_id = tickets.id and r.user_id = {me} and tickets.my_read_at is not r.last_read_at"
    )


_TICKET_COLUMNS = (
    "id",
    "customer_id",
    "assignee_id",
    "subject",
    "status",
    "priority",
    "created_at",
    "updated_at",
    "last_message_at",
    "first_response_at",
    "resolved_at",
)  # not snoozed_until: the server's ticket row has none, the time comes from ``ticket_snoozes`` (cache/snoozes.py)
_TICKET_TS = frozenset({"created_at", "updated_at", "last_message_at", "first_response_at", "resolved_at"})
_TICKET_UPSERT = (
    f"insert into tickets ({', '.join(_TICKET_COLUMNS)}) values ({', '.join('?' * len(_TICKET_COLUMNS))})"
    " on conflict (id) do update set " + ", ".join(f"{c} = excluded.{c}" for c in _TICKET_COLUMNS[1:])
)


def pending_ticket_changes(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Field changes still queued per ticket (the overlay a pulled ticket row gets)."""
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "select entity_id, payload from outbox where kind = 'ticket_update' and state = 'queued' order by seq"
    ):
        out.setdefault(r["entity_id"], {}).update(json.loads(r["payload"])["wanted"])
    return out


def apply_tickets(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Upsert server tickets (with unsent local changes on top); returns the previous local row of
    each ticket (None when it was new to this cache), for the backfill decision. One query per 500
    rows for what the cache held and one ``executemany`` (the initial sync brings 100,000 tickets: row by
    row it took 72 s at a load of 18)."""
    rows = list(rows)
    pending = pending_ticket_changes(conn)
    held: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(str(r["id"]) for r in rows))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for old in conn.execute(
            f"select id, assignee_id, local_state from tickets where id {IN_LIST}", (as_param(chunk),)
        ):
            held[old["id"]] = {"assignee_id": old["assignee_id"], "local_state": old["local_state"]}
    previous: dict[str, dict[str, Any] | None] = {}
    params = []
    for r in rows:
        tid = str(r["id"])
        previous[tid] = held.get(tid)
        merged = overlay_ticket(r, pending.get(tid, {}))
        # a ticket twice in one batch: its second row finds the first one's upsert (local_state is kept)
        held[tid] = {
            "assignee_id": merged.get("assignee_id"),
            "local_state": (held.get(tid) or {}).get("local_state", "sent"),
        }
        params.append([canonical_ts(merged.get(c)) if c in _TICKET_TS else merged.get(c) for c in _TICKET_COLUMNS])
    conn.executemany(_TICKET_UPSERT, params)
    return previous


def apply_profiles(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    conn.executemany(
        "insert into profiles (id, role, display_name, avatar_url, updated_at, created_at) values (?, ?, ?, ?, ?, ?)"
        " on conflict (id) do update set role = excluded.role, display_name = excluded.display_name,"
        " avatar_url = excluded.avatar_url, updated_at = excluded.updated_at,"
        " created_at = coalesce(excluded.created_at, profiles.created_at)",
        [
            (
                r["id"],
                r["role"],
                r.get("display_name") or "",
                r.get("avatar_url"),
                canonical_ts(r.get("updated_at")),
                canonical_ts(r.get("created_at")),
            )
            for r in rows
        ],
    )


def apply_reads(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> set[str]:
    params = [(r["ticket_id"], r["user_id"], canonical_ts(r["last_read_at"])) for r in rows]
    conn.executemany(
        "insert into ticket_reads (ticket_id, user_id, last_read_at) values (?, ?, ?)"
        " on conflict (ticket_id, user_id) do update set"
        " last_read_at = max(last_read_at, excluded.last_read_at)",
        params,
    )
    return {p[0] for p in params}


def local_ticket_ids(conn: sqlite3.Connection) -> set[str]:
    # every cached ticket, `failed` ones included (a refused offline update marks the ticket failed, and
    # that refusal is often because it was reassigned away); unsent work is protected by the outbox
    return {r[0] for r in conn.execute("select id from tickets")}


def server_ticket_ids(conn: sqlite3.Connection) -> Iterator[str]:
    """Every cached ticket but those whose creation is still in the outbox (queued or refused)."""
    for (ticket_id,) in conn.execute(
        "select id from tickets where id not in (select entity_id from outbox where kind = 'ticket_create')"
    ):
        yield ticket_id


def tickets_with_local_work(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select distinct ticket_id from outbox")}


@dataclass
class AppliedAttachments:
    changed: dict[str, set[str]]  # ticket -> message ids whose files changed
    stale: list[tuple[str, str | None]]  # (id, local_path) of the rows the server no longer has, deleted


_ATTACHMENT_COLUMNS = "id message_id ticket_id uploader_id name mime size sha256 object_path created_at".split()


def apply_attachments(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> AppliedAttachments:
    """Server attachment rows; a row we queued ourselves keeps its local file.

    A row the server deleted leaves the cache by its tombstone (sync/cache/attachment_deletes.py), paged after the
    attachments; until then (and against a server without tombstones) the cache holds it. One case matters: its
    ``object_path`` (``<ticket>/<message>/<key name>``) is unique on the server and in the cache, so a file renamed
    onto the name of a deleted one (or a new file under it) could not go in, and was set aside at every pull that
    brought it. The server's own rule settles it: a server row for another id under that path means the row the
    cache holds there is gone from the server (or renamed away: its new row comes by the cursor in turn), so the
    cached row is deleted, before the server's row goes in (row by row: a page may rename one file away from a path
    and another onto it). Likewise a server row under an id the cache holds for another message (the server let
    another message's attachment take a deleted one's id, review20): the cached row is the deleted one, so it goes
    with its files rather than take the new row's name and file under its old message. Only a row the server had
    (``sent``): a file this user queued keeps its row, and the server's is set aside as before."""
    changed: dict[str, set[str]] = {}
    stale: list[tuple[str, str | None]] = []
    for r in rows:
        values = {k: r.get(k) for k in _ATTACHMENT_COLUMNS}
        if not attachments.is_attachment_id(values["id"]):  # it names files on disk: set aside (set_aside.ROW_ERRORS)
            raise ValueError(f"an attachment id that is not a uuid: {str(values['id'])[:40]!r}")
        values["created_at"] = canonical_ts(values["created_at"])  # as every timestamp of the cache (schema v18)
        for old_id, local_path, old_message, old_ticket, state in conn.execute(
            "select id, local_path, message_id, ticket_id, local_state from attachments"
            " where object_path = ? and id <> ? or id = ? and message_id <> ?",
            (values["object_path"], values["id"], values["id"], values["message_id"]),
        ).fetchall():
            if state != "sent":  # this user's queued file keeps its row; the server's is set aside
                if old_id == values["id"]:
                    raise ValueError("an attachment id this user queued for another message")
                continue  # its path: the insert below fails on it
            conn.execute("delete from attachments where id = ?", (old_id,))
            stale.append((str(old_id), local_path))
            changed.setdefault(str(old_ticket), set()).add(str(old_message))
        conn.execute(
            "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256, object_path,"
            " created_at, local_state) values (:id, :message_id, :ticket_id, :uploader_id, :name, :mime, :size,"
            " :sha256, :object_path, :created_at, 'sent') on conflict (id) do update set name = excluded.name,"
            " mime = excluded.mime, size = excluded.size, sha256 = excluded.sha256,"
            " object_path = excluded.object_path, created_at = excluded.created_at, local_state = 'sent', error = null",
            values,
        )
        changed.setdefault(str(r["ticket_id"]), set()).add(str(r["message_id"]))
    return AppliedAttachments(changed, stale)


def remove_tickets(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> None:
    ids = [(t,) for t in ticket_ids]
    conn.executemany("delete from attachments where ticket_id = ? and local_state = 'sent'", ids)
    conn.executemany("delete from messages where ticket_id = ? and local_state = 'sent'", ids)
    conn.executemany("delete from ticket_reads where ticket_id = ?", ids)
    conn.executemany("delete from drafts where ticket_id = ?", ids)
    conn.executemany("delete from tickets where id = ?", ids)


def set_attachment_file(conn: sqlite3.Connection, attachment_id: str, local_path: str | None, used: float) -> bool:
    """Whether the row was there to take it."""
    cur = conn.execute(
        "update attachments set local_path = ?, last_used = ? where id = ?", (local_path, used, attachment_id)
    )
    return cur.rowcount > 0


def forget_attachment_files(conn: sqlite3.Connection, attachment_ids: Iterable[str]) -> None:
    """Downloaded copies evicted from disk: they will be downloaded again when opened."""
    conn.executemany(
        "update attachments set local_path = null where id = ? and local_state = 'sent'", [(i,) for i in attachment_ids]
    )
