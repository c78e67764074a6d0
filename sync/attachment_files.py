"""The signed-in user's attachment files on disk (the pure rules are in sync/attachments.py).

Staging: a file about to be sent is checked against the bucket's limits, then copied (hashed on the way)
into the cache's files folder, so the outbox owns a copy the user cannot move or change before the upload.
Opening: an attachment's file is downloaded on demand and kept; downloaded files beyond ``cache_bytes`` are
evicted least recently used first, and files still to upload are never evicted. Thumbnails (the app makes them,
``thumbs/<id>.webp`` beside the files) and the copies opened with the system's application (``open/<id>/<name>``)
count against the same bound and leave by the same LRU: a thumbnail's last use is its file's modification time,
which ``thumbnail_used`` moves each time one is shown, an opened copy's its folder's, moved by ``opened``. An
opened copy whose attachment row is gone (its message was deleted, the cache rebuilt) leaves at the next eviction.

Generations: a role change deletes the folder's downloads, thumbnails and opened copies (``forget_unlisted``) while a
thumbnail may be under way in a worker thread, or a download in flight, for the user's files as they were opened
before (they may be of tickets the new role does not see). Each deletion starts a new generation of the folder,
under ``_FOLDER_LOCK``; a thumbnail is put in place (``keep_thumbnail``) and a download kept (``file``) under the
same lock and only if the generation is still the one these files were opened in, else deleted: nothing made for
the old role outlives the deletion, whichever comes first.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sync import attachments
from sync.cache import Cache
from sync.remote import Remote
from sync.uploads import Uploads

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
THUMB = "thumb:"  # the eviction plan's key prefix of a thumbnail (a file's key is its attachment id)
OPENED = "open:"  # and of an opened copy's folder

_FOLDER_LOCK = threading.Lock()  # a deletion of a folder's downloads, and each thumbnail or download it could miss
_generations: dict[Path, int] = {}  # files folder -> its deletions so far (one per role change on this computer)


class FolderDeleted(KeyError):
    """The files folder's downloads were deleted (a role change) after these files were opened: what was being
    made for them is deleted too."""


class AttachmentFiles:
    def __init__(self, cache: Cache, remote: Remote, uploader_id: str, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.cache, self.remote, self.uploader_id = cache, remote, uploader_id
        self.cache_bytes = cache_bytes  # downloaded files kept, LRU beyond
        self.uploads = Uploads()  # bytes sent of the files uploading now (the app's progress bars), cancels
        self.folder = cache.files_dir
        with _FOLDER_LOCK:
            self.generation = _generations.get(self.folder, 0)

    def _current(self) -> bool:
        """Whether the folder is still in the generation these files were opened in (call under _FOLDER_LOCK)."""
        return _generations.get(self.folder, 0) == self.generation

    def stage(
        self, ticket_id: str, message_id: str, files: Sequence[Path], names: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Check every file (ValueError with the reason, nothing copied), then copy each into the cache's
        files folder; returns the attachment rows to queue with the message. ``names``, when given, are the
        files' names (a staged copy's own name is its attachment's id)."""
        checked = []
        for path, name in zip(files, names or [p.name for p in files], strict=True):
            size = path.stat().st_size
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            reason = attachments.refusal(name, size, mime)
            if reason is not None:
                raise ValueError(f"{name}: {reason}")
            checked.append((path, name, size, mime))
        folder = self.cache.files_dir
        folder.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
        for path, name, size, mime in checked:
            attachment_id = str(uuid.uuid4())
            local = folder / attachment_id
            digest = hashlib.sha256()
            with path.open("rb") as src, local.open("wb") as dst:
                while chunk := src.read(1024 * 1024):
                    digest.update(chunk)
                    dst.write(chunk)
            records.append(
                {
                    "id": attachment_id,
                    "message_id": message_id,
                    "ticket_id": ticket_id,
                    "uploader_id": self.uploader_id,
                    "name": name,
                    "mime": mime,
                    "size": size,
                    "sha256": digest.hexdigest(),
                    "local_path": str(local),
                    "object_path": attachments.object_key(ticket_id, message_id, name),
                }
            )
        return records

    @staticmethod
    def unstage(local_paths: Sequence[str]) -> None:
        """Delete staged copies (their message was not queued after all, or was discarded)."""
        for local in local_paths:
            Path(local).unlink(missing_ok=True)

    async def file(self, attachment_id: str) -> Path:
        """The attachment's file on disk, downloaded now if it is not there (raises the sync error tree
        when that fails: offline, refused, gone; KeyError for an attachment the cache does not have (also when the
        server deleted it during the download), or whose id is not a uuid: the id names the local file, so a
        hostile row's `../x` or `/abs` never becomes one)."""
        cache = self.cache
        row = cache.attachment(attachment_id)
        if row is None or not attachments.is_attachment_id(attachment_id):
            raise KeyError(attachment_id)
        now = time.time()
        local = Path(row["local_path"]) if row["local_path"] else None
        if local is None or not local.exists():
            local = cache.files_dir / attachment_id
            local.parent.mkdir(parents=True, exist_ok=True)
            await self.remote.download_file(attachments.BUCKET, str(row["object_path"]), local, str(row["sha256"]))
            with _FOLDER_LOCK:
                if not self._current():  # the folder was emptied for another role while this downloaded
                    local.unlink(missing_ok=True)
                    raise FolderDeleted(attachment_id)
        if not await cache.set_attachment_file(attachment_id, local, now):
            # the server deleted it while it downloaded (its tombstone was applied meanwhile): no file outlives it
            local.unlink(missing_ok=True)
            raise KeyError(attachment_id)
        await self.evict(keep=attachment_id)
        return local

    async def set_cache_bytes(self, limit: int) -> None:
        """A new bound on the downloaded files; beyond it they go now, least recently opened first."""
        if limit < 0:
            raise ValueError("the attachment cache size cannot be negative")
        self.cache_bytes = limit
        await self.evict()

    def thumbnail(self, attachment_id: str) -> Path:
        """Where an image attachment's thumbnail lives (made by the app, counted here); its folder exists."""
        if not attachments.is_attachment_id(attachment_id):
            raise KeyError(attachment_id)
        path = attachments.thumbnail_path(self.cache.files_dir, attachment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def open_folder(self, attachment_id: str) -> Path:
        """Where the copy of an attachment opened with the system's application goes (counted here)."""
        if not attachments.is_attachment_id(attachment_id):
            raise KeyError(attachment_id)
        return attachments.open_folder(self.cache.files_dir, attachment_id)

    async def opened(self, attachment_id: str) -> None:
        """A copy was made or opened again in ``open_folder``: the most recently used, and the bound applies."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.open_folder(attachment_id))
        await self.evict(keep=OPENED + attachment_id)

    def keep_thumbnail(self, part: Path, attachment_id: str) -> Path:
        """Put a thumbnail written at ``part`` (beside ``thumbnail``'s path) in place and return its path; if the
        folder was emptied for another role since these files were opened, delete it instead (FolderDeleted)."""
        target = attachments.thumbnail_path(self.folder, attachment_id)
        with _FOLDER_LOCK:
            if not self._current():
                part.unlink(missing_ok=True)
                raise FolderDeleted(attachment_id)
            os.replace(part, target)
        return target

    async def thumbnail_used(self, attachment_id: str) -> None:
        """A thumbnail was made or shown: it is now the most recently used, and the bound applies."""
        path = self.thumbnail(attachment_id)
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        await self.evict(keep=THUMB + attachment_id)

    def _thumbnails(self) -> list[attachments.CachedFile]:
        folder = self.cache.files_dir / "thumbs"
        held = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.endswith(".webp") and entry.is_file():
                    stat = entry.stat()
                    held.append(
                        attachments.CachedFile(THUMB + entry.name[: -len(".webp")], stat.st_size, stat.st_mtime)
                    )
        return held

    def _opened_copies(self) -> list[attachments.CachedFile]:
        """Each opened copy's folder: its files' bytes, last used when the folder last changed or was opened."""
        held = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.cache.files_dir / "open"):
                if entry.is_dir(follow_symlinks=False):
                    size = sum(f.stat().st_size for f in Path(entry.path).rglob("*") if f.is_file())
                    held.append(attachments.CachedFile(OPENED + entry.name, size, entry.stat().st_mtime))
        return held

    def used_bytes(self) -> int:
        """Bytes of downloaded and queued files, thumbnails and opened copies on this computer for this account."""
        return sum(size for _, size, _, _ in self.cache.cached_attachment_files()) + sum(
            t.size for t in self._thumbnails() + self._opened_copies()
        )

    def forget_unlisted(self) -> None:
        """Delete the files no attachment row of the cache names, and every thumbnail and opened copy: after the
        cache was rebuilt for another role (``SyncEngine._follow_role``) they are the downloads of tickets the user
        may no longer see; the copies of unsent messages' files, whose rows the rebuild kept, stay."""
        listed = {i for i, *_ in self.cache.cached_attachment_files()}
        folder = self.cache.files_dir
        with _FOLDER_LOCK:  # a new generation: files opened before (the old role's) keep nothing they make now
            self.generation = _generations[folder] = _generations.get(folder, 0) + 1
            shutil.rmtree(folder / "thumbs", ignore_errors=True)
            shutil.rmtree(folder / "open", ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder):
                    if entry.is_file(follow_symlinks=False) and entry.name not in listed:
                        os.unlink(entry.path)

    async def evict(self, keep: str | None = None) -> None:
        """Delete downloaded files, thumbnails and opened copies beyond ``cache_bytes`` (LRU; never ``keep`` nor
        files still to upload), and opened copies of attachments the cache no longer has."""
        cache = self.cache
        held = [
            attachments.CachedFile(i, size, used, pinned or i == keep)
            for i, size, used, pinned in cache.cached_attachment_files()
        ]
        held += [replace(t, pinned=t.key == keep) for t in self._thumbnails()]
        opened = self._opened_copies()
        unlisted = [o.key for o in opened if cache.attachment(o.key[len(OPENED) :]) is None]
        held += [replace(o, pinned=o.key == keep) for o in opened if o.key not in unlisted]
        evict = attachments.plan_eviction(held, self.cache_bytes)
        files = [victim for victim in evict if not victim.startswith((THUMB, OPENED))]
        for victim in evict + unlisted:
            if victim.startswith(THUMB):
                self.thumbnail(victim[len(THUMB) :]).unlink(missing_ok=True)
            elif victim.startswith(OPENED):
                shutil.rmtree(cache.files_dir / "open" / victim[len(OPENED) :], ignore_errors=True)
            else:
                (cache.files_dir / victim).unlink(missing_ok=True)
        if files:
            await cache.forget_attachment_files(files)
