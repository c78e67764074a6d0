"""The SQL of per-user and per-project settings kept in the cache: the project's ``app_settings`` row and
this user's notification preferences (sync/preferences.py). Both are single rows with no change cursor, so
they live in ``meta`` as JSON; a preference chosen on this device is its outbox entry (kind
``preferences``, at most one) until the server acknowledges it, and wins over the pulled row meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from sync.cache import writes
from sync.preferences import KIND, Preferences, from_row

APP_SETTINGS = "app_settings"
PREFERENCES = "notification_preferences"


def _dumps(row: Mapping[str, Any]) -> str:
    return json.dumps(dict(row), sort_keys=True, default=str)


def set_json(conn: sqlite3.Connection, key: str, row: Mapping[str, Any]) -> bool:
    """Store a server row under ``key``; returns whether it changed."""
    value = _dumps(row)
    changed = writes.get_meta(conn, key) != value
    writes.set_meta(conn, key, value)
    return changed


def get_json(conn: sqlite3.Connection, key: str) -> dict[str, Any]:
    value = writes.get_meta(conn, key)
    return dict(json.loads(value)) if value else {}


def preferences(conn: sqlite3.Connection) -> Preferences:
    row = conn.execute(
        "select payload, state, error from outbox where kind = ? order by seq desc limit 1", (KIND,)
    ).fetchone()
    if row is not None:
        local = from_row(json.loads(row[0]))
        return Preferences(local.email, local.unread_after_minutes, pending=row[1] == "queued", error=row[2])
    return from_row(get_json(conn, PREFERENCES) or None)


def queue_preferences(conn: sqlite3.Connection, me: str, choice: Preferences) -> None:
    """One entry per user: a newer choice replaces a waiting or refused one (and is queued again)."""
    payload = json.dumps(choice.payload())
    updated = conn.execute(
        "update outbox set payload = ?, state = 'queued', error = null where kind = ?", (payload, KIND)
    ).rowcount
    if not updated:
        conn.execute(
            "insert into outbox (kind, entity_id, ticket_id, payload, created_at) values (?, ?, '', ?, ?)",
            (KIND, me, payload, writes.now_ts()),
        )


def acknowledged(conn: sqlite3.Connection, payload: Mapping[str, Any]) -> None:
    """The server has this choice: it is the known server row until the next pull says otherwise."""
    set_json(conn, PREFERENCES, payload)
