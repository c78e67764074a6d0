"""`/storage/v1/object`: upload, update, download, info, list, remove, move, copy, public URLs.

How a write is decided, as Supabase Storage does it: before any byte is accepted the write is tried
as the caller and rolled back (`session.test_permission`), so RLS on `storage.objects` refuses early;
the bytes are then streamed to disk; the row is written as the caller again (a policy that changed
meanwhile still decides) and only then does the new file become visible. A failed write removes its
file; an upsert removes the replaced file after its commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from localbase.context import StackContext
from localbase.storage import body, errors, mime, session, store
from localbase.storage.blobs import Stored
from localbase.storage.buckets import json_body
from localbase.storage.service import StorageService, service_of
from localbase.storage.session import STORAGE_ADMIN, Caller
from localbase.storage.store import Bucket

MAX_PREFIXES = 1000


async def bucket_or_404(ctx: StackContext, bucket_id: str) -> Bucket:
    async with session.transaction(ctx, STORAGE_ADMIN, "storage.bucket.find") as conn:
        bucket = await store.find_bucket(conn, bucket_id)
    if bucket is None:
        raise errors.no_such_bucket()
    return bucket


def check_type(bucket: Bucket, content_type: str) -> str:
    """The upload's type as stored (`mime.normalize`), if the bucket allows it; else Storage's 415."""
    mimetype = mime.normalize(content_type)
    if not bucket.allows(mimetype):
        raise errors.invalid_mime_type(mime.base_of(mimetype))
    return mimetype


def mime_checker(bucket: Bucket) -> Callable[[str], str]:
    return lambda content_type: check_type(bucket, content_type)


async def can_upload(ctx: StackContext, caller: Caller, bucket_id: str, name: str, upsert: bool) -> None:
    """Supabase's `canUpload`: would RLS let this caller write this row? Rolled back either way."""

    async def attempt(conn: AsyncConnection[Any]) -> None:
        await store.insert_object(
            conn,
            bucket_id=bucket_id,
            name=name,
            owner=caller.owner,
            version="1",
            metadata=None,
            user_metadata=None,
            upsert=upsert,
        )

    await session.test_permission(ctx, caller, "storage.object.upload", attempt)


