"""Avatars: each user's picture in the private Storage bucket `avatars`, named by ``profiles.avatar_url``
(migration 20261130000150: ``avatars/<user id>/<file>``, at most 1 MiB, PNG/JPEG/WebP/GIF, only the owner
writes their folder, readers as the profiles policies allow).

- ``checked`` reads a picture the user chose and refuses what the bucket would refuse (size, type) with a
  sentence, before anything is sent. The type comes from the file's first bytes, not its name (sync/images.py).
- ``object_key`` names the object after its content (``<user id>/avatar-<sha256 prefix>.<ext>``): a new
  picture gets a new name, so every device notices the change by the name alone and never shows a stale
  copy; uploading the same picture twice is harmless (upsert of the same bytes).
- ``AvatarFiles`` keeps downloaded pictures beside the cache file (``<cache>.avatars/<user id>/<file>``),
  so avatars show offline; ``refresh`` downloads what the cached profiles name and is missing, and drops
  pictures no profile names any more. A download that is not a PNG, JPEG, GIF or WebP by its bytes is deleted
  and not fetched again by this process (anyone can upload any bytes under an image type and name): the user
  shows initials, and the app never holds a page where a picture should be. So is one whose header declares more
  than ``MAX_AVATAR_SIDE`` pixels a side (sync/images.py: a decompression bomb for every page that shows it), or a
  size that cannot be read to the end (``UNKNOWN_SIZE``), which ``checked`` refuses with a sentence before upload.
  Setting a picture is online-only (``SyncEngine.avatars.set``, sync/avatar_store.py): it is rare, nothing else
  waits on it, and a picture that silently waited in an outbox would look set to the user but not to anyone else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sync.errors import SyncError
from sync.images import (
    MAX_AVATAR_SIDE,
    UNKNOWN_SIZE,
    avatar_too_large,
    dimensions,
    dimensions_of,
    sniff,
    sniff_file,
)
from sync.remote import Remote

log = logging.getLogger(__name__)

BUCKET: Final = "avatars"
MAX_BYTES: Final = 1024 * 1024
# only a name with a picture's extension: the app serves the file by its content (supportchat_app/pictures.py),
# but nothing else that may take the type from the name should ever see an .html or .svg
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,194}\.(?:png|jpe?g|gif|webp)$", re.IGNORECASE)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Picture:
    data: bytes
    mime: str
    ext: str


def checked(path: Path) -> Picture:
    """The picture at ``path`` if the bucket will take it, else ValueError with what to do."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"the picture cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise ValueError("the picture is empty")
    if size > MAX_BYTES:
        raise ValueError(f"the picture is {size / 1024 / 1024:.1f} MB; a picture may be at most 1 MB")
    data = path.read_bytes()
    kind = sniff(data)
    if kind is None:
        raise ValueError("a picture must be a PNG, JPEG, WebP or GIF image")
    declared = dimensions(data)
    if declared == UNKNOWN_SIZE:
        raise ValueError("the picture's size cannot be read (the file is damaged or unusual); save it again and retry")
    if declared is not None and avatar_too_large(declared):
        width, height, side = *declared, MAX_AVATAR_SIDE
        raise ValueError(f"the picture is {width} x {height} pixels; a picture may be at most {side} x {side}")
    return Picture(data, kind[0], kind[1])


def object_key(user_id: str, picture: Picture) -> str:
    return f"{user_id}/avatar-{hashlib.sha256(picture.data).hexdigest()[:16]}.{picture.ext}"


def url_of(key: str) -> str:
    """What ``profiles.avatar_url`` holds for an object key."""
    return f"{BUCKET}/{key}"


def key_of(user_id: str, avatar_url: str | None) -> str | None:
    """The object key a profile's avatar_url names, if it is a picture in that user's own folder."""
    if not avatar_url or not _UUID.match(user_id):
        return None
    prefix = f"{BUCKET}/{user_id}/"
    name = avatar_url[len(prefix) :] if avatar_url.startswith(prefix) else ""
    return f"{user_id}/{name}" if _FILE.match(name) else None


def _unfit(local: Path) -> str | None:
    """Why a downloaded file may not be shown as a picture, or None."""
    if sniff_file(local) is None:
        return "is not a PNG, JPEG, GIF or WebP image"
    declared = dimensions_of(local)
    if declared == UNKNOWN_SIZE:
        return "declares a size that cannot be read"
    if avatar_too_large(declared):
        return f"declares more than {MAX_AVATAR_SIDE} pixels a side"
    return None


class AvatarFiles:
    """Downloaded pictures under ``root``: ``<root>/<user id>/<file>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # a refresh reads the profiles and drops unnamed files: it must not interleave with setting a picture
        self.lock = asyncio.Lock()
        self.refused: set[str] = set()  # keys whose download was not a picture: not fetched again

    def path(self, user_id: str, avatar_url: str | None) -> Path | None:
        """The local copy of a user's current picture, if this device has it."""
        key = key_of(user_id, avatar_url)
        if key is None:
            return None
        local = self.root / key
        return local if local.is_file() else None

    def keep(self, key: str, data: bytes) -> Path:
        """Store a picture this device just uploaded (it shows at once, and offline)."""
        local = self.root / key
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(local.name + ".part")
        part.write_bytes(data)
        part.replace(local)
        return local

    async def upload(
        self, remote: Remote, user_id: str, path: Path, call: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> tuple[str, Picture]:
        """Check the picture and upload it (``call`` adds the engine's token refresh); returns the object key
        and the picture, to ``keep`` once the profile names it. ValueError for a picture the bucket would refuse."""
        picture = await asyncio.to_thread(checked, path)
        key = object_key(user_id, picture)
        await call(lambda: remote.upload_file(BUCKET, key, path, picture.mime))
        return key, picture

    async def refresh(self, urls: Callable[[], Mapping[str, str | None]], remote: Remote) -> set[str]:
        """Download the pictures the profiles name (``urls()``: user id → avatar_url, read under the lock)
        that are missing here; drop the ones no longer named. Returns the users whose picture arrived or went. A failed
        download is logged and tried again by the next refresh (avatars are a nicety: initials show meanwhile)."""
        async with self.lock:
            arrived: set[str] = set()
            wanted: dict[str, str] = {}
            for user_id, url in urls().items():
                key = key_of(user_id, url)
                if key is not None:
                    wanted[user_id] = key
            for user_id, key in wanted.items():
                local = self.root / key
                if local.is_file() or key in self.refused:
                    continue
                local.parent.mkdir(parents=True, exist_ok=True)
                try:
                    await remote.download_file(BUCKET, key, local)
                except SyncError as exc:
                    log.info("avatar of %s not downloaded: %s", user_id, exc)
                    continue
                unfit = await asyncio.to_thread(_unfit, local)
                if unfit is not None:
                    log.warning("avatar of %s %s: dropped", user_id, unfit)
                    local.unlink(missing_ok=True)
                    self.refused.add(key)
                    continue
                arrived.add(user_id)
            gone = await asyncio.to_thread(self._drop_unnamed, wanted)
            return arrived | gone

    def _drop_unnamed(self, wanted: Mapping[str, str]) -> set[str]:
        """Delete the pictures no profile names; returns the users left without one here."""
        gone: set[str] = set()
        if not self.root.is_dir():
            return gone
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            keep = wanted.get(folder.name)
            for file in folder.iterdir():
                if keep is None or f"{folder.name}/{file.name}" != keep:
                    file.unlink(missing_ok=True)
            if keep is None:
                shutil.rmtree(folder, ignore_errors=True)
                gone.add(folder.name)
        return gone
