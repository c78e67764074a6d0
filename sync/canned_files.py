"""``CannedFiles`` (``engine.canned_files``): the files canned replies carry (issue 14), for staff.

Rows (``canned_reply_files``, migration 20261201000410) are pulled by cursor like the other workspace tables;
the bytes are downloaded beside the cache (``<cache>.canned/<file id>``) after every pull, checked against
the row's sha256, so picking a canned reply attaches its files offline too.

Adding a file works offline, through the outbox like the other workspace rows: this device keeps its copy at
once (the picker can attach it right away) and queues the row (``canned_reply_files`` in ``WRITABLE``, pending
until sent); the push uploads the copy (to ``canned/<reply>/<name>`` in the attachments bucket, which only who
may write the reply may do; with upsert, so a resend after a lost answer is harmless) right before the row
(``upload_queued``, sync/push.py). The server takes the row's size and type from the stored object; the cache
shows the local ones until the server's row comes back. A refusal marks the row failed with the reason (a
``workspace_refused`` Notice), as for any workspace write. Removing a file that is on the server is online
(a tombstone); one that never reached it is simply forgotten on this device. The server refuses (RLS) what the
user may not do; the checks here (the bucket's size and type rules) only say so earlier.

A picked reply's files are *copies* for the new message (the app stages them like picked files): the
customer gets the message's attachment, never a read on the canned reply's object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from sync import attachments, events
from sync.account import Account
from sync.cache import Cache
from sync.decisions import OutboxEntry
from sync.errors import PermanentError
from sync.models import LocalUser
from sync.remote import Remote
from sync.workspace_rows import CannedFile, RowWrite, check_write

log = logging.getLogger(__name__)

BUCKET = "attachments"
TABLE = "canned_reply_files"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


class CannedFiles:
    def __init__(
        self,
        cache: Cache,
        remote: Remote,
        user: LocalUser,
        account: Account,
        emit: Callable[[events.Event], None],
        *,
        on_write: Callable[[], None] = lambda: None,
    ) -> None:
        self.cache, self.remote, self.user, self.account, self.emit = cache, remote, user, account, emit
        self.on_write = on_write  # wakes the sync loop to push what was queued
        self.folder = self.folder_of(cache.path)
        self._lock = asyncio.Lock()

    @staticmethod
    def folder_of(cache_path: Path) -> Path:
        """Where a cache's canned reply files live (deleted with the cache on sign-out)."""
        return cache_path.with_name(cache_path.name + ".canned")

    def files(self, reply_id: str) -> list[CannedFile]:
        return self.cache.workspace.canned_files(reply_id)

    def _path(self, file_id: str) -> Path:
        return self.folder / str(uuid.UUID(file_id))

    def local(self, file: CannedFile) -> Path | None:
        """This device's copy of the file, or None while it has not been downloaded (or its id is no uuid)."""
        if not _is_uuid(file.id):
            return None
        path = self._path(file.id)
        return path if path.is_file() else None

    async def add(self, reply_id: str, path: Path, name: str | None = None) -> CannedFile:
        """Attach a file to a canned reply, offline too: kept on this device at once and queued in the outbox,
        which uploads it and then sends its row. ValueError for a file the bucket would refuse (nothing is
        queued); the server's refusal (42501: not yours to change) comes back as the row marked failed."""
        if not self.user.is_staff:
            raise ValueError("canned replies are for agents")
        name = name or path.name
        size = path.stat().st_size
        mime = attachments.mime_of(name)
        reason = attachments.refusal(name, size, mime)
        if reason is not None:
            raise ValueError(reason)
        if any(f.name == name for f in self.files(reply_id)):
            raise ValueError(f"this canned reply has a file named {name!r} already")
        try:
            file_id, key = str(uuid.uuid4()), f"canned/{uuid.UUID(reply_id)}/{name}"
        except ValueError:
            raise ValueError("no such canned reply") from None
        sha256 = await asyncio.to_thread(_sha256, path)
        await asyncio.to_thread(self._keep, file_id, path)  # the copy first: the queued row names it
        row = {"id": file_id, "canned_reply_id": reply_id, "name": name, "sha256": sha256, "object_path": key}
        try:
            self.cache.workspace.queue([check_write(RowWrite(TABLE, "insert", {**row, "mime": mime, "size": size}))])
        except ValueError:
            with contextlib.suppress(OSError):
                self._path(file_id).unlink()
            raise
        self.on_write()
        self.emit(events.WorkspaceChanged(frozenset({TABLE})))
        return self.cache_file(file_id)

    def cache_file(self, file_id: str) -> CannedFile:
        return next(f for f in self.cache.workspace.canned_files() if f.id == file_id)

    async def remove(self, file: CannedFile) -> None:
        """Take a file off its canned reply (online; a tombstone, as for the reply itself). One the server
        refused to add is forgotten here; one still queued must be sent first."""
        if file.local_state == "failed":
            self.cache.workspace.discard_failed(TABLE, {"id": file.id})
            with contextlib.suppress(OSError):
                self._path(file.id).unlink()
            self.emit(events.WorkspaceChanged(frozenset({TABLE})))
            return
        if file.local_state == "pending":
            raise ValueError("this file is not on the server yet: it can be removed once it is sent")
        await self.account.ensure_fresh()
        rows = await self.account.with_refresh(
            lambda: self.remote.update_where(TABLE, {"id": file.id, "deleted_at": None}, {"deleted_at": "now"})
        )
        if not rows:
            still = await self.account.with_refresh(lambda: self.remote.select_where(TABLE, {"id": file.id}))
            if still and still[0].get("deleted_at") is None:
                raise PermanentError("you may not change this canned reply's files", code="42501")
            rows = still
        await self.cache.workspace.apply_rows(TABLE, rows)
        with contextlib.suppress(OSError):
            self._path(file.id).unlink()
        self.emit(events.WorkspaceChanged(frozenset({TABLE})))

    def _keep(self, file_id: str, source: Path) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self._path(file_id)
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        partial.replace(target)

    async def refresh(self) -> None:
        """Download the live files this device lacks and drop the copies of removed ones (after each pull)."""
        if not self.user.is_staff:
            return
        async with self._lock:
            # a row whose id is no uuid (a hostile server's) names no file and must not fail the round
            live = [f for f in self.cache.workspace.canned_files() if _is_uuid(f.id)]
            wanted = {str(uuid.UUID(f.id)) for f in live}
            if self.folder.is_dir():
                for path in self.folder.iterdir():
                    if path.name not in wanted:
                        with contextlib.suppress(OSError):
                            path.unlink()
            arrived = False
            for file in live:
                if self.local(file) is not None:
                    continue
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    await self.remote.download_file(BUCKET, file.object_path, self._path(file.id), file.sha256)
                    arrived = True
                except Exception as exc:  # the next round tries again; the picker says it is not here yet
                    log.info("canned reply file %s not downloaded: %s", file.id, exc)
            if arrived:
                self.emit(events.WorkspaceChanged(frozenset({TABLE})))


async def upload_queued(cache: Cache, remote: Remote, entry: OutboxEntry) -> None:
    """Before a queued canned reply file's row is sent (sync/push.py): its bytes, from this device's copy."""
    if entry.kind != "workspace" or entry.payload.get("table") != TABLE or entry.payload.get("op") != "insert":
        return
    row = entry.payload["row"]
    if not _is_uuid(str(row.get("id"))):
        raise PermanentError("the file's id is no uuid", code="22023")
    path = CannedFiles.folder_of(cache.path) / str(uuid.UUID(str(row["id"])))
    if not path.is_file():
        raise PermanentError("this device's copy of the file is gone: attach it again", code="22023")
    await remote.upload_file(BUCKET, str(row["object_path"]), path, attachments.mime_of(str(row["name"])))
