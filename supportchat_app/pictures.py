"""Locally cached pictures (avatars, sync/avatars.py) for the page: ``picture_url(path)`` names a file by an
unguessable digest of its path and the one route ``/_sc/picture/<digest>/<name>`` serves it.

Why a route of our own and not NiceGUI's ``add_static_file``: that takes the content type from the file's name,
and a picture comes from someone else (a customer names and uploads their own avatar), so an ``.html`` avatar
would be a page on the app's origin acting as the signed-in user. Here the type comes from the file's bytes
(sync/images.py): a PNG, JPEG, GIF or WebP is served as that, anything else is a 404; every answer carries
``nosniff`` and a sandboxing CSP, and a picture is cached privately for an hour (its name changes with its
content). The route sits behind the launch guard like every other path (launch.py); one route also means no
route per file that a deleted ``ui.image`` would take down.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from nicegui import app
from starlette.responses import PlainTextResponse, Response

from sync.images import sniff

ROUTE = "/_sc/picture"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
CACHE = "private, max-age=3600"
MAX_BYTES = 4 * 1024 * 1024  # an avatar is at most 1 MiB (sync/avatars.py); a larger file is not served

_urls: dict[Path, str] = {}
_files: dict[str, Path] = {}  # digest -> the file picture_url named


def picture_url(path: Path | None) -> str:
    """A URL for a locally cached picture; "" when there is no file."""
    if path is None:
        return ""
    url = _urls.get(path)
    if url is None and path.is_file():
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]  # the path's, not guessable from outside
        _files[digest] = path
        url = _urls[path] = f"{ROUTE}/{digest}/{path.name}"
    return url or ""


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_BYTES else None


def create() -> None:
    """Register the picture route (once per app build)."""

    @app.get(ROUTE + "/{digest}/{name}", include_in_schema=False)
    async def picture(digest: str, name: str) -> Response:
        path = _files.get(digest)
        data = await asyncio.to_thread(_read, path) if path is not None and path.name == name else None
        kind = sniff(data) if data is not None else None
        if data is None or kind is None:
            return PlainTextResponse(
                "No such picture.", status_code=404, headers={**HEADERS, "Cache-Control": "no-store"}
            )
        return Response(data, media_type=kind[0], headers={**HEADERS, "Cache-Control": CACHE})
