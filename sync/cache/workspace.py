"""The agent workspace's writes in the cache (issue 14), as functions of an open transaction called only
by ``Cache`` (sync/cache/db.py): server rows applied from pulls, realtime and settings snapshots; local
row changes queued with their ``workspace`` outbox entry; their acknowledgement or refusal.

A row the user changed is ``local_state='pending'`` until the server acknowledged every entry of it; a
pulled row never overwrites a pending one (the user's change is shown until the server has it, then the
next pull brings the server's version, stamped later than the cursor). Entries are never folded into
one another: an entry may be in flight while the user makes the next change, so each change is its own
entry (an upsert, a patch or a tombstone, all harmless when resent).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sync.cache import snoozes
from sync.cache.files import dumps
from sync.decisions import OutboxEntry, canonical_ts
from sync.workspace_rows import JSON_COLUMNS, WRITABLE, RowWrite, entity_key

KIND = "workspace"

COLUMNS: dict[str, tuple[str, ...]] = {
    "tags": ("id", "name", "color", "created_at", "updated_at", "deleted_at"),
    "ticket_tags": ("ticket_id", "tag_id", "added_by", "added_at", "removed_at"),
    "canned_replies": ("id", "owner_id", "title", "body", "shortcut", "created_at", "updated_at", "deleted_at"),
    "canned_reply_files": (
        "id",
        "canned_reply_id",
        "name",
        "mime",
        "size",
        "sha256",
        "object_path",
        "created_at",
        "deleted_at",
    ),
    "macros": ("id", "owner_id", "name", "reply", "actions", "created_at", "updated_at", "deleted_at"),
    "saved_views": ("id", "owner_id", "name", "filters", "sort", "position", "created_at", "updated_at", "deleted_at"),
    "customer_notes": ("id", "customer_id", "author_id", "body", "created_at", "updated_at", "deleted_at"),
    "mentions": ("id", "message_id", "ticket_id", "mentioned_id", "author_id", "created_at", "seen_at"),
    "ticket_sla": ("ticket_id", "first_response_due_at", "awaiting_reply_since", "next_response_due_at", "updated_at"),
    "sla_settings": ("id", "timezone", "updated_at"),
    "sla_targets": ("priority", "first_response_minutes", "next_response_minutes", "updated_at"),
    # deleted_at: the cache's own tombstone of a removal not sent yet (the server DELETEs these rows)
    "sla_business_hours": ("id", "weekday", "opens", "closes", "deleted_at"),
    "sla_holidays": ("day", "name", "deleted_at"),
}
KEYS: dict[str, tuple[str, ...]] = {
    "ticket_tags": ("ticket_id", "tag_id"),
    "ticket_sla": ("ticket_id",),
    "sla_targets": ("priority",),
    "sla_holidays": ("day",),
}
# tables whose rows the user never writes have no local_state column
_NO_LOCAL_STATE = frozenset({"ticket_sla"})
_TS = frozenset(
    {
        "created_at",
        "updated_at",
        "deleted_at",
        "added_at",
        "removed_at",
        "seen_at",
        "first_response_due_at",
        "awaiting_reply_since",
        "next_response_due_at",
    }
)
_TICKET_COLUMN = {"ticket_tags": "ticket_id", "ticket_sla": "ticket_id", "mentions": "ticket_id"}


def _key(table: str) -> tuple[str, ...]:
    return KEYS.get(table, ("id",))


def _value(column: str, value: Any) -> Any:
    if column in _TS:
        return canonical_ts(value)
    if column in JSON_COLUMNS and not isinstance(value, str):
        return json.dumps(value if value is not None else {}, separators=(",", ":"))
    if isinstance(value, bool):
        return 1 if value else 0
    return value


def _upsert_sql(table: str) -> str:
    cols = COLUMNS[table]
    key = _key(table)
    sets = [f"{c} = excluded.{c}" for c in cols if c not in key]
    if table in _NO_LOCAL_STATE:
        return (
            f"insert into {table} ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
            f" on conflict ({', '.join(key)}) do update set {', '.join(sets)}"
        )
    # a row with the user's unsent change keeps it: the server's version comes with a later pull
    return (
        f"insert into {table} ({', '.join(cols)}, local_state, error) values ({', '.join('?' * len(cols))}, 'sent',"
        f" null) on conflict ({', '.join(key)}) do update set {', '.join(sets)}, local_state = 'sent', error = null"
        f" where {table}.local_state <> 'pending'"
    )


_UPSERTS = {table: _upsert_sql(table) for table in COLUMNS}


def apply_rows(conn: sqlite3.Connection, table: str, rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Upsert server rows of a workspace table; returns the tickets whose decoration changed."""
    if table == snoozes.TABLE:  # no table of its own: its rows set their tickets' snoozed_until
        return snoozes.apply_rows(conn, rows)
    cols = COLUMNS[table]
    params = [[_value(c, r.get(c)) for c in cols] for r in rows]
    conn.executemany(_UPSERTS[table], params)
    ticket_column = _TICKET_COLUMN.get(table)
    if ticket_column is None:
        return set()
    index = cols.index(ticket_column)
    return {str(p[index]) for p in params}


