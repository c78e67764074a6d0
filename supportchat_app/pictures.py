"""Locally cached pictures (avatars, sync/avatars.py) for the page: ``picture_url(path)`` names a file by a keyed
digest of its path and the one route ``/_sc/picture/<digest>/<owner>/<name>`` serves it.

Per session slot: the route answers only from the avatars folder of the signed-in engine of the browser session
that asks (``blobs.engine_for``, as attachments), so a page of another slot or account, or one with no session,
gets 404 even with a URL it saw. The digest is an HMAC of the file's path under a key drawn at start: the route
rebuilds the path from the asker's folder and the URL's owner and name, and only a digest made for exactly that
path matches. Nothing is kept per picture served; ``picture_url`` remembers at most MAX_URLS names (LRU) so a page
with many avatars does not stat each file on every draw, and memory stays bounded however many avatars are shown.

Why a route of our own and not NiceGUI's ``add_static_file``: that takes the content type from the file's name,
and a picture comes from someone else (a customer names and uploads their own avatar), so an ``.html`` avatar
would be a page on the app's origin acting as the signed-in user. Here the type comes from the file's bytes
(sync/images.py): a PNG, JPEG, GIF or WebP is served as that, anything else is a 404, and so is one that
declares more pixels than an avatar may have (a decompression bomb cached before downloads were checked for it);
every answer carries ``nosniff`` and a sandboxing CSP, and a picture is cached privately for an hour (its name
changes with its content). The route sits behind the launch guard like every other path (launch.py); one route
also means no route per file that a deleted ``ui.image`` would take down.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections import OrderedDict
from pathlib import Path

from fastapi import Request
from nicegui import app
from starlette.responses import PlainTextResponse, Response

from supportchat_app.blobs import engine_for
from sync.images import avatar_too_large, dimensions, sniff

ROUTE = "/_sc/picture"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
CACHE = "private, max-age=3600"
MAX_BYTES = 4 * 1024 * 1024  # an avatar is at most 1 MiB (sync/avatars.py); a larger file is not served

MAX_URLS = 4096  # names picture_url remembers (least recently drawn first out)

_KEY = secrets.token_bytes(32)  # this process's: a digest names a path only to the app that drew it
_urls: OrderedDict[Path, str] = OrderedDict()


def _digest(path: Path) -> str:
    return hmac.new(_KEY, str(path).encode(), "sha256").hexdigest()[:32]


def picture_url(path: Path | None) -> str:
    """A URL for a locally cached picture (``<avatars folder>/<owner>/<name>``); "" when there is no file."""
    if path is None:
        return ""
    url = _urls.get(path)
    if url is not None:
        _urls.move_to_end(path)
        return url
    if not path.is_file():
        return ""
    url = _urls[path] = f"{ROUTE}/{_digest(path)}/{path.parent.name}/{path.name}"
    while len(_urls) > MAX_URLS:
        _urls.popitem(last=False)
    return url


def _resolve(request: Request, digest: str, owner: str, name: str) -> Path | None:
    """The file a URL names in the asking session's own avatars folder, or None."""
    engine = engine_for(request)
    if engine is None or owner in ("", ".", "..") or name in ("", ".", ".."):
        return None
    path = engine.avatars.files.root / owner / name
    if path.parent.parent != engine.avatars.files.root or not hmac.compare_digest(_digest(path), digest):
        return None
    return path


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_BYTES else None


def create() -> None:
    """Register the picture route (once per app build)."""

    @app.get(ROUTE + "/{digest}/{owner}/{name}", include_in_schema=False)
    async def picture(request: Request, digest: str, owner: str, name: str) -> Response:
        path = _resolve(request, digest, owner, name)
        data = await asyncio.to_thread(_read, path) if path is not None else None
        kind = sniff(data) if data is not None else None
        if data is None or kind is None or avatar_too_large(dimensions(data)):
            return PlainTextResponse(
                "No such picture.", status_code=404, headers={**HEADERS, "Cache-Control": "no-store"}
            )
        return Response(data, media_type=kind[0], headers={**HEADERS, "Cache-Control": CACHE})
