"""``CannedFiles`` (``engine.canned_files``): the files canned replies carry (issue 14), for staff.

Rows (``canned_reply_files``, migration 20261201000410) are pulled by cursor like the other workspace tables;
the bytes are downloaded beside the cache (``<cache>.canned/<file id>``) after every pull, checked against
the row's sha256, so picking a canned reply attaches its files offline too. Adding or removing a file is
online-only, like setting one's picture (sync/avatar_store.py): a file is uploaded first (to
``canned/<reply>/<name>`` in the attachments bucket, which only who may write the reply may do) and then
described by its row, whose size and type the server takes from the stored object; there is nothing to queue
that could not be redone by picking the file again. The server refuses (RLS) what the user may not do; the
checks here (the bucket's size and type rules) only say so earlier.

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
from sync.errors import PermanentError
from sync.models import LocalUser
from sync.remote import Remote
from sync.workspace_rows import CannedFile

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
        self, cache: Cache, remote: Remote, user: LocalUser, account: Account, emit: Callable[[events.Event], None]
    ) -> None:
        self.cache, self.remote, self.user, self.account, self.emit = cache, remote, user, account, emit
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
        """Attach a file to a canned reply (online). ValueError for a file the bucket would refuse; the sync
        error tree when the server cannot be reached or refuses (PermanentError 42501: not yours to change)."""
        if not self.user.is_staff:
            raise ValueError("canned replies are for agents")
        name = name or path.name
        size = path.stat().st_size
        reason = attachments.refusal(name, size, attachments.mime_of(name))
        if reason is not None:
            raise ValueError(reason)
        if any(f.name == name for f in self.files(reply_id)):
            raise ValueError(f"this canned reply has a file named {name!r} already")
        file_id, key = str(uuid.uuid4()), f"canned/{uuid.UUID(reply_id)}/{name}"
        sha256 = await asyncio.to_thread(_sha256, path)
        await self.account.ensure_fresh()
        await self.account.with_refresh(lambda: self.remote.upload_file(BUCKET, key, path, attachments.mime_of(name)))
        row = {"id": file_id, "canned_reply_id": reply_id, "name": name, "sha256": sha256, "object_path": key}
        await self.account.with_refresh(lambda: self.remote.insert_ignore(TABLE, [row], "id"))
        stored = await self.account.with_refresh(lambda: self.remote.select_where(TABLE, {"id": file_id}))
        if not stored:
            raise PermanentError("the server did not keep the file", code="42501")
        await asyncio.to_thread(self._keep, file_id, path)
        await self.cache.workspace.apply_rows(TABLE, stored)
        self.emit(events.WorkspaceChanged(frozenset({TABLE})))
        return self.cache_file(file_id)

    def cache_file(self, file_id: str) -> CannedFile:
        return next(f for f in self.cache.workspace.canned_files() if f.id == file_id)

    async def remove(self, file: CannedFile) -> None:
        """Take a file off its canned reply (online; a tombstone, as for the reply itself)."""
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
