"""The storage service of one running stack: where bytes live, how large they may be, and the
start-up sweep of bytes no row names.

The global upload limit mirrors a Supabase project's (the Supabase CLI's default is 50 MiB); a
bucket's `file_size_limit` can only lower it. `STORAGE_FILE_SIZE_LIMIT` (bytes) changes it for a
stack, like `FILE_SIZE_LIMIT` does for Supabase Storage.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from anyio import to_thread
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection

from localbase.context import StackContext, context
from localbase.storage.blobs import BlobStore
from localbase.storage.store import Bucket

DEFAULT_FILE_SIZE_LIMIT = 50 * 1024 * 1024
EXTRAS_KEY = "storage"


def global_limit_from_env() -> int:
    value = os.environ.get("STORAGE_FILE_SIZE_LIMIT", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_FILE_SIZE_LIMIT


@dataclass
class StorageService:
    blobs: BlobStore
    file_size_limit: int = field(default_factory=global_limit_from_env)
    upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> StorageService:
        return cls(BlobStore(root))

    async def collect_orphans(self, pool: AsyncConnectionPool) -> int:
        """Remove version files no object row names (a crash between storing the bytes and committing
        the row leaves one). Run at start, before any upload can be in flight."""
        async with pool.connection() as conn:
            cur = await conn.execute("select version from storage.objects where version is not null")
            live = {row[0] for row in await cur.fetchall()}
        return await to_thread.run_sync(self.blobs.remove_unlisted, live)

    def limit_for(self, bucket: Bucket) -> int:
        if bucket.file_size_limit is not None and bucket.file_size_limit > 0:
            return min(bucket.file_size_limit, self.file_size_limit)
        return self.file_size_limit


def attach(ctx: StackContext, root: Path) -> StorageService:
    service = StorageService.open(root)
    ctx.extras[EXTRAS_KEY] = service
    return service


def service_of(conn: HTTPConnection) -> tuple[StackContext, StorageService]:
    ctx = context(conn)
    service = ctx.extras[EXTRAS_KEY]
    assert isinstance(service, StorageService)
    return ctx, service
