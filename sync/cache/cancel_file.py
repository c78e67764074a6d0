"""The SQL of cancelling one file of a queued message (sync/cancel_file.py has the command and its push).

In one transaction: the file's attachment row and its two outbox entries (`attachment_upload`,
`attachment`) go; the message's text is replaced when the caller gives one (a message sent with files and no
words carries their names, see the app's caption) in its row and its queued entry alike; and when part of the
file may be on the server (uploaded, or an upload begun), an `upload_cancel` entry is queued to drop the
partial upload and remove the object once online. A discarded message's files get the same entries
(``queue_cleanup``).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from sync.cache.writes import _enqueue

CANCEL: Final = "upload_cancel"


def cancel_file(
    conn: sqlite3.Connection, attachment_id: str, content: str | None, upload_url: str | None, started: bool
) -> dict[str, Any] | None:
    """Cancel the file; returns its row as it was, or None when it is not a file of an unsent message."""
    row = conn.execute(
        "select a.*, m.local_state as message_state from attachments a join messages m on m.id = a.message_id"
        " where a.id = ?",
        (attachment_id,),
    ).fetchone()
    if row is None or row["message_state"] not in ("pending", "failed") or row["local_state"] == "sent":
        return None
    message_id = str(row["message_id"])
    conn.execute(
        "delete from outbox where kind in ('attachment_upload', 'attachment') and entity_id = ?", (attachment_id,)
    )
    conn.execute("delete from attachments where id = ?", (attachment_id,))
    if content is not None:
        conn.execute("update messages set content = ? where id = ?", (content, message_id))
        conn.execute(
            "update outbox set payload = json_set(payload, '$.content', ?) where kind = 'message' and entity_id = ?",
            (content, message_id),
        )
    if started or upload_url is not None or row["local_state"] == "uploaded":
        queue_cleanup(conn, dict(row), upload_url)
    return dict(row)


def queue_cleanup(conn: sqlite3.Connection, row: dict[str, Any], upload_url: str | None) -> None:
    """An `upload_cancel` entry: drop the partial upload at ``upload_url`` and remove the file's object."""
    _enqueue(
        conn,
        CANCEL,
        str(row["id"]),
        str(row["ticket_id"]),
        {"id": row["id"], "message_id": row["message_id"], "object_path": row["object_path"], "upload_url": upload_url},
    )
