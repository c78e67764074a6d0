"""The signed-in user's view of everyone's pictures (the rules and the files are in sync/avatars.py).

Pictures are downloaded beside the cache file (``<cache>.avatars/``) after every pull and whenever a profile
changes live, so they show offline and other devices see a new picture at once; setting one's own picture is
online-only (see sync/avatars.py for why). Replacing or removing one's picture deletes the previous object from
Storage once the profile no longer names it (the bucket's policy lets users delete only their own objects); a
delete that fails (the network went after the profile changed) leaves that object in the bucket, unnamed, until
the worker's orphan purge (notify/orphans.py) removes pictures no profile names after its grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from sync import avatars, events
from sync.account import Account
from sync.cache import Cache
from sync.errors import SyncError
from sync.models import LocalUser
from sync.remote import Remote

log = logging.getLogger(__name__)


class Avatars:
    def __init__(
        self, cache: Cache, remote: Remote, user: LocalUser, account: Account, emit: Callable[[events.Event], None]
    ) -> None:
        self.cache, self.remote, self.user, self.account, self.emit = cache, remote, user, account, emit
        self.files = avatars.AvatarFiles(self.folder(cache.path))

    @staticmethod
    def folder(cache_path: Path) -> Path:
        """Where the pictures of a cache's users live (deleted with the cache on sign-out)."""
        return cache_path.with_name(cache_path.name + ".avatars")

    def file(self, user_id: str) -> Path | None:
        """The local copy of a user's current picture, or None (show initials)."""
        return self.files.path(user_id, self.cache.avatar_url(user_id))

    async def set(self, path: Path | None) -> None:
        """Set this user's picture (None removes it); online only. ValueError for a picture the bucket would
        refuse (size, type), the sync error tree when the server cannot be reached or refuses."""
        user, files, account = self.user, self.files, self.account
        await account.ensure_fresh()
        async with files.lock:
            previous = avatars.key_of(user.id, self.cache.avatar_url(user.id))
            uploaded = None if path is None else await files.upload(self.remote, user.id, path, account.with_refresh)
            url = None if uploaded is None else avatars.url_of(uploaded[0])
            row = await account.with_refresh(lambda: self.remote.update_profile(user.id, {"avatar_url": url}))
            if row is not None:
                await self.cache.apply_live({"profiles": [row]})
            if uploaded is not None:
                await asyncio.to_thread(files.keep, uploaded[0], uploaded[1].data)
            if row is not None and previous is not None and previous != (uploaded[0] if uploaded else None):
                await self._remove_previous(previous)
        self.emit(events.AvatarsChanged(frozenset({user.id})))

    async def _remove_previous(self, key: str) -> None:
        """The picture the profile named before: nobody shows it any more, so it leaves Storage."""
        try:
            await self.account.with_refresh(lambda: self.remote.remove_files(avatars.BUCKET, [key]))
        except SyncError as exc:  # the new picture is set; the old object stays behind, unnamed
            log.info("previous avatar %s not removed from Storage: %s", key, exc)

    async def refresh(self) -> None:
        """Download the pictures the cached profiles name and this device lacks (after each pull)."""
        arrived = await self.files.refresh(self.cache.avatar_urls, self.remote)
        if arrived:
            self.emit(events.AvatarsChanged(frozenset(arrived)))
