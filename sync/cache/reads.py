"""Reads of the cache for the UI: synchronous, indexed, never touching the network.

Every query here is served by an index of sync/cache/schema.py: the inbox by ``tickets_*`` on
(filter, last_message_at), thread pages and unread counts by ``messages_thread``
(ticket_id, created_at, id), search by the FTS5 tables.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sync.cache import snoozes
from sync.cache.id_lists import IN_LIST, as_param
from sync.models import Message, Profile, SearchHit, Ticket

_WORD = re.compile(r"[^\W_]+")  # a token of FTS5's unicode61 tokenizer: letters and digits

_TICKET_SELECT = """
select t.id, t.customer_id, t.assignee_id, t.subject, t.status, t.priority, t.created_at, t.updated_at,
  t.last_message_at, t.local_state, t.error, t.snoozed_until,
  (select count(*) from messages m where m.ticket_id = t.id and m.sender_id <> :me and m.deleted_at is null
     and (:staff or m.is_internal = 0)
     and m.created_at > coalesce((select r.last_read_at from ticket_reads r
                                  where r.ticket_id = t.id and r.user_id = :me), '')) as unread_count,
  coalesce((select m.created_at || char(31) || m.content from messages m where m.ticket_id = t.id
            and m.deleted_at is null and (:staff or m.is_internal = 0)
            order by m.created_at desc, m.id desc limit 1), '') as preview,
  coalesce(cp.display_name, '') as customer_name, coalesce(ap.display_name, '') as assignee_name
