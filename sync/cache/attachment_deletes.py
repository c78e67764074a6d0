"""Attachments the server deleted, dropped from the cache with what they left on disk.

The server keeps a tombstone per deleted attachment (``public.attachment_deletions``, migration
20261216000200), which the pull pages after the attachments by its own cursor (``DELETIONS``); realtime's DELETE
of an attachment carries its id too. Either way the same ids come here, and each cached row goes with its
downloaded file, thumbnail and opened copies, in the transaction that moves the tombstones' cursor.

A tombstone names its message too, and drops the cached row only under that message: the server keeps the
tombstone when another message's attachment takes the id (migration 20261216000200), and that row, which the
attachments' cursor may have brought first, is not the one deleted. Realtime's DELETE names the current row.

What stays: a row the user queued (``local_state`` other than 'sent': its file is the outbox's to upload, and a
resend under the same id clears the server's tombstone), and a file another cached row still names. A download
under way when its row goes is the downloader's to delete (``AttachmentFiles.file``: the row is asked for again
when the file is in place); the path it downloads to is deleted here in any case, so whichever of the two comes
last leaves nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sync import attachments
from sync.cache import history

DELETIONS = "attachment_deletions"  # the server's table of tombstones, and the cache's cursor of its pull
_CHUNK = 500  # ids per statement (SQLite's bound on variables is 32,766 since 3.32; older builds had 999)


@dataclass
class Dropped:
    """What dropping deleted attachments changed: per ticket the messages whose files went, and the paths on disk
    to delete (after the commit, ``history.delete_path``)."""

    messages: dict[str, set[str]] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)


def drop(conn: sqlite3.Connection, deleted: Sequence[tuple[str, str | None]], files_dir: Path) -> Dropped:
    """Delete the cached rows of these server-deleted attachments, each an id with its message (``None``: whatever
    message the row has) (the user's unsent ones stay), and list what they left on disk."""
    dropped = Dropped()
    under = dict(deleted)
    attachment_ids = list(under)
    for start in range(0, len(attachment_ids), _CHUNK):
        chunk = attachment_ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"select id, message_id, ticket_id, local_path from attachments where id in ({marks})"
            " and local_state = 'sent'",
            chunk,
        ).fetchall()
        for attachment_id, message_id, ticket_id, local_path in rows:
            if under[str(attachment_id)] not in (None, str(message_id)):
                continue  # the id is another message's attachment now: not the row deleted
            conn.execute("delete from attachments where id = ?", (attachment_id,))
            dropped.messages.setdefault(str(ticket_id), set()).add(str(message_id))
            # the downloaded file, its thumbnail and opened copies, and where a download in flight lands
            paths = history.attachment_files(files_dir, str(attachment_id), local_path)
            if attachments.is_attachment_id(str(attachment_id)):  # where a download of it lands
                paths.append(str(files_dir / str(attachment_id)))
            dropped.paths += [p for p in paths if not _named(conn, p)]
        # an id no row has here (never pulled, or another user's): nothing to do
    dropped.paths = list(dict.fromkeys(dropped.paths))
    return dropped


def _named(conn: sqlite3.Connection, path: str) -> bool:
    """Whether a cached row still names this file (its own, or a copy another row shares)."""
    return conn.execute("select 1 from attachments where local_path = ? limit 1", (path,)).fetchone() is not None
