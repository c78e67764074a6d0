"""A TUS 1.0.0 client for Storage's resumable uploads (``/storage/v1/upload/resumable``, 6 MB chunks): an
attachment goes up in chunks with a per-byte progress callback, and an interrupted upload continues at the
offset the server reports (HEAD) — after a dropped connection, or after a restart, because the upload's URL
is remembered in a small state file beside the queued copy.

Written here rather than taken from a library: the maintained Python TUS clients are `tuspy` (requests, or
aiohttp for asyncio) and `aiotus` (aiohttp). Either brings a second HTTP stack beside the engine's one httpx
client, whose timeouts and error mapping (sync/errormap.py) every other call goes through, and neither
reports progress inside a chunk (only after a whole 6 MB PATCH). The subset needed is small: a POST that
creates the upload (creation), a HEAD for the offset, PATCHes that append at it, a DELETE that drops it
(termination).

Failures come out as the sync error tree: a refusal's Storage body ``{statusCode, error, message}`` as for
every other Storage call; network errors retryable (the state file keeps the URL, the next round resumes);
an upload the server no longer knows (expired after a day, as Supabase's do) starts again from byte 0;
423 (a previous PATCH of the same upload still being written) is retryable.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from sync.errormap import map_exception, storage_api_error
from sync.errors import RetryableError, SyncError

CHUNK = 6 * 1024 * 1024  # Supabase Storage takes resumable uploads in chunks of exactly 6 MB (the last shorter)
PIECE = 256 * 1024  # progress is reported per piece of a chunk handed to the connection
VERSION = "1.0.0"

UPLOAD_ID = re.compile(r"[A-Za-z0-9_=-]{1,512}")  # one path segment: Supabase's base64url ids, localbase's tokens

Progress = Callable[[int, int], None]  # (bytes the server has or is being sent, the file's size)


class UploadCancelled(Exception):
    """Raised by a progress callback to stop an upload; the client drops the server's partial upload."""


class _Gone(Exception):
    """The server does not know this upload (expired, finished, or never created for this user)."""


def endpoint_of(api_url: str) -> str:
    return f"{api_url.rstrip('/')}/storage/v1/upload/resumable"


