"""Reading an upload's body as a stream: a raw body (storage-js with a Buffer/ArrayBuffer/stream) or
`multipart/form-data` (storage3 always; storage-js with a Blob/File/FormData).

The multipart body is parsed incrementally with python-multipart's `MultipartParser` (Starlette's
`request.form()` would spool the whole file to a temporary file first, then we would copy it again);
the file part's bytes go straight into a `BlobWriter`, the small text fields (`cacheControl`,
`metadata`) are kept, capped at `FIELD_LIMIT` each and `MAX_FIELDS` in all. The mime type is known
from the part's (or the request's) headers before any byte of the file is accepted, and the size
limit is enforced as bytes arrive. When a check fails, the rest of the body is read and dropped (up
to `DRAIN_LIMIT`) so that the client, still sending, gets the error instead of a reset connection.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from localbase.storage import errors
from localbase.storage.blobs import BlobWriter, Stored, TooLarge

FIELD_LIMIT = 64 * 1024
MAX_FIELDS = 16
DRAIN_LIMIT = 256 * 1024 * 1024
DEFAULT_MIME = "text/plain;charset=UTF-8"


@dataclass
class Received:
    stored: Stored
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None


def cache_control_of(value: str | None) -> str:
    """Supabase Storage stores `max-age=<n>` for a bare number (storage3 sends "3600")."""
    value = (value or "").strip()
    if not value:
        return "no-cache"
    return f"max-age={value}" if value.isdigit() else value


def parse_metadata(text: str | None, *, base64_encoded: bool) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        raw = base64.b64decode(text, validate=True).decode() if base64_encoded else text
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.invalid_request("Invalid metadata: must be a JSON object") from exc
    if not isinstance(value, dict):
        raise errors.invalid_request("Invalid metadata: must be a JSON object")
    return value


async def drain(request: Request) -> None:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > DRAIN_LIMIT:
                return
    except (ClientDisconnect, RuntimeError):  # RuntimeError: the body was already read to its end
        return


async def receive(request: Request, writer: BlobWriter, check_mime: Callable[[str], str]) -> Received:
    """Stream the upload into `writer`; errors are StorageErrors and leave no file behind.

    `check_mime` gets the upload's Content-Type before any byte is accepted and returns the type to
    store (normalized) or raises."""
    try:
        media, _ = parse_options_header(request.headers.get("content-type"))
        if media == b"multipart/form-data":
            return await _multipart(request, writer, check_mime)
        return await _raw(request, writer, check_mime)
    except TooLarge:
        await drain(request)
        raise errors.entity_too_large() from None
    except errors.StorageError:
        await writer.discard()
        await drain(request)
        raise
    except ClientDisconnect:
        await writer.discard()
        raise
    except BaseException:
        await writer.discard()
        raise


async def _raw(request: Request, writer: BlobWriter, check_mime: Callable[[str], str]) -> Received:
    mimetype = check_mime(request.headers.get("content-type") or DEFAULT_MIME)
    length = request.headers.get("content-length")
    if length and length.isdigit() and writer.limit is not None and int(length) > writer.limit:
        raise TooLarge
    metadata = parse_metadata(request.headers.get("x-metadata"), base64_encoded=True)
    async for chunk in request.stream():
        if chunk:
            await writer.write(chunk)
    stored = await writer.commit()
    return Received(stored, mimetype, cache_control_of(request.headers.get("cache-control")), metadata)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)


async def _multipart(request: Request, writer: BlobWriter, check_mime: Callable[[str], str]) -> Received:
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise errors.invalid_request("multipart/form-data without a boundary")

    # the parser calls back synchronously; the callbacks queue events that are handled (with awaits)
    # after each fed chunk, so at most one network chunk is ever held
    events: list[tuple[str, Any]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(("header", (header_field.decode("latin-1").lower(), header_value.decode("latin-1"))))
        header_field.clear()
        header_value.clear()

    callbacks: Any = {
        "on_part_begin": lambda: events.append(("begin", None)),
        "on_part_data": lambda data, start, end: events.append(("data", data[start:end])),
        "on_part_end": lambda: events.append(("end", None)),
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": lambda: events.append(("headers_done", None)),
    }
    parser = MultipartParser(boundary, callbacks)
    fields: dict[str, str] = {}
    part = _Part()
    file_seen = False
    file_done = False
    mimetype = DEFAULT_MIME

    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except Exception as exc:  # python-multipart raises its own ValueError subclasses
            raise errors.invalid_request(f"Invalid multipart body: {exc}") from exc
        for kind, value in events:
            if kind == "begin":
                part = _Part()
                if len(fields) >= MAX_FIELDS:
                    raise errors.invalid_request(f"At most {MAX_FIELDS} form fields are accepted")
            elif kind == "header":
                part.headers[value[0]] = value[1]
            elif kind == "headers_done":
                _, disposition = parse_options_header(part.headers.get("content-disposition", ""))
                part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
                part.is_file = not file_seen and (b"filename" in disposition or part.name in ("", "file"))
                if part.is_file:
                    file_seen = True
                    mimetype = check_mime(part.headers.get("content-type") or DEFAULT_MIME)
            elif kind == "data":
                if part.is_file:
                    await writer.write(value)
                else:
                    part.text += value
                    if len(part.text) > FIELD_LIMIT:
                        raise errors.invalid_request(f"form field {part.name!r} is too large")
            elif kind == "end":
                if part.is_file:
                    file_done = True
                else:
                    fields[part.name] = part.text.decode("utf-8", "replace")
        events.clear()
    parser.finalize()
    if not file_done:
        raise errors.invalid_request("No file in the multipart body")
    stored = await writer.commit()
    metadata = parse_metadata(fields.get("metadata"), base64_encoded=False)
    return Received(stored, mimetype, cache_control_of(fields.get("cacheControl")), metadata)
