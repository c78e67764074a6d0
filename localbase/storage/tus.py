"""`/storage/v1/upload/resumable`: TUS 1.0.0 resumable uploads (creation, creation-with-upload,
termination), the protocol supabase-js's docs point to (tus-js-client, 6 MB chunks).

Written here rather than taken from a library: the Python TUS servers are framework plug-ins
(Flask/Django) or unmaintained, and the protocol subset is small — a POST that creates an upload
(the same RLS check as a plain upload, tried and rolled back, plus the size and type limits against
`Upload-Length` and the `contentType` metadata), PATCHes that append at the exact `Upload-Offset`, a
HEAD that reports the offset, a DELETE that drops it. The upload's bytes go to
`resumable/<id>.part`, its description to `resumable/<id>.json`; the offset is the file's size, so
an interrupted PATCH resumes where the disk says. The last PATCH moves the file into the blobs and
writes the row as the caller (RLS decides again); uploads untouched for a day are dropped, as
Supabase's expire. Only the user who created an upload may touch it;
to anyone else it does not exist. Errors use Storage's JSON body with the real HTTP status, as
Supabase's TUS endpoint does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, BinaryIO

from anyio import to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from localbase.storage import body, errors, session, store
from localbase.storage.blobs import Stored, md5_of_file, open_private
from localbase.storage.objects import bucket_or_404, can_upload, check_type, write_row
from localbase.storage.service import StorageService, service_of
from localbase.storage.session import Caller

TUS_VERSION = "1.0.0"
EXPIRY_SECONDS = 24 * 60 * 60  # Supabase Storage's TUS_URL_EXPIRY_MS default: one day
BASE_HEADERS = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}


def _error(exc: errors.StorageError) -> errors.StorageError:
    exc.http_status = exc.status if 400 <= exc.status < 600 else 400
    exc.headers.update(BASE_HEADERS)
    return exc


def parse_metadata(header: str) -> dict[str, str]:
    """`Upload-Metadata: key base64,key2 base64` → {key: decoded}."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode() if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _error(errors.invalid_request(f"Upload-Metadata {key} is not base64")) from exc
    return out


def _paths(service: StorageService, upload_id: str) -> tuple[Path, Path]:
    if not upload_id.replace("-", "").replace("_", "").isalnum() or len(upload_id) > 64:
        raise _error(errors.StorageError(404, "NoSuchUpload", "Upload not found"))
    folder = service.blobs.root / "resumable"
    return folder / f"{upload_id}.json", folder / f"{upload_id}.part"


def _number(text: str) -> int | None:
    """A header's non-negative integer: ASCII digits only (`str.isdigit` also takes `²`, which int() refuses)."""
    return int(text) if text.isascii() and text.isdigit() else None


def _touched(meta_path: Path, part_path: Path) -> float:
    return max(meta_path.stat().st_mtime, part_path.stat().st_mtime if part_path.exists() else 0)


def _load(service: StorageService, upload_id: str, caller: Caller) -> dict[str, Any]:
    meta_path, part_path = _paths(service, upload_id)
    try:
        record: dict[str, Any] = json.loads(meta_path.read_text())
        expired = time.time() - _touched(meta_path, part_path) > EXPIRY_SECONDS
    except (OSError, ValueError):
        raise _error(errors.StorageError(404, "NoSuchUpload", "Upload not found")) from None
    # an expired upload is gone even before the next creation sweeps its files, as Supabase's expire
    if expired or record.get("owner") != caller.owner or record.get("role") != caller.role:
        raise _error(errors.StorageError(404, "NoSuchUpload", "Upload not found"))
    return record


def sweep_expired(folder: Path, now: float) -> int:
    """Drop uploads untouched for `EXPIRY_SECONDS` (run on each creation; returns how many)."""
    dropped = 0
    for meta_path in folder.glob("*.json"):
        part_path = meta_path.with_suffix(".part")
        try:
            touched = _touched(meta_path, part_path)
        except FileNotFoundError:
            continue
        if now - touched > EXPIRY_SECONDS:
            meta_path.unlink(missing_ok=True)
            part_path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise _error(errors.StorageError(412, "TusError", "Unsupported TUS version; send Tus-Resumable: 1.0.0"))


async def options(request: Request) -> Response:
    _, service = service_of(request)
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Max-Size": str(service.file_size_limit),
            "Tus-Extension": "creation,creation-with-upload,termination",
        },
    )


