"""Cancelling one file of a queued message (``engine.commands.cancel_file``): the message goes out with the
remaining files; the cancelled file's queued copy (and its resumable-upload state) is deleted at once, an
upload running for it stops at its next progress report (sync/uploads.py) and drops the server's partial
upload, and whatever reached the server — a partial TUS upload, or the whole object when it was already
uploaded — is removed by an ``upload_cancel`` outbox entry once online (``push``, one by one).

Discarding a whole unsent message (``commands.discard``) cleans up its files the same way (``discarded``).

Only files of a message that is not on the server yet (pending or failed) can be cancelled: once sent, a file
is the message's, and deleting it is deleting the message (issue 13's rules).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sync import tus
from sync.attachment_files import AttachmentFiles
from sync.attachments import BUCKET
from sync.cache import Cache
from sync.cache.cancel_file import CANCEL
from sync.decisions import OutboxEntry
from sync.errors import PermanentError
from sync.remote import Remote
from sync.uploads import state_file

log = logging.getLogger(__name__)

__all__ = ["CANCEL", "cancel", "discarded", "push"]


def cancel(cache: Cache, files: AttachmentFiles, attachment_id: str, content: str | None = None) -> dict[str, Any]:
    """Cancel one file; returns its row as it was. ValueError when it is not a file of an unsent message."""
    row = cache.attachment(attachment_id)
    local = Path(str(row["local_path"])) if row is not None and row["local_path"] else None
    upload_url = tus.saved_url(state_file(local)) if local is not None else None
    started = files.uploads.sent(attachment_id) is not None
    files.uploads.cancel(attachment_id)  # before the transaction: an upload running now stops at its next report
    gone = cache.cancel_file(attachment_id, content, upload_url, started)
    if gone is None:
        raise ValueError("only a file of a message that is not sent yet can be cancelled")
    if local is not None:
        files.unstage([str(local), str(state_file(local))])
    return gone


def discarded(cache: Cache, files: AttachmentFiles, rows: list[dict[str, Any]]) -> None:
    """A discarded message's files (``rows`` as they were): uploads running for them stop, their copies and
    upload state files go, and what reached the server is removed once online (a second transaction after the
    discard: a crash between the two leaves it to the server's expiry of partial uploads and orphan purge)."""
    cleanup: list[tuple[dict[str, Any], str | None]] = []
    for row in rows:
        attachment_id = str(row["id"])
        local = Path(str(row["local_path"])) if row["local_path"] else None
        url = tus.saved_url(state_file(local)) if local is not None else None
        started = files.uploads.sent(attachment_id) is not None
        files.uploads.cancel(attachment_id)
        if local is not None:
            files.unstage([str(local), str(state_file(local))])
        if row["local_state"] == "uploaded" or url is not None or started:
            cleanup.append((row, url))
    if cleanup:
        cache.queue_upload_cleanup(cleanup)


async def push(cache: Cache, remote: Remote, entry: OutboxEntry) -> bool:
    """Drop a cancelled file's partial upload and remove its object if it was uploaded (by this user; the
    message is not on the server, so nobody else has seen it). Gone already is no error."""
    if not await cache.still_queued(entry):
        return False
    url = entry.payload.get("upload_url")
    if url:
        await remote.terminate_upload(str(url))
    try:
        await remote.remove_files(BUCKET, [str(entry.payload["object_path"])])
    except PermanentError as exc:  # refused (e.g. the ticket closed): the server's orphan purge removes it
        log.info("removing cancelled file %s refused: %s", entry.entity_id, exc)
    await cache.drop(entry)
    return True
