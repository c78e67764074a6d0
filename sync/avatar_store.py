"""The signed-in user's view of everyone's pictures (the rules and the files are in sync/avatars.py).

Pictures are downloaded beside the cache file (``<cache>.avatars/``) after every pull and whenever a profile
changes live, so they show offline and other devices see a new picture at once; setting one's own picture is
online-only (see sync/avatars.py for why).

Replacing or removing one's picture deletes the previous object from Storage (the bucket's policy lets users
delete only their own objects), durably: the delete is queued in the cache (sync/cache/avatar_deletes.py)
*before* the profile changes on the server, tried at once, and tried again after every pull until Storage
confirms it, so a network that drops at that moment or an app killed then leaves nothing behind for long.
Each try first reads the profile from the server and never deletes the picture it names (the profile change
failed, or another device went back to that picture): such a queued delete is simply dropped. What a signed-out
device never got to delete, the worker's orphan purge (notify/orphans.py) removes after its grace period.
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
            if previous is not None and previous != (uploaded[0] if uploaded else None):
                await self.cache.avatar_deletes.aqueue(previous)  # before the profile changes: a crash loses nothing
            row = await account.with_refresh(lambda: self.remote.update_profile(user.id, {"avatar_url": url}))
            if row is not None:
                await self.cache.apply_live({"profiles": [row]})
            if uploaded is not None:
                await asyncio.to_thread(files.keep, uploaded[0], uploaded[1].data)
            await self._remove_unused()
        self.emit(events.AvatarsChanged(frozenset({user.id})))

    async def _remove_unused(self) -> None:
        """Remove the queued previous pictures from Storage, except one the server's profile names now; what
        fails stays queued for the next pull. Called under ``files.lock`` (no picture is being set meanwhile)."""
        queued = self.cache.avatar_deletes.pending()
        if not queued:
            return
        own = [k for k in queued if k.startswith(f"{self.user.id}/")]
        settled = [k for k in queued if k not in own]  # never anybody else's (the bucket would refuse anyway)
        try:
            row = await self.account.with_refresh(lambda: self.remote.profile(self.user.id))
            named = avatars.key_of(self.user.id, None if row is None else row.get("avatar_url"))
            settled += [k for k in own if k == named]  # in use again: it stays, and is no longer to be deleted
            doomed = [k for k in own if k != named]
            if doomed:
                await self.account.with_refresh(lambda: self.remote.remove_files(avatars.BUCKET, doomed))
                settled += doomed
        except SyncError as exc:  # offline, or Storage refused: the next pull tries again
            log.info("previous avatars %s not removed from Storage yet: %s", queued, exc)
        await self.cache.avatar_deletes.asettle(settled)

    async def refresh(self) -> None:
        """Download the pictures the cached profiles name and this device lacks (after each pull), and retry
        the deletes of this user's previous pictures that have not gone through yet."""
        arrived = await self.files.refresh(self.cache.avatar_urls, self.remote)
        if self.cache.avatar_deletes.pending():
            async with self.files.lock:
                await self._remove_unused()
        if arrived:
            self.emit(events.AvatarsChanged(frozenset(arrived)))