async def create(request: Request) -> Response:
    ctx, service = service_of(request)
    _check_version(request)
    caller = session.identify(ctx, request)
    length = _number(request.headers.get("upload-length", ""))
    if length is None:
        raise _error(errors.invalid_request("Upload-Length is required (deferred lengths are not supported)"))
    meta = parse_metadata(request.headers.get("upload-metadata", ""))
    bucket_id, name = meta.get("bucketName", ""), meta.get("objectName", "")
    if not bucket_id or not name:
        raise _error(errors.invalid_request("Upload-Metadata needs bucketName and objectName"))
    upsert = request.headers.get("x-upsert", "").lower() == "true"
    content_type = meta.get("contentType") or "application/octet-stream"
    try:
        store.check_key(name)
        bucket = await bucket_or_404(ctx, bucket_id)
        if length > service.limit_for(bucket):
            raise errors.entity_too_large()
        content_type = check_type(bucket, content_type)
        user_metadata = body.parse_metadata(meta.get("metadata"), base64_encoded=False)
        await can_upload(ctx, caller, bucket_id, name, upsert)
    except errors.StorageError as exc:
        raise _error(exc) from exc
    await to_thread.run_sync(sweep_expired, service.blobs.root / "resumable", time.time())
    upload_id = secrets.token_urlsafe(24)
    meta_path, part_path = _paths(service, upload_id)
    record = {
        "bucket": bucket_id,
        "name": name,
        "length": length,
        "upsert": upsert,
        "content_type": content_type,
        "cache_control": body.cache_control_of(meta.get("cacheControl") or "3600"),
        "user_metadata": user_metadata,
        "owner": caller.owner,
        "role": caller.role,
    }

    def write() -> None:
        open_private(part_path, exclusive=True).close()
        tmp = meta_path.with_suffix(".tmp")
        with open_private(tmp) as fh:
            fh.write(json.dumps(record).encode())
        os.replace(tmp, meta_path)

    await to_thread.run_sync(write)
    headers = {**BASE_HEADERS, "Location": f"{ctx.api_url}/storage/v1/upload/resumable/{upload_id}"}
    if request.headers.get("content-type") == "application/offset+octet-stream":
        offset = await _append(request, service, upload_id, record, caller=caller, offset=0)
        headers["Upload-Offset"] = str(offset)
    return Response(status_code=201, headers=headers)


async def head(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    upload_id = request.path_params["upload_id"]
    record = _load(service, upload_id, caller)
    _, part_path = _paths(service, upload_id)
    offset = part_path.stat().st_size if part_path.exists() else 0
    return Response(
        status_code=200, headers={**BASE_HEADERS, "Upload-Offset": str(offset), "Upload-Length": str(record["length"])}
    )


async def patch(request: Request) -> Response:
    ctx, service = service_of(request)
    _check_version(request)
    caller = session.identify(ctx, request)
    upload_id = request.path_params["upload_id"]
    record = _load(service, upload_id, caller)
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise _error(errors.StorageError(415, "TusError", "Content-Type must be application/offset+octet-stream"))
    offset = _number(request.headers.get("upload-offset", ""))
    if offset is None:
        raise _error(errors.invalid_request("Upload-Offset is required"))
    offset = await _append(request, service, upload_id, record, caller=caller, offset=offset)
    return Response(status_code=204, headers={**BASE_HEADERS, "Upload-Offset": str(offset)})


async def _append(
    request: Request, service: StorageService, upload_id: str, record: dict[str, Any], *, caller: Caller, offset: int
) -> int:
    lock = service.upload_locks.setdefault(upload_id, asyncio.Lock())
    if lock.locked():
        raise _error(errors.StorageError(423, "ResourceLocked", "The upload is being written by another request"))
    async with lock:
        _, part_path = _paths(service, upload_id)
        length = int(record["length"])
        fh = await to_thread.run_sync(part_path.open, "r+b")
        try:
            current = await to_thread.run_sync(lambda: os.fstat(fh.fileno()).st_size)
            if current != offset:
                raise _error(errors.StorageError(409, "TusError", f"Upload-Offset {offset} does not match {current}"))
            fh.seek(offset)
            written = offset
            pending = bytearray()
            try:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > length:
                        await to_thread.run_sync(fh.truncate, offset)
                        raise _error(errors.entity_too_large())
                    pending += chunk
                    if len(pending) >= 1024 * 1024:
                        data, pending = bytes(pending), bytearray()
                        await to_thread.run_sync(fh.write, data)
            except ClientDisconnect:
                pass  # keep what arrived; the client asks HEAD for the offset and resumes
            if pending:
                await to_thread.run_sync(fh.write, bytes(pending))
            await to_thread.run_sync(_sync, fh)
            size = await to_thread.run_sync(lambda: os.fstat(fh.fileno()).st_size)
        finally:
            await to_thread.run_sync(fh.close)
        if size == length:
            await _finish(request, service, upload_id, record, caller)
        return size


def _sync(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())


async def _finish(
    request: Request, service: StorageService, upload_id: str, record: dict[str, Any], caller: Caller
) -> None:
    ctx, _ = service_of(request)
    meta_path, part_path = _paths(service, upload_id)
    etag = await to_thread.run_sync(md5_of_file, part_path)
    version = await service.blobs.commit_file(part_path)
    await to_thread.run_sync(lambda: meta_path.unlink(missing_ok=True))
    service.upload_locks.pop(upload_id, None)
    stored = Stored(version, int(record["length"]), etag)
    try:
        await write_row(
            ctx,
            service,
            caller,
            record["bucket"],
            record["name"],
            upsert=bool(record["upsert"]),
            stored=stored,
            mimetype=record["content_type"],
            cache_control=record["cache_control"],
            user_metadata=record.get("user_metadata"),
        )
    except errors.StorageError as exc:
        raise _error(exc) from exc


async def terminate(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    upload_id = request.path_params["upload_id"]
    _load(service, upload_id, caller)
    meta_path, part_path = _paths(service, upload_id)

    def drop() -> None:
        meta_path.unlink(missing_ok=True)
        part_path.unlink(missing_ok=True)

    await to_thread.run_sync(drop)
    service.upload_locks.pop(upload_id, None)
    return Response(status_code=204, headers=BASE_HEADERS)
