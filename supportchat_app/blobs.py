"""Attachment bytes for the page: ``/attachment/<id>`` (the file) and ``/attachment/<id>/thumb`` (a small
WebP made locally with Pillow and kept beside the cached files), never inlined into the page as base64.

Who gets a file: the route sits behind the launch guard like every other path (launch.py), and it answers
only from the cache of the browser session that asks (its session cookie picks the app's session slot, as
for pages), so another signed-in session of the same app cannot read this one's files by id. An internal
note's file is refused to anyone who is not staff even if it were in their cache. The bytes come from
``SyncEngine.attachments.file`` (downloaded on demand, size-bounded LRU); thumbnails live where
``SyncEngine.attachments.thumbnail`` says and count against the same bound (``thumbnail_used`` on each one served).
A thumbnail is put in place by the files it was made for (``keep_thumbnail``): if a role change emptied the folder
while it was being made, it is deleted and the page gets 404.

The file is served with ``nosniff``, a sandboxing CSP and ``no-store``; only types a browser shows without
running anything (raster images, PDF, plain text) are ``inline``, everything else is a download. An image whose
header declares more pixels than a thumbnail may have is not shown at all (415; ``?download=1`` still saves it): a
few kilobytes may declare gigabytes of bitmap, and a browser decodes an image by its bytes whatever its type.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from nicegui import app
from PIL import Image, ImageOps
from starlette.responses import FileResponse, PlainTextResponse, Response

from supportchat_app import backend as backend_module
from sync.attachment_files import AttachmentFiles, FolderDeleted
from sync.attachments import THUMBNAIL_FORMATS, THUMBNAIL_MIME_TYPES
from sync.images import dimensions_of

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger(__name__)

THUMB_BOX = (480, 360)
MAX_THUMB_PIXELS = 60_000_000  # larger images (a decompression bomb, or a 60-megapixel photo) get no thumbnail
INLINE_TYPES = THUMBNAIL_MIME_TYPES | {"application/pdf"}
TEXT_TYPES = frozenset({"text/plain", "text/csv", "application/json"})
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_NOT_IN_QUOTES = re.compile(r'[\x00-\x1f\x7f"\\]')
_locks: dict[str, asyncio.Lock] = {}  # one download or thumbnail at a time per file (lazy images ask twice)


def engine_for(request: Request) -> SyncEngine | None:
    """The signed-in engine of the browser session making the request; None if it has none."""
    session_id = request.session.get("id") if "session" in request.scope else None
    if not isinstance(session_id, str):
        return None
    current = backend_module.current()
    slot = current.slots.get(session_id)
    workspace = current.workspaces.get(slot) if slot is not None else None
    if workspace is None or workspace.engine.user is None:
        return None
    return workspace.engine


def _visible(engine: SyncEngine, attachment_id: str) -> dict[str, object] | None:
    """The cached attachment row if this user may see it (an internal note's file: staff only)."""
    try:
        uuid.UUID(attachment_id)
    except ValueError:
        return None
    row = engine.cache.attachment(attachment_id)
    if row is None:
        return None
    user = engine.user
    message = engine.cache.message(str(row["message_id"]))
    if message is None or user is None or (message.is_internal and not user.is_staff):
        return None
    return row


async def _file(files: AttachmentFiles, attachment_id: str) -> Path | Response:
    lock = _locks.setdefault(attachment_id, asyncio.Lock())
    try:
        async with lock:
            return await files.file(attachment_id)
    except Exception as exc:  # offline, refused, gone: the page shows its placeholder
        log.info("attachment %s unavailable: %s", attachment_id, exc)
        return PlainTextResponse("This file cannot be downloaded right now.", status_code=503, headers=HEADERS)
    finally:
        if not lock.locked():
            _locks.pop(attachment_id, None)


def disposition(kind: str, name: str) -> str:
    """``Content-Disposition`` for a file someone else named: the ASCII ``filename`` with ``_`` for quotes,
    backslashes and control characters (uvicorn refuses a header with CR, LF or another control: the file answered
    500), and the whole name percent-encoded in ``filename*``."""
    ascii_name = _NOT_IN_QUOTES.sub("_", name.encode("ascii", "replace").decode())
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def too_large_to_show(path: Path, mime: str) -> bool:
    """Whether an image's header declares more than ``MAX_THUMB_PIXELS``: the page must not decode it (the lightbox,
    a new tab), whatever its type is served as (a browser decodes an image by its bytes), only save it."""
    size = dimensions_of(path) if mime in THUMBNAIL_MIME_TYPES else None
    return size is not None and size[0] * size[1] > MAX_THUMB_PIXELS


def make_thumbnail(source: Path, target: Path, mime: str, keep: Callable[[Path], object] | None = None) -> None:
    """A WebP no larger than THUMB_BOX, upright per EXIF, written beside ``target`` and renamed; with ``keep``, that
    puts the written file in place instead (``AttachmentFiles.keep_thumbnail``: not after a role change).

    Only the decoder of the declared ``mime`` (``THUMBNAIL_FORMATS``) reads the file: bytes of any other format
    raise ``PIL.UnidentifiedImageError`` (an OSError, answered 415), so no other Pillow plugin ever sees them."""
    with Image.open(source, formats=[THUMBNAIL_FORMATS[mime]]) as image:
        width, height = image.size
        if width * height > MAX_THUMB_PIXELS:
            raise ValueError(f"{width} x {height} is too large for a thumbnail")
        image.draft("RGB", THUMB_BOX)  # JPEG decodes at a reduced scale
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail(THUMB_BOX)
        if upright.mode not in ("RGB", "RGBA"):
            upright = upright.convert("RGBA")
        part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        upright.save(part, "WEBP", quality=80)
    if keep is not None:
        keep(part)
    else:
        os.replace(part, target)


async def _thumbnail(files: AttachmentFiles, attachment_id: str, mime: str) -> Path | Response:
    """The attachment's thumbnail, made now if it is not there; put in place only if no role change emptied the
    folder meanwhile (``AttachmentFiles.keep_thumbnail``), else 404 and nothing left on disk."""
    thumb = files.thumbnail(attachment_id)  # counted in the files' LRU bound
    if thumb.exists():
        return thumb
    source = await _file(files, attachment_id)
    if isinstance(source, Response):
        return source
    thumb.parent.mkdir(parents=True, exist_ok=True)
    keep = functools.partial(files.keep_thumbnail, attachment_id=attachment_id)
    try:
        await asyncio.to_thread(make_thumbnail, source, thumb, mime, keep)
    except FolderDeleted:
        return PlainTextResponse("No such image.", status_code=404, headers=HEADERS)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.info("no thumbnail for %s: %s", attachment_id, exc)
        return PlainTextResponse("This image cannot be shown.", status_code=415, headers=HEADERS)
    return thumb


def create() -> None:
    @app.get("/attachment/{attachment_id}", include_in_schema=False)
    async def attachment_file(request: Request, attachment_id: str, download: int = 0) -> Response:
        engine = engine_for(request)
        row = _visible(engine, attachment_id) if engine is not None else None
        if engine is None or row is None:
            return PlainTextResponse("No such file.", status_code=404, headers=HEADERS)
        path = await _file(engine.attachments, attachment_id)
        if isinstance(path, Response):
            return path
        mime, name = str(row["mime"]), str(row["name"])
        if not download and await asyncio.to_thread(too_large_to_show, path, mime):
            return PlainTextResponse(
                "This image is too large to show; save it instead.", status_code=415, headers=HEADERS
            )
        if download or mime not in INLINE_TYPES | TEXT_TYPES:
            media, kind = "application/octet-stream", "attachment"
        else:
            media, kind = ("text/plain; charset=utf-8" if mime in TEXT_TYPES else mime), "inline"
        return FileResponse(path, media_type=media, headers={**HEADERS, "Content-Disposition": disposition(kind, name)})

    @app.get("/attachment/{attachment_id}/thumb", include_in_schema=False)
    async def attachment_thumb(request: Request, attachment_id: str) -> Response:
        engine = engine_for(request)
        row = _visible(engine, attachment_id) if engine is not None else None
        if engine is None or row is None or str(row["mime"]) not in THUMBNAIL_MIME_TYPES:
            return PlainTextResponse("No such image.", status_code=404, headers=HEADERS)
        # the files as this user and role opened them: a role change meanwhile leaves nothing made here behind
        files = engine.attachments
        thumb = await _thumbnail(files, attachment_id, str(row["mime"]))
        if isinstance(thumb, Response):
            return thumb
        await files.thumbnail_used(attachment_id)  # the newest use; older files may leave
        return FileResponse(thumb, media_type="image/webp", headers=HEADERS)
