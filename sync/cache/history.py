"""Edits, deletes and revisions in the cache (issue 13): the SQL of the ``message_edit`` and
``message_delete`` outbox kinds, of dropping a deleted message's text, and of the staff-only revisions.
Called only by ``Cache`` (sync/cache/db.py) inside its transactions.

- **Edit**: the local row shows the new text at once; the outbox entry carries the text the user saw
  (``seen``) and the new one (``content``), and is applied on the server only if the row still holds
  ``seen`` (compare-and-set, sync/history.py). Each edit is its own entry, FIFO: a second edit's ``seen`` is
  the first one's ``content``, so they chain without folding into an entry that may be in flight. A
  message still failed (never on the server) takes the new text into its own queued payload instead.
- **Delete**: the local row becomes a tombstone at once (text cleared, so it leaves the FTS index with it)
  and a ``message_delete`` entry carries only the id.
- **Pulled rows** get the queued edits/deletes laid over them *before* they are written (``overlay``), so
  a pull never puts back, even for a moment, a text the user replaced or deleted.
- **Dropping text** (``drop_text``): when a tombstone lands on a row that still had text, its revisions,
  its queued edits (their payloads hold text), its attachment rows and any copy of the text in the ticket's
  draft go in the same transaction; the FTS entry goes by the update trigger (schema v1). What SQLite
  keeps of deleted bytes is handled by ``scrub`` and the writer's ``secure_delete`` (sync/cache/files.py).
- **What a drop owes after its commit** (deleting the downloaded files, the scrub) is noted in ``meta``
  (``drop_owed``) by the same transaction and cleared by the scrub that does it (``settle_owed``), so a process
  killed or cancelled between the commit and the cleanup leaves it to the next open of the cache
  (``Cache.open``) instead of leaving a deleted message's files, or its words in the search index, on disk.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sync import attachments
from sync.cache.files import dumps
from sync.cache.id_lists import IN_LIST, as_param
from sync.decisions import OutboxEntry, canonical_ts

EDIT: Final = "message_edit"
DELETE: Final = "message_delete"
PURGE: Final = "attachment_purge"  # the files this user uploaded for a message deleted since, to remove from Storage
OWED: Final = "drop_owed"  # meta key: {"files": [paths still to delete], "seq": drops noted, "scrubbed": seq scrubbed}


@dataclass(frozen=True)
class Dropped:
    """A message whose text this cache just dropped (a tombstone landed, or the user deleted it)."""

    message_id: str
    ticket_id: str
    content: str


@dataclass(frozen=True)
class Revision:
    """An earlier text of an edited message, as staff see it."""

    id: str
    message_id: str
    content: str
    edited_by: str | None
    replaced_at: str


def _enqueue(conn: sqlite3.Connection, kind: str, ticket_id: str, payload: Mapping[str, Any], now: str) -> None:
    conn.execute(
        "insert into outbox (kind, entity_id, ticket_id, payload, created_at) values (?, ?, ?, ?, ?)",
        (kind, str(payload["id"]), ticket_id, dumps(dict(payload)), now),
    )


def _own_live_message(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row:
    row = conn.execute(
        "select id, ticket_id, sender_id, content, deleted_at, local_state from messages where id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"no such message in the cache: {message_id}")
    if row["deleted_at"] is not None:
        raise ValueError("this message was deleted")
    found: sqlite3.Row = row
    return found


def queue_edit(conn: sqlite3.Connection, message_id: str, me: str, content: str, now: str) -> str | None:
    """The user's new text for their message; returns its ticket id (None when the text did not change)."""
    row = _own_live_message(conn, message_id)
    if row["sender_id"] != me:
        raise ValueError("only the sender edits a message")
    if row["content"] == content:
        return None
    ticket_id = str(row["ticket_id"])
    if row["local_state"] == "failed":
        # never reached the server: the new text simply replaces what its (failed) entry will send
        for entry in conn.execute(
            "select seq, payload from outbox where kind = 'message' and entity_id = ?", (message_id,)
        ).fetchall():
            payload = json.loads(entry["payload"]) | {"content": content}
            conn.execute("update outbox set payload = ? where seq = ?", (dumps(payload), entry["seq"]))
        conn.execute("update messages set content = ? where id = ?", (content, message_id))
        return ticket_id
    _enqueue(conn, EDIT, ticket_id, {"id": message_id, "seen": row["content"], "content": content}, now)
    conn.execute("update messages set content = ?, edited_at = ? where id = ?", (content, now, message_id))
    return ticket_id