from tickets t
left join profiles cp on cp.id = t.customer_id
left join profiles ap on ap.id = t.assignee_id
"""


def _ticket(row: sqlite3.Row) -> Ticket:
    # the newest shown message's time and text from one lookup ("<created_at>\x1f<content>"): its time is the row's
    # age, the agent's own queued reply included (the ticket's last_message_at moves only when the server has it)
    at, _, preview = str(row["preview"]).partition("\x1f")
    return Ticket(
        id=row["id"],
        customer_id=row["customer_id"],
        assignee_id=row["assignee_id"],
        subject=row["subject"],
        status=row["status"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_message_at=row["last_message_at"],
        unread_count=int(row["unread_count"]),
        last_message_preview=preview[:140],
        preview_at=at or None,
        snoozed_until=row["snoozed_until"],
        customer_name=row["customer_name"],
        assignee_name=row["assignee_name"],
        local_state=row["local_state"],
        error=row["error"],
    )


def inbox(
    conn: sqlite3.Connection,
    me: str,
    role: str,
    *,
    view: str = "mine",
    statuses: Iterable[str] | None = None,
    priorities: Iterable[str] | None = None,
    limit: int = 200,
) -> list[Ticket]:
    if view not in ("mine", "unassigned", "all"):
        raise ValueError(f"view must be 'mine', 'unassigned' or 'all', not {view!r}")
    staff = role in ("agent", "admin")
    where: list[str] = []
    params: dict[str, Any] = {"me": me, "staff": staff, "limit": max(1, min(int(limit), 5000))}
    if not staff:
        where.append("t.customer_id = :me")
    elif view == "mine":
        where.append("t.assignee_id = :me")
    elif view == "unassigned":
        where.append("t.assignee_id is null")
    for name, values in (("status", statuses), ("priority", priorities)):
        if values is not None:
            chosen = list(values)
            keys = [f"{name}{i}" for i in range(len(chosen))]
            params.update(zip(keys, chosen, strict=True))
            where.append(f"t.{name} in ({', '.join(':' + k for k in keys)})" if keys else "0")
    # the page of tickets first (index on the filter and last_message_at), then unread counts and previews
    # for those rows only: with the subqueries in the same select, SQLite computed them for every ticket
    # the sort saw (filter switch at 1M messages: 58 ms)
    page = (
        "select t.rowid as rid from tickets t"
        + (" where " + " and ".join(where) if where else "")
        + " order by t.last_message_at desc, t.id limit :limit"
    )
    sql = (
        f"with page as materialized ({page}) "
        + _TICKET_SELECT.replace("from tickets t\n", "from page p join tickets t on t.rowid = p.rid\n")
        + " order by t.last_message_at desc, t.id"
    )
    return [_ticket(r) for r in conn.execute(sql, params)]


def ticket(conn: sqlite3.Connection, me: str, role: str, ticket_id: str) -> Ticket | None:
    row = conn.execute(
        _TICKET_SELECT + " where t.id = :id", {"me": me, "staff": role in ("agent", "admin"), "id": ticket_id}
    ).fetchone()
    return _ticket(row) if row else None


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        ticket_id=row["ticket_id"],
        sender_id=row["sender_id"],
        content=row["content"],
        is_internal=bool(row["is_internal"]),
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        local_state=row["local_state"],
        error=row["error"],
        sender_name=row["sender_name"] or "",
    )


_MESSAGE_SELECT = "select m.*, p.display_name as sender_name from messages m left join profiles p on p.id = m.sender_id"


def thread(
    conn: sqlite3.Connection, ticket_id: str, limit: int = 50, before: tuple[str, str] | None = None
) -> list[Message]:
    """The newest ``limit`` messages older than ``before`` = (created_at, id), oldest first."""
    limit = max(1, min(int(limit), 1000))
    if before is None:
        rows = conn.execute(
            _MESSAGE_SELECT + " where m.ticket_id = ? order by m.created_at desc, m.id desc limit ?", (ticket_id, limit)
        ).fetchall()
    else:
        rows = conn.execute(
            _MESSAGE_SELECT + " where m.ticket_id = ? and (m.created_at, m.id) < (?, ?)"
            " order by m.created_at desc, m.id desc limit ?",
            (ticket_id, before[0], before[1], limit),
        ).fetchall()
    return [_message(r) for r in reversed(rows)]


def message(conn: sqlite3.Connection, message_id: str) -> Message | None:
    row = conn.execute(_MESSAGE_SELECT + " where m.id = ?", (message_id,)).fetchone()
    return _message(row) if row else None


def latest_message_from(conn: sqlite3.Connection, ticket_id: str, sender_id: str) -> str | None:
    """The id of the newest message ``sender_id`` wrote in the ticket that this cache holds (thread order)."""
    row = conn.execute(
        "select id from messages where ticket_id = ? and sender_id = ? order by created_at desc, id desc limit 1",
        (ticket_id, sender_id),
    ).fetchone()
    return str(row[0]) if row else None


def count_thread(conn: sqlite3.Connection, ticket_id: str) -> int:
    return int(conn.execute("select count(*) from messages where ticket_id = ?", (ticket_id,)).fetchone()[0])


def _profile(row: sqlite3.Row) -> Profile:
    return Profile(id=row["id"], role=row["role"], display_name=row["display_name"], avatar_url=row["avatar_url"])


def profiles(conn: sqlite3.Connection) -> dict[str, Profile]:
    return {r["id"]: _profile(r) for r in conn.execute("select * from profiles")}


def role_of(conn: sqlite3.Connection, user_id: str) -> str | None:
    row = conn.execute("select role from profiles where id = ?", (user_id,)).fetchone()
    return None if row is None else str(row[0])


def agents(conn: sqlite3.Connection) -> list[Profile]:
    return [
        _profile(r)
        for r in conn.execute("select * from profiles where role in ('agent', 'admin') order by display_name, id")
    ]


def search(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[SearchHit]:
    """FTS5 over ticket subjects and message contents: every word of the user's text (as the tokenizer
    splits it: letters and digits) must occur, each quoted, so NOT/OR and stray quotes are searched for
    rather than parsed as FTS syntax. The message index keeps no positions (schema v12), so words are never
    sent as a phrase ("e-mail" finds messages with "e" and "mail")."""
    quoted = " ".join(f'"{word}"' for word in _WORD.findall(query))
    if not quoted:
        return []
    limit = max(1, min(int(limit), 500))
    hits = [
        SearchHit(
            ticket_id=r["id"], message_id=None, subject=r["subject"], snippet=r["snip"], created_at=r["last_message_at"]
        )
        for r in conn.execute(
            "select t.id, t.subject, t.last_message_at, snippet(tickets_fts, 0, '[', ']', '…', 12) as snip"
            " from tickets_fts join tickets t on t.rowid = tickets_fts.rowid where tickets_fts match ?"
            # newest first, like messages below: ranking scored every matching subject (a common word
            # matches thousands of 100k subjects: most of search_1m's p95 of 121 ms)
            " order by tickets_fts.rowid desc limit ?",
            (quoted, limit),
        )
    ]
    hits += [
        SearchHit(
            ticket_id=r["ticket_id"],
            message_id=r["id"],
            subject=r["subject"] or "",
            snippet=r["snip"],
            created_at=r["created_at"],
        )
        for r in conn.execute(
            "select m.id, m.ticket_id, m.created_at, t.subject,"
            " snippet(messages_fts, 0, '[', ']', '…', 12) as snip"
            " from messages_fts join messages m on m.rowid = messages_fts.rowid"
            " left join tickets t on t.id = m.ticket_id where messages_fts match ? and m.deleted_at is null"
            # newest first: FTS5 walks rowids backwards and stops at the limit, where ranking
            # would score every match (40 ms for a common word over 50k messages, vs < 1 ms)
            " order by messages_fts.rowid desc limit ?",
            (quoted, limit),
        )
    ]
    return hits[:limit]


def read_marker(conn: sqlite3.Connection, ticket_id: str, user_id: str) -> str | None:
    row = conn.execute(
        "select last_read_at from ticket_reads where ticket_id = ? and user_id = ?", (ticket_id, user_id)
    ).fetchone()
    return str(row[0]) if row else None


def avatar_urls(conn: sqlite3.Connection) -> dict[str, str]:
    """user id → avatar_url of every cached profile that names a picture."""
    return {
        str(r[0]): str(r[1]) for r in conn.execute("select id, avatar_url from profiles where avatar_url is not null")
    }


def avatar_url(conn: sqlite3.Connection, user_id: str) -> str | None:
    row = conn.execute("select avatar_url from profiles where id = ?", (user_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


def read_markers(conn: sqlite3.Connection, ticket_id: str) -> dict[str, str]:
    """Every cached read marker of a ticket, user id → last_read_at: one primary-key range read that serves
    the receipts of a whole thread."""
    rows = conn.execute("select user_id, last_read_at from ticket_reads where ticket_id = ?", (ticket_id,))
    return {str(r[0]): str(r[1]) for r in rows}


def draft(conn: sqlite3.Connection, ticket_id: str) -> str:
    row = conn.execute("select text from drafts where ticket_id = ?", (ticket_id,)).fetchone()
    return str(row[0]) if row else ""


def outbox(conn: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(
            "select seq, kind, entity_id, ticket_id, state, attempts, error, created_at"
            " from outbox order by seq limit ?",
            (limit,),
        )
    ]


def count(conn: sqlite3.Connection, table: str) -> int:
    """``table`` is one of the synced tables (checked by the caller, never user input)."""
    return int(conn.execute(f"select count(*) from {_cached(table)}").fetchone()[0])


def _cached(table: str) -> str:
    """Where a synced table's rows are in the cache: its own table, but a snooze is on its ticket."""
    return snoozes.CACHED_ROWS if table == snoozes.TABLE else table


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's ``data_version`` of this connection: it changes when another connection (the writer) committed."""
    return int(conn.execute("pragma data_version").fetchone()[0])


