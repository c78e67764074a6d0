"""Object bytes on disk: one immutable file per object version, written by streaming.

Layout under `<data dir>/storage/`: `blobs/<v[:2]>/<v>` holds the bytes of object version `v` (a
UUID the database row carries in `storage.objects.version`), `staging/` the uploads in progress,
`resumable/` the TUS uploads. A version file is never modified after it is committed, so a copy is
a hard link, a move is only a database update, and a reader holding a file open is never disturbed by
an upsert that replaces the object (the old file is unlinked after the new row committed). Names
from the API never reach the file system: nothing a client sends can point outside this tree.

`BlobWriter` keeps at most `FLUSH_BYTES` in memory, writes and hashes in a worker thread (the event
loop never blocks on the disk), enforces the size limit as the bytes arrive and fsyncs before the
rename that commits the file.

Every file and folder here is this user's alone (folders 0700, files 0600; the root is made so at every start, so
a tree an older localbase left world-readable is closed too): the bytes are customers' attachments and internal
notes' files, which RLS guards over the API and nothing but these modes guards from another user of the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

FLUSH_BYTES = 1024 * 1024


class TooLarge(Exception):
    """The bytes passed the size limit; the partial file has been removed."""


@dataclass(frozen=True)
class Stored:
    version: str
    size: int
    etag: str  # quoted MD5 hex, as S3 and Supabase Storage report it


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)  # the one gate: no other user can enter the tree whatever modes lie below
        for sub in ("blobs", "staging", "resumable"):
            (root / sub).mkdir(mode=0o700, exist_ok=True)
        # a plain upload lives only as long as its request: whatever a crash left half-written goes
        for stale in (root / "staging").glob("*.part"):
            _unlink(stale)

    def path(self, version: str) -> Path:
        """The file of a committed version; the version is always a UUID we generated."""
        uuid.UUID(version)  # refuses anything that is not ours before it becomes a path
        return self.root / "blobs" / version[:2] / version

    def writer(self, limit: int | None) -> BlobWriter:
        return BlobWriter(self, limit)

    async def remove(self, version: str | None) -> None:
        if not version:
            return
        with contextlib.suppress(ValueError):
            path = self.path(version)
            await to_thread.run_sync(_unlink, path)

    def remove_unlisted(self, live: set[str]) -> int:
        """Delete the version files not in `live` (blocking; returns how many)."""
        removed = 0
        for path in (self.root / "blobs").glob("*/*"):
            if path.name not in live:
                _unlink(path)
                removed += 1
        return removed

    async def link_copy(self, version: str) -> str:
        """A new version with the same bytes (a hard link; a copy where links are not possible)."""
        new = str(uuid.uuid4())
        src, dst = self.path(version), self.path(new)

        def run() -> None:
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:  # a file system without links: a copy, made this user's alone as every file here
                try:
                    with src.open("rb") as fin, open_private(dst, exclusive=True) as fout:
                        shutil.copyfileobj(fin, fout, FLUSH_BYTES)
                        fout.flush()
                        os.fsync(fout.fileno())
                except BaseException:
                    _unlink(dst)
                    raise

        await to_thread.run_sync(run)
        return new

    async def commit_file(self, staged: Path) -> str:
        """Move a fully written, fsynced file (e.g. a finished resumable upload) into the blobs."""
        version = str(uuid.uuid4())
        target = self.path(version)

        def run() -> None:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(staged, target)

        await to_thread.run_sync(run)
        return version


def open_private(path: Path, *, exclusive: bool = False) -> BinaryIO:
    """A new file (truncated if it exists and `exclusive` is off) for writing, readable by this user only."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(FLUSH_BYTES):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


class BlobWriter:
    """Streams one upload into a staging file; `commit()` turns it into a version file."""

    def __init__(self, store: BlobStore, limit: int | None) -> None:
        self._store = store
        self.limit = limit
        self.size = 0
        self._path = store.root / "staging" / f"{uuid.uuid4()}.part"
        self._fh: BinaryIO | None = None
        self._buffer = bytearray()
        self._md5 = hashlib.md5(usedforsecurity=False)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            await self.discard()
            raise TooLarge
        self._buffer += data
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data = bytes(self._buffer)
        self._buffer.clear()

        def run() -> None:
            if self._fh is None:
                self._fh = open_private(self._path)
            self._fh.write(data)
            self._md5.update(data)

        await to_thread.run_sync(run)

    async def commit(self) -> Stored:
        await self._flush()
        version = str(uuid.uuid4())
        target = self._store.path(version)

        def run() -> None:
            if self._fh is None:
                self._fh = open_private(self._path)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(self._path, target)

        await to_thread.run_sync(run)
        return Stored(version, self.size, f'"{self._md5.hexdigest()}"')

    async def discard(self) -> None:
        self._buffer.clear()

        def run() -> None:
            if self._fh is not None:
                self._fh.close()
            _unlink(self._path)

        await to_thread.run_sync(run)