async def write_row(
    ctx: StackContext,
    service: StorageService,
    caller: Caller,
    bucket_id: str,
    name: str,
    *,
    upsert: bool,
    stored: Stored,
    mimetype: str,
    cache_control: str,
    user_metadata: dict[str, Any] | None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a committed blob as the object's current version; on failure the blob is removed."""
    replaced: str | None = None
    try:
        async with session.transaction(ctx, caller, "storage.object.upload") as conn:
            if upsert:
                old = await store.find_object(conn, bucket_id, name, for_update=True)
                replaced = old["version"] if old else None
            now = (await (await conn.execute("select now()")).fetchone() or [None])[0]
            row = await store.insert_object(
                conn,
                bucket_id=bucket_id,
                name=name,
                owner=caller.owner,
                version=stored.version,
                metadata=metadata or store.object_metadata(stored.size, mimetype, cache_control, stored.etag, now),
                user_metadata=user_metadata,
                upsert=upsert,
            )
    except BaseException:
        await service.blobs.remove(stored.version)
        raise
    if replaced and replaced != stored.version:
        await service.blobs.remove(replaced)
    return row


async def accept_upload(
    request: Request, caller: Caller, bucket_id: str, name: str, upsert: bool, *, check_as: Caller | None = None
) -> dict[str, Any]:
    ctx, service = service_of(request)
    store.check_key(name)
    bucket = await bucket_or_404(ctx, bucket_id)
    await can_upload(ctx, check_as or caller, bucket_id, name, upsert)
    writer = service.blobs.writer(service.limit_for(bucket))
    received = await body.receive(request, writer, mime_checker(bucket))
    return await write_row(
        ctx,
        service,
        caller,
        bucket_id,
        name,
        upsert=upsert,
        stored=received.stored,
        mimetype=received.mimetype,
        cache_control=received.cache_control,
        user_metadata=received.user_metadata,
    )


async def upload(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id, name = request.path_params["bucket"], request.path_params["key"]
    upsert = request.method == "PUT" or request.headers.get("x-upsert", "").lower() == "true"
    row = await accept_upload(request, caller, bucket_id, name, upsert)
    return JSONResponse({"Id": str(row["id"]), "Key": f"{bucket_id}/{name}"})


class BlobResponse(FileResponse):
    """Starlette's file response (ranges, HEAD, thread reads) reading 1 MiB per thread hop, not 64 KiB."""

    chunk_size = 1024 * 1024


def serve(service: StorageService, request: Request, row: dict[str, Any]) -> Response:
    meta = row.get("metadata") or {}
    path = service.blobs.path(row["version"])
    if not path.exists():
        raise errors.no_such_key()
    media_type, safety = mime.served(str(meta.get("mimetype") or mime.OCTET_STREAM))
    headers = {
        "cache-control": str(meta.get("cacheControl") or "no-cache"),
        "etag": str(meta.get("eTag") or ""),
        **safety,
    }
    download = request.query_params.get("download")
    filename: str | None = None
    if download is not None:
        filename = download or str(row["name"]).rsplit("/", 1)[-1]
    return BlobResponse(
        path,
        media_type=media_type,
        headers=headers,
        filename=filename,
        content_disposition_type="attachment",
    )


async def _find_visible(request: Request, caller: Caller, bucket_id: str, name: str) -> dict[str, Any]:
    ctx, _ = service_of(request)
    store.check_key(name)
    async with session.transaction(ctx, caller, "storage.object.get", request=request) as conn:
        row = await store.find_object(conn, bucket_id, name)
    if row is None:
        await bucket_or_404(ctx, bucket_id)
        raise errors.no_such_key()
    return row


async def download(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    row = await _find_visible(request, caller, request.path_params["bucket"], request.path_params["key"])
    return serve(service, request, row)


async def public(request: Request) -> Response:
    ctx, service = service_of(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["key"]
    bucket = await bucket_or_404(ctx, bucket_id)
    if not bucket.public:
        raise errors.no_such_bucket()
    row = await _find_visible(request, STORAGE_ADMIN, bucket_id, name)
    return serve(service, request, row)


def info_body(row: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("metadata") or {}
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "version": row["version"],
        "bucket_id": row["bucket_id"],
        "size": meta.get("size"),
        "content_type": meta.get("mimetype"),
        "cache_control": meta.get("cacheControl"),
        "etag": meta.get("eTag"),
        "metadata": row.get("user_metadata"),
        "last_modified": store.json_value(row["updated_at"]),
        "created_at": store.json_value(row["created_at"]),
    }


async def info(request: Request) -> Response:
    ctx, _ = service_of(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["key"]
    caller = session.identify(ctx, request)
    if request.url.path.split("/object/info/", 1)[-1].startswith("public/"):
        bucket = await bucket_or_404(ctx, bucket_id)
        if not bucket.public:
            raise errors.no_such_bucket()
        caller = STORAGE_ADMIN
    row = await _find_visible(request, caller, bucket_id, name)
    return JSONResponse(info_body(row))


async def list_objects(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    options = await json_body(request)
    sort = options.get("sortBy") or {}
    column = sort.get("column", "name") if isinstance(sort, dict) else "name"
    if column not in store.SORT_COLUMNS:
        raise errors.invalid_request(f"Invalid sort column {column}")
    order = str(sort.get("order", "asc")).lower() if isinstance(sort, dict) else "asc"
    try:
        limit = min(max(int(options.get("limit", 100)), 1), 1000)
        offset = max(int(options.get("offset", 0)), 0)
    except (TypeError, ValueError) as exc:
        raise errors.invalid_request("limit and offset must be integers") from exc
    prefix = str(options.get("prefix") or "")
    async with session.transaction(ctx, caller, "storage.object.list", request=request) as conn:
        rows = await store.list_folder(
            conn,
            request.path_params["bucket"],
            prefix,
            limit=limit,
            offset=offset,
            search=str(options.get("search") or ""),
            sort_column=column,
            descending=order == "desc",
        )
    return JSONResponse(rows)


async def remove_many(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    options = await json_body(request)
    prefixes = options.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes) or not prefixes:
        raise errors.invalid_request("prefixes must be a non-empty list of object names")
    if len(prefixes) > MAX_PREFIXES:
        raise errors.invalid_request(f"At most {MAX_PREFIXES} objects can be deleted per request.")
    async with session.transaction(ctx, caller, "storage.object.delete_many", request=request) as conn:
        rows = await store.delete_objects(conn, request.path_params["bucket"], prefixes)
    for row in rows:
        await service.blobs.remove(row["version"])
    return JSONResponse([store.render(r) for r in rows])


async def remove_one(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    name = store.check_key(request.path_params["key"])
    async with session.transaction(ctx, caller, "storage.object.delete", request=request) as conn:
        rows = await store.delete_objects(conn, request.path_params["bucket"], [name])
    if not rows:
        raise errors.no_such_key()
    await service.blobs.remove(rows[0]["version"])
    return JSONResponse({"message": "Successfully deleted"})


def _move_args(options: dict[str, Any]) -> tuple[str, str, str, str]:
    bucket_id, source, dest = options.get("bucketId"), options.get("sourceKey"), options.get("destinationKey")
    dest_bucket = options.get("destinationBucket") or bucket_id
    if not all(isinstance(v, str) and v for v in (bucket_id, source, dest, dest_bucket)):
        raise errors.invalid_request("bucketId, sourceKey and destinationKey are required")
    assert isinstance(bucket_id, str) and isinstance(source, str) and isinstance(dest, str)
    assert isinstance(dest_bucket, str)
    return bucket_id, store.check_key(source), dest_bucket, store.check_key(dest)


async def move(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id, source, dest_bucket, dest = _move_args(await json_body(request))
    if dest_bucket != bucket_id:
        await bucket_or_404(ctx, dest_bucket)
    async with session.transaction(ctx, caller, "storage.object.move", request=request) as conn:
        row = await store.move_object(conn, bucket_id, source, dest_bucket=dest_bucket, dest=dest, owner=caller.owner)
        if row is None:
            raise errors.no_such_key()
    return JSONResponse({"message": "Successfully moved", "Id": str(row["id"]), "Key": dest})


async def copy(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    options = await json_body(request)
    bucket_id, source, dest_bucket_id, dest = _move_args(options)
    upsert = request.headers.get("x-upsert", "").lower() == "true"
    async with session.transaction(ctx, caller, "storage.object.copy", request=request) as conn:
        origin = await store.find_object(conn, bucket_id, source)
    if origin is None:
        raise errors.no_such_key()
    dest_bucket = await bucket_or_404(ctx, dest_bucket_id)
    meta = origin.get("metadata") or {}
    mimetype = str(meta.get("mimetype") or mime.OCTET_STREAM)
    if not dest_bucket.allows(mimetype):  # a stored type that does not parse strictly is refused too
        raise errors.invalid_mime_type(mimetype)
    if int(meta.get("size") or 0) > service.limit_for(dest_bucket):
        raise errors.entity_too_large()
    version = await service.blobs.link_copy(origin["version"])
    stored = Stored(version, int(meta.get("size") or 0), str(meta.get("eTag") or ""))
    user_metadata = origin.get("user_metadata") if options.get("copyMetadata", True) else None
    row = await write_row(
        ctx,
        service,
        caller,
        dest_bucket_id,
        dest,
        upsert=upsert,
        stored=stored,
        mimetype="",
        cache_control="",
        user_metadata=user_metadata,
        metadata=meta,
    )
    return JSONResponse({"Id": str(row["id"]), "Key": f"{dest_bucket_id}/{dest}", **store.render(row)})