def queue_delete(
    conn: sqlite3.Connection, message_id: str, me: str, is_admin: bool, now: str, *, files_dir: Path
) -> tuple[Dropped | None, list[str]]:
    """Delete a message that is on the server (the caller discards unsent ones): a local tombstone at once,
    and an entry with only the id. Returns what was dropped (None when it was already deleted) and the local
    files of its attachments (``drop_text``), for the caller to delete."""
    row = conn.execute(
        "select id, ticket_id, sender_id, content, deleted_at from messages where id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"no such message in the cache: {message_id}")
    if row["deleted_at"] is not None:
        return None, []
    if row["sender_id"] != me and not is_admin:
        raise ValueError("only the sender or an admin deletes a message")
    dropped = Dropped(message_id, str(row["ticket_id"]), str(row["content"]))
    _enqueue(conn, DELETE, dropped.ticket_id, {"id": message_id}, now)
    conn.execute("update messages set content = '', deleted_at = ? where id = ?", (now, message_id))
    return dropped, drop_text(conn, [dropped], me, now, files_dir)


def _queued(conn: sqlite3.Connection) -> dict[str, tuple[str, Any, str]]:
    """Per message with queued history entries: the last one's (kind, payload, queued at)."""
    out: dict[str, tuple[str, Any, str]] = {}
    for r in conn.execute(
        "select entity_id, kind, payload, created_at from outbox where state = 'queued' and kind in (?, ?)"
        " order by seq",
        (EDIT, DELETE),
    ):
        kind = r["kind"]
        if out.get(r["entity_id"], ("",))[0] != DELETE:  # nothing overrides a queued delete
            out[r["entity_id"]] = (kind, json.loads(r["payload"]), r["created_at"])
    return out


def queued_ids(conn: sqlite3.Connection) -> set[str]:
    """The messages with a queued edit or delete."""
    return {
        str(r[0])
        for r in conn.execute(
            "select distinct entity_id from outbox where state = 'queued' and kind in (?, ?)", (EDIT, DELETE)
        )
    }


def overlay(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Server message rows with this user's queued edits and deletes on top (shown until the server has them)."""
    queued = _queued(conn)
    if not queued:
        return rows
    out = []
    for server in rows:
        row, pending = server, queued.get(str(server["id"]))
        if pending is not None and not server.get("deleted_at"):
            kind, payload, at = pending
            if kind == DELETE:
                row = {**server, "content": "", "deleted_at": at}
            else:
                row = {**server, "content": payload["content"], "edited_at": server.get("edited_at") or at}
        out.append(row)
    return out


def landing_tombstones(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> list[Dropped]:
    """Tombstones among server rows whose local row still has text (call before writing the rows)."""
    ids = [str(r["id"]) for r in rows if r.get("deleted_at")]
    found: list[Dropped] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found += [
            Dropped(r["id"], r["ticket_id"], r["content"])
            for r in conn.execute(
                f"select id, ticket_id, content from messages where content <> '' and id {IN_LIST}",
                (as_param(chunk),),
            )
        ]
    return found


def drop_text(conn: sqlite3.Connection, dropped: Sequence[Dropped], me: str, now: str, files_dir: Path) -> list[str]:
    """Everything the cache holds of these messages' text, beside the row itself: revisions, queued or failed
    edits, attachment rows (returns the paths under ``files_dir`` of their downloaded files, thumbnails and opened
    copies' folders for the caller to delete with ``delete_path``; the files this user uploaded are queued for
    removal from Storage, after the delete), an unsaved inline edit of it, its mentions and copies of the text in
    the ticket's draft."""
    files: list[str] = []
    for d in dropped:
        mine = [
            str(r[0])
            for r in conn.execute(
                "select object_path from attachments where message_id = ? and uploader_id = ? and local_state = 'sent'",
                (d.message_id, me),
            )
        ]
        if mine:
            _enqueue(conn, PURGE, d.ticket_id, {"id": d.message_id, "paths": mine}, now)
        conn.execute("delete from message_revisions where message_id = ?", (d.message_id,))
        conn.execute("delete from outbox where kind = ? and entity_id = ?", (EDIT, d.message_id))
        conn.execute("delete from edit_drafts where message_id = ?", (d.message_id,))
        # its mentions: the server deletes them with the text, and nothing else would bring that to the cache (the
        # Mentions view and its badge kept an unseen mention of a deleted note); a queued "seen" of one goes too
        for (mention,) in conn.execute("select id from mentions where message_id = ?", (d.message_id,)).fetchall():
            conn.execute("delete from outbox where kind = 'workspace' and entity_id = ?", (f"mentions:{mention}",))
        conn.execute("delete from mentions where message_id = ?", (d.message_id,))
        for attachment_id, local_path in conn.execute(
            "select id, local_path from attachments where message_id = ?", (d.message_id,)
        ).fetchall():
            files += attachment_files(files_dir, str(attachment_id), local_path)
        conn.execute("delete from attachments where message_id = ?", (d.message_id,))
        text = d.content.strip()
        if text:
            draft = conn.execute("select text from drafts where ticket_id = ?", (d.ticket_id,)).fetchone()
            if draft is not None and text in draft[0]:
                left = draft[0].replace(text, "").strip()
                if left:
                    conn.execute("update drafts set text = ? where ticket_id = ?", (left, d.ticket_id))
                else:
                    conn.execute("delete from drafts where ticket_id = ?", (d.ticket_id,))
    if dropped:
        owed = _owed(conn)
        owed["files"] += [f for f in files if f not in owed["files"]]
        owed["seq"] += 1
        _set_owed(conn, owed)
    return files


def attachment_files(files_dir: Path, attachment_id: str, local_path: str | None) -> list[str]:
    """What an attachment row left on disk, for ``delete_path``: its downloaded file, thumbnail, opened copies (none
    derived from an id that is not a uuid: no such file was made, and its path could lead out of ``files_dir``)."""
    files = [] if local_path is None else [str(local_path)]
    if not attachments.is_attachment_id(attachment_id):
        return files
    return [
        *files,
        str(attachments.thumbnail_path(files_dir, attachment_id)),
        str(attachments.open_folder(files_dir, attachment_id)),
    ]


def delete_path(path: str) -> None:
    """Delete a path ``drop_text`` returned: a file, or a folder with what it holds; gone already is fine."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)  # an opened copy the system's application still holds stays
    else:
        target.unlink(missing_ok=True)


def _owed(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("select value from meta where key = ?", (OWED,)).fetchone()
    owed: dict[str, Any] = json.loads(row[0]) if row else {}
    return {
        "files": list(owed.get("files", [])),
        "seq": int(owed.get("seq", 0)),
        "scrubbed": int(owed.get("scrubbed", 0)),
    }


def _set_owed(conn: sqlite3.Connection, owed: Mapping[str, Any]) -> None:
    if owed["files"] or owed["seq"] > owed["scrubbed"]:
        conn.execute(
            "insert into meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value",
            (OWED, json.dumps(owed)),
        )
    else:
        conn.execute("delete from meta where key = ?", (OWED,))


def owes(conn: sqlite3.Connection) -> bool:
    """Whether a committed drop's cleanup is still owed (a crash or a cancel came between them)."""
    return conn.execute("select 1 from meta where key = ?", (OWED,)).fetchone() is not None


def settle_owed(conn: sqlite3.Connection) -> None:
    """Outside a transaction, on the writer: delete the files the drops noted so far, rewrite the search index
    without their entries (``scrub``), then clear what was done (a drop committed meanwhile stays owed)."""
    owed = _owed(conn)
    for path in owed["files"]:
        delete_path(path)
    scrub(conn)
    conn.execute("begin immediate")  # the note read and rewritten in one transaction
    try:
        now = _owed(conn)
        now["files"] = [f for f in now["files"] if f not in owed["files"]]
        now["scrubbed"] = max(now["scrubbed"], owed["seq"])
        _set_owed(conn, now)
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


def drop_revisions_of_tombstones(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """The server deletes a deleted message's revisions; so does every cache, whatever the local row had."""
    conn.executemany(
        "delete from message_revisions where message_id = ?", [(str(r["id"]),) for r in rows if r.get("deleted_at")]
    )


def apply_revisions(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Pulled revisions (staff only: the server returns none to customers); those of a message deleted here are
    skipped (a late realtime event). Returns ticket → message ids."""
    changed: dict[str, set[str]] = {}
    params = []
    for r in rows:
        deleted = conn.execute("select 1 from messages where id = ? and deleted_at is not null", (r["message_id"],))
        if deleted.fetchone() is not None:
            continue
        params.append(
            (r["id"], r["message_id"], r["ticket_id"], r["content"], r.get("edited_by"), canonical_ts(r["replaced_at"]))
        )
        changed.setdefault(str(r["ticket_id"]), set()).add(str(r["message_id"]))
    conn.executemany(
        "insert into message_revisions (id, message_id, ticket_id, content, edited_by, replaced_at)"
        " values (?, ?, ?, ?, ?, ?) on conflict (id) do update set content = excluded.content,"
        " edited_by = excluded.edited_by, replaced_at = excluded.replaced_at",
        params,
    )
    return changed


def revisions(conn: sqlite3.Connection, message_id: str) -> list[Revision]:
    return [
        Revision(r["id"], r["message_id"], r["content"], r["edited_by"], r["replaced_at"])
        for r in conn.execute(
            "select * from message_revisions where message_id = ? order by replaced_at, id", (message_id,)
        )
    ]


def remove_tickets(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> None:
    conn.executemany("delete from message_revisions where ticket_id = ?", [(t,) for t in ticket_ids])


# --- push outcomes ----------------------------------------------------------------------------------


def later_edits(conn: sqlite3.Connection, entry: OutboxEntry) -> list[tuple[int, str]]:
    """This entry and the edits of the same message queued after it: (seq, new text), oldest first."""
    return [
        (int(r["seq"]), str(json.loads(r["payload"])["content"]))
        for r in conn.execute(
            "select seq, payload from outbox where kind = ? and entity_id = ? and seq >= ? order by seq",
            (EDIT, entry.entity_id, entry.seq),
        )
    ]


def restore_to_draft(conn: sqlite3.Connection, ticket_id: str, text: str, now: str) -> None:
    """Put a text the server did not take into the ticket's draft (kept across restarts), after what is there."""
    row = conn.execute("select text from drafts where ticket_id = ?", (ticket_id,)).fetchone()
    current = str(row[0]) if row is not None else ""
    if text in current:
        return
    merged = f"{current.rstrip()}\n\n{text}" if current.strip() else text
    conn.execute(
        "insert into drafts (ticket_id, text, updated_at) values (?, ?, ?) on conflict (ticket_id)"
        " do update set text = excluded.text, updated_at = excluded.updated_at",
        (ticket_id, merged, now),
    )


def scrub(conn: sqlite3.Connection) -> None:
    """Rewrite the message search index without the entries deleted from it. FTS5 records a delete as a
    marker in a new segment and keeps the old segment (with the term) until segments merge; 'optimize'
    merges them all now. SQLite 3.42+ could instead remove entries in place ('secure-delete'); the SQLite
    bundled with Python 3.11 is older. Run outside a transaction, followed by a WAL checkpoint."""
    conn.execute("insert into messages_fts (messages_fts) values ('optimize')")