def keys(conn: sqlite3.Connection, table: str) -> set[str]:
    key = {
        "ticket_reads": "ticket_id || ':' || user_id",
        "ticket_tags": "ticket_id || ':' || tag_id",
        "ticket_sla": "ticket_id",
        snoozes.TABLE: "ticket_id",
    }.get(table, "id")
    return {str(r[0]) for r in conn.execute(f"select {key} from {_cached(table)}")}


def attachments(conn: sqlite3.Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("select * from attachments where message_id = ? order by created_at, id", (message_id,))
    return [dict(r) for r in rows.fetchall()]


def ticket_attachments(conn: sqlite3.Connection, ticket_id: str, mimes: Sequence[str]) -> list[dict[str, Any]]:
    """The attachments of these types in a ticket's thread, in thread order (the lightbox's pictures); through the
    thread index, deleted messages left out."""
    marks = ", ".join("?" for _ in mimes)
    rows = conn.execute(
        "select a.* from messages m join attachments a on a.message_id = m.id"
        f" where m.ticket_id = ? and m.deleted_at is null and a.mime in ({marks})"
        " order by m.created_at, m.id, a.created_at, a.id",
        (ticket_id, *mimes),
    )
    return [dict(r) for r in rows.fetchall()]


def uploaded_attachments(conn: sqlite3.Connection, message_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The files of these messages that are on the server but not yet described (one indexed query per batch)."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(message_ids), 500):  # under SQLite's bound-parameter limit
        part = list(message_ids[start : start + 500])
        rows = conn.execute(
            f"select * from attachments where message_id {IN_LIST} and local_state = 'uploaded'", (as_param(part),)
        )
        out.extend(dict(r) for r in rows.fetchall())
    return out


def attachment(conn: sqlite3.Connection, attachment_id: str) -> dict[str, Any] | None:
    row = conn.execute("select * from attachments where id = ?", (attachment_id,)).fetchone()
    return dict(row) if row is not None else None


def cached_attachment_files(conn: sqlite3.Connection) -> list[tuple[str, int, float, bool]]:
    """(id, size, last used, pinned) of every attachment with a file on disk; queued ones are pinned."""
    rows = conn.execute(
        "select id, size, coalesce(last_used, 0), local_state <> 'sent' from attachments where local_path is not null"
    ).fetchall()
    return [(str(r[0]), int(r[1]), float(r[2]), bool(r[3])) for r in rows]


def attachment_progress(conn: sqlite3.Connection, message_id: str) -> tuple[int, int]:
    """(files on the server, files of the message): the UI's "uploading 2 of 3"."""
    row = conn.execute(
        "select count(*) filter (where local_state in ('uploaded', 'sent')), count(*)"
        " from attachments where message_id = ?",
        (message_id,),
    ).fetchone()
    return int(row[0]), int(row[1])
