"""Edit drafts: the text of an inline edit (a bubble's Edit, not yet saved), kept in the cache as it is
typed, like the composer's drafts, so a crash or a closed window before Save loses nothing: the thread
reopens the editor with it. One row per message (``edit_drafts``, cache schema v13); Save or Cancel
removes it, and so does the message's tombstone (sync/cache/history.py ``drop_text``: the text of a
deleted message leaves the file). Local only: never pushed, never pulled.
"""

from __future__ import annotations

import sqlite3

from sync.cache import writes
from sync.cache.files import Store


class EditDrafts:
    """``Cache.edit_drafts``: save, read and clear the unsaved text of inline edits."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def of_ticket(self, ticket_id: str) -> dict[str, str]:
        """Message id → unsaved edit text, for the messages of one ticket."""
        rows = self._store.reader.execute(
            "select message_id, text from edit_drafts where ticket_id = ?", (ticket_id,)
        ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def get(self, message_id: str) -> str | None:
        row = self._store.reader.execute("select text from edit_drafts where message_id = ?", (message_id,)).fetchone()
        return None if row is None else str(row[0])

    async def asave(self, message_id: str, ticket_id: str, text: str) -> None:
        """Keep the editor's text (off the event loop, on the cache's writer thread)."""
        await self._store.awrite(lambda c: save(c, message_id, ticket_id, text))

    async def aclear(self, message_id: str) -> None:
        """The edit was saved or cancelled: nothing to restore."""
        await self._store.awrite(lambda c: clear(c, [message_id]))


def save(conn: sqlite3.Connection, message_id: str, ticket_id: str, text: str) -> None:
    conn.execute(
        "insert into edit_drafts (message_id, ticket_id, text, updated_at) values (?, ?, ?, ?)"
        " on conflict (message_id) do update set text = excluded.text, updated_at = excluded.updated_at",
        (message_id, ticket_id, text, writes.now_ts()),
    )


def clear(conn: sqlite3.Connection, message_ids: list[str]) -> None:
    conn.executemany("delete from edit_drafts where message_id = ?", [(m,) for m in message_ids])