@dataclass
class TusUpload:
    """One file to one object key. ``state`` (a path, optional) remembers the upload's URL between runs."""

    http: httpx.AsyncClient
    endpoint: str
    headers: Mapping[str, str]  # apikey and Authorization
    bucket: str
    key: str
    path: Path
    mime: str
    state: Path | None = None
    progress: Progress | None = None
    chunk: int = CHUNK
    upsert: bool = True

    async def run(self) -> None:
        """Upload the whole file (resuming a remembered upload); raises the sync error tree or UploadCancelled."""
        size = self.path.stat().st_size
        url = self._saved_url(size)
        try:
            for _ in range(3):  # a remembered upload may be gone: then once more from the start
                try:
                    if url is None:
                        url = await self._create(size)
                        offset = 0
                    else:
                        offset = await self._offset(url, size)
                    self._report(offset, size)
                    await self._send(url, offset, size)
                    self._forget()
                    return
                except _Gone:
                    self._forget()
                    url = None
            raise RetryableError("the server kept losing the resumable upload; it will be tried again")
        except UploadCancelled:
            if url is not None:
                await terminate(self.http, url, self.headers)
            self._forget()
            raise

    # --- the protocol ---------------------------------------------------------------------------------------

    def _base(self) -> dict[str, str]:
        return {**self.headers, "Tus-Resumable": VERSION}

    async def _create(self, size: int) -> str:
        meta = {"bucketName": self.bucket, "objectName": self.key, "contentType": self.mime, "cacheControl": "3600"}
        headers = {
            **self._base(),
            "Upload-Length": str(size),
            "Upload-Metadata": ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items()),
            "x-upsert": "true" if self.upsert else "false",
        }
        response = await _request(self.http, "POST", self.endpoint, headers)
        if response.status_code != 201 or "location" not in response.headers:
            raise _refusal(response)
        url = self._checked(response.headers["location"])
        self._save(url, size)
        return url

    async def _offset(self, url: str, size: int) -> int:
        response = await _request(self.http, "HEAD", url, self._base())
        if response.status_code in (403, 404, 410):
            raise _Gone
        if response.status_code >= 400:
            raise _refusal(response)
        offset = _offset_of(response)
        if offset > size:  # not this file's upload: start again
            raise _Gone
        return offset

    async def _send(self, url: str, offset: int, size: int) -> None:
        with self.path.open("rb") as fh:
            while offset < size:
                n = min(self.chunk, size - offset)
                headers = {
                    **self._base(),
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(n),
                }
                response = await _request(self.http, "PATCH", url, headers, self._body(fh, offset, n, size))
                if response.status_code in (404, 410):
                    raise _Gone
                if response.status_code == 409:  # our offset was not the server's: ask and go on from there
                    offset = await self._offset(url, size)
                    self._report(offset, size)
                    continue
                if response.status_code >= 400:
                    raise _refusal(response)
                given = _offset_of(response)
                if not offset < given <= offset + n:  # no progress, or more than was sent: never "finished"
                    raise RetryableError(f"the server answered Upload-Offset {given} after {n} bytes at {offset}")
                offset = given
                self._report(offset, size)

    async def _body(self, fh: BinaryIO, offset: int, n: int, size: int) -> AsyncIterator[bytes]:
        fh.seek(offset)
        sent = 0
        while sent < n:
            # a read of one piece from the page cache takes microseconds: no thread hop per piece
            piece = fh.read(min(PIECE, n - sent))
            if not piece:
                raise RetryableError("the queued file became shorter while it was uploaded")
            sent += len(piece)
            yield piece
            self._report(offset + sent, size)

    def _report(self, done: int, size: int) -> None:
        if self.progress is not None:
            self.progress(done, size)

    def _checked(self, location: str) -> str:
        """The upload's URL from ``Location``, always on our own endpoint: the upload's id (what follows
        ``/upload/resumable/``) on the API URL this client was given. A server behind a proxy or another host
        name names itself in ``Location``; our token goes only where we were told to send it."""
        path = urlsplit(urljoin(self.endpoint + "/", location)).path
        marker = "/upload/resumable/"
        upload_id = path.split(marker, 1)[1] if marker in path else ""
        if not UPLOAD_ID.fullmatch(upload_id):  # `../..`, `%2F`: never another path of our host
            raise RetryableError(f"the server answered an upload URL that names no upload: {location[:200]}")
        return f"{self.endpoint}/{upload_id}"

    # --- the state file ---------------------------------------------------------------------------------------

    def _saved_url(self, size: int) -> str | None:
        if self.state is None:
            return None
        try:
            saved: Any = json.loads(self.state.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or (saved.get("bucket"), saved.get("key"), saved.get("size")) != (
            self.bucket,
            self.key,
            size,
        ):
            return None
        try:
            return self._checked(str(saved.get("url", "")))
        except SyncError:
            return None

    def _save(self, url: str, size: int) -> None:
        if self.state is None:
            return
        part = self.state.with_name(self.state.name + ".part")
        part.write_text(json.dumps({"url": url, "bucket": self.bucket, "key": self.key, "size": size}))
        os.replace(part, self.state)

    def _forget(self) -> None:
        if self.state is not None:
            self.state.unlink(missing_ok=True)


def saved_url(state: Path) -> str | None:
    """The remembered upload URL in a state file, if any (to drop the upload when its file is cancelled)."""
    try:
        saved: Any = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    return str(saved["url"]) if isinstance(saved, dict) and saved.get("url") else None


async def terminate(http: httpx.AsyncClient, url: str, headers: Mapping[str, str]) -> None:
    """Drop a partial upload on the server (termination); one that is already gone is no error."""
    with contextlib.suppress(SyncError):
        await _request(http, "DELETE", url, {**headers, "Tus-Resumable": VERSION})


async def _request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    headers: Mapping[str, str],
    content: AsyncIterator[bytes] | None = None,
) -> httpx.Response:
    try:
        # never redirected: the token and the file go to our own endpoint only (the engine's client follows)
        response = await http.request(method, url, headers=dict(headers), content=content, follow_redirects=False)
    except UploadCancelled:
        raise
    except Exception as exc:
        raise map_exception(exc) from exc
    if response.status_code == 423:
        raise RetryableError("the server is still writing an earlier part of this upload", status=423)
    return response


def _offset_of(response: httpx.Response) -> int:
    """A success's ``Upload-Offset``: ASCII digits (``str.isdigit`` also takes ``²``), else retryable."""
    text = response.headers.get("upload-offset", "")
    if not (text.isascii() and text.isdigit()):
        raise RetryableError(f"the server answered no usable Upload-Offset ({response.status_code}): {text[:40]!r}")
    return int(text)


def _refusal(response: httpx.Response) -> SyncError:
    """A Storage error body (or a bare status) as the sync error tree, like storage3's refusals."""
    return map_exception(storage_api_error(response.status_code, response.content))
