"""Avatar deletes waiting for Storage: the previous picture of this user, to remove from the `avatars` bucket
once the profile no longer names it (sync/avatar_store.py). One row per object key (``avatar_deletes``, cache
schema v14), written *before* the profile changes on the server and removed when Storage confirmed the delete
or the profile turned out to name that picture again; so a delete the network or a killed app interrupted is
retried after the next pull, and one whose profile change never happened never deletes the picture in use.
Local only: never pushed, never pulled; sign-out deletes it with the cache (the server's orphan purge,
notify/orphans.py, removes what is left).
"""

from __future__ import annotations

from sync.cache import writes
from sync.cache.files import Store


class AvatarDeletes:
    """``Cache.avatar_deletes``: queue, list and settle the deletes of this user's previous pictures."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def pending(self) -> list[str]:
        """Object keys waiting to be removed, oldest first."""
        rows = self._store.reader.execute("select key from avatar_deletes order by queued_at, key").fetchall()
        return [str(r[0]) for r in rows]

    async def aqueue(self, key: str) -> None:
        """Remember that ``key`` is to leave Storage (durable before the profile changes on the server)."""
        await self._store.awrite(
            lambda c: c.execute(
                "insert into avatar_deletes (key, queued_at) values (?, ?) on conflict (key) do nothing",
                (key, writes.now_ts()),
            )
        )

    async def asettle(self, keys: list[str]) -> None:
        """These are removed from Storage, or are not to be: forget them."""
        if keys:
            await self._store.awrite(
                lambda c: c.executemany("delete from avatar_deletes where key = ?", [(k,) for k in keys])
            )