def replace_snapshot(conn: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """A settings table read whole: it replaces what the cache had (rows with unsent changes stay)."""
    if table in _NO_LOCAL_STATE:
        conn.execute(f"delete from {table}")
    else:
        conn.execute(f"delete from {table} where local_state <> 'pending'")
    apply_rows(conn, table, rows)


def apply_deletes(conn: sqlite3.Connection, table: str, keys: Iterable[Mapping[str, Any]]) -> set[str]:
    """Rows the server deleted (realtime DELETE, which carries the primary key): gone from the cache too,
    unless the user has an unsent change of them. Returns the tickets whose decoration changed."""
    key = _key(table)
    where = " and ".join(f"{k} = ?" for k in key)
    if table not in _NO_LOCAL_STATE:
        where += " and local_state <> 'pending'"
    touched: set[str] = set()
    for row in keys:
        if any(row.get(k) is None for k in key):
            continue
        params = [_value(k, row[k]) for k in key]
        if conn.execute(f"delete from {table} where {where}", params).rowcount and table in _TICKET_COLUMN:
            touched.add(str(row[_TICKET_COLUMN[table]]))
    return touched


def remove_tickets(conn: sqlite3.Connection, ticket_ids: Iterable[str]) -> None:
    """Tickets that left the cache take their tags, due times and mentions with them."""
    ids = [(t,) for t in ticket_ids]
    conn.executemany("delete from ticket_tags where ticket_id = ? and local_state <> 'pending'", ids)
    conn.executemany("delete from ticket_sla where ticket_id = ?", ids)
    conn.executemany("delete from mentions where ticket_id = ?", ids)


# --- local changes ------------------------------------------------------------------------------------


def _where(table: str) -> str:
    return " and ".join(f"{k} = :{k}" for k in WRITABLE[table].key)


def queue_row(conn: sqlite3.Connection, write: RowWrite, me: str, now: str) -> str:
    """Apply one checked row change locally and queue it; returns the ticket it concerns ('' if none)."""
    table, op, row = write.table, write.op, dict(write.row)
    spec = WRITABLE[table]
    if table == "sla_settings":
        row["id"] = True
    keys = {k: _value(k, row[k]) for k in spec.key}
    values = {c: _value(c, v) for c, v in row.items() if c not in spec.key}
    if op == "insert" and spec.hard_delete:  # added again before its removal was sent: the removal goes first
        conn.execute(f"delete from {table} where {_where(table)} and deleted_at is not null", keys)
    if op == "insert" and table == "ticket_tags":
        conn.execute(
            "insert into ticket_tags (ticket_id, tag_id, added_by, added_at, removed_at, local_state, error)"
            " values (:ticket_id, :tag_id, :me, :now, null, 'pending', null) on conflict (ticket_id, tag_id) do update"
            " set removed_at = null, added_by = :me, added_at = :now, local_state = 'pending', error = null",
            {**keys, "me": me, "now": now},
        )
    elif op == "insert":
        stamps = {"created_at": now, "updated_at": now}
        if table == "customer_notes":
            stamps["author_id"] = me
        full = {**values, **keys, **stamps}
        cols = [c for c in COLUMNS[table] if c in full]
        conn.execute(
            f"insert into {table} ({', '.join(cols)}, local_state, error) values"
            f" ({', '.join(':' + c for c in cols)}, 'pending', null)",
            full,
        )
    else:
        if op == "delete":
            values = {str(spec.removed): now}
        elif "updated_at" in COLUMNS[table]:
            values = {**values, "updated_at": now}
        sets = ", ".join(f"{c} = :{c}" for c in values)
        sets += ", " if sets else ""
        changed = conn.execute(
            f"update {table} set {sets}local_state = 'pending', error = null where {_where(table)}",
            {**values, **keys},
        ).rowcount
        if not changed:
            raise KeyError(f"no such {table} row in the cache")
    ticket_id = str(row[spec.ticket_column]) if spec.ticket_column and spec.ticket_column in row else ""
    if table == "mentions":
        found = conn.execute("select ticket_id from mentions where id = ?", (row["id"],)).fetchone()
        ticket_id = str(found[0]) if found else ""
    payload = {"table": table, "op": op, "row": row}
    conn.execute(
        "insert into outbox (kind, entity_id, ticket_id, payload, created_at) values (?, ?, ?, ?, ?)",
        (KIND, entity_key(table, row), ticket_id, dumps(payload), now),
    )
    return ticket_id


def _key_params(entry: OutboxEntry) -> tuple[str, dict[str, Any]]:
    table = str(entry.payload["table"])
    row = entry.payload["row"]
    return table, {k: _value(k, row[k]) for k in WRITABLE[table].key}


def acknowledge(conn: sqlite3.Connection, entries: Sequence[OutboxEntry]) -> None:
    """After their outbox rows were deleted: rows with no entry left become sent."""
    for entry in entries:
        if entry.kind != KIND:
            continue
        table, keys = _key_params(entry)
        conn.execute(
            f"update {table} set local_state = 'sent', error = null where {_where(table)} and local_state = 'pending'"
            " and not exists (select 1 from outbox where entity_id = :entity)",
            {**keys, "entity": entry.entity_id},
        )


def refused(
    conn: sqlite3.Connection,
    entry: OutboxEntry,
    reason: str,
    server_row: Mapping[str, Any] | None,
    apply: Callable[[sqlite3.Connection, str, Sequence[Mapping[str, Any]]], object] = apply_rows,
) -> None:
    """The server refused the change for good: the entry leaves; the row shows the server's version (or,
    for a refused insert, stays as the user wrote it), marked failed with the reason. ``apply`` writes the server's
    row (``WorkspaceCache`` sets one the cache cannot take aside)."""
    conn.execute("delete from outbox where seq = ?", (entry.seq,))
    table, keys = _key_params(entry)
    if server_row is not None:
        conn.execute(f"update {table} set local_state = 'sent' where {_where(table)}", keys)
        apply(conn, table, [server_row])
    elif entry.payload["op"] != "insert":
        conn.execute(f"delete from {table} where {_where(table)}", keys)
        return
    conn.execute(
        f"update {table} set local_state = 'failed', error = :reason where {_where(table)}", {**keys, "reason": reason}
    )


def discard_failed(conn: sqlite3.Connection, table: str, key: Mapping[str, Any]) -> bool:
    """Forget a row whose creation the server refused (it never existed there)."""
    params = {k: _value(k, key[k]) for k in WRITABLE[table].key}
    return conn.execute(f"delete from {table} where {_where(table)} and local_state = 'failed'", params).rowcount > 0
