"""`/storage/v1/bucket`: create, get, list, update, empty and delete buckets.

Every statement runs as the caller, as on Supabase: `storage.buckets` has RLS and no policy for
signed-in users, so only the service role manages buckets unless a project adds policies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.storage import errors, session, store
from localbase.storage.service import service_of

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def parse_size(value: Any) -> int | None:
    """`file_size_limit` as a number of bytes or Supabase's "20MB"/"30KB"/"3B" strings."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.StorageError(400, "InvalidRequest", "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    if isinstance(value, int | float):
        if value < 0:
            raise errors.invalid_request("file_size_limit must be positive")
        return int(value) or None
    match = _SIZE.match(str(value))
    if match is None:
        raise errors.StorageError(400, "InvalidRequest", "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    return int(float(match[1]) * _UNITS[(match[2] or "b").lower()]) or None


def parse_mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_request("allowed_mime_types must be a list of strings")
    types = [v.strip() for v in value if v.strip()]
    for mime in types:
        if not re.fullmatch(r"[\w.+-]+/([\w.+-]+|\*)", mime):
            raise errors.invalid_request(f"Invalid mime type {mime}")
    return types or None


JSON_LIMIT = 1024 * 1024


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON object body, read as a stream and refused past `JSON_LIMIT` (the server-wide body limit
    leaves /storage/v1 alone, so that uploads can be large; JSON bodies must not be)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > JSON_LIMIT:
            raise errors.StorageError(
                413, "EntityTooLarge", "The request body exceeded the maximum allowed size", error="Payload too large"
            )
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.invalid_request("Body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise errors.invalid_request("Body must be a JSON object")
    return body


async def create(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    body = await json_body(request)
    bucket_id = body.get("id") or body.get("name")
    if not isinstance(bucket_id, str):
        raise errors.invalid_bucket_name()
    store.check_bucket_name(bucket_id)
    name = body.get("name") or bucket_id
    async with session.transaction(ctx, caller, "storage.bucket.create", request=request) as conn:
        await conn.execute(
            "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            (
                bucket_id,
                name,
                caller.owner if caller.owner and len(caller.owner) == 36 else None,
                caller.owner,
                bool(body.get("public", False)),
                parse_size(body.get("file_size_limit")),
                parse_mime_types(body.get("allowed_mime_types")),
            ),
        )
    return JSONResponse({"name": bucket_id})


async def list_all(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    async with session.transaction(ctx, caller, "storage.bucket.list", request=request) as conn:
        return JSONResponse(await store.list_buckets(conn))


async def get(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    async with session.transaction(ctx, caller, "storage.bucket.get", request=request) as conn:
        row = await store.get_bucket(conn, request.path_params["bucket"])
    if row is None:
        raise errors.no_such_bucket()
    return JSONResponse(row)


async def update(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    body = await json_body(request)
    sets: list[str] = ["updated_at = now()"]
    values: list[Any] = []
    if "public" in body:
        sets.append("public = %s")
        values.append(bool(body["public"]))
    if "file_size_limit" in body:
        sets.append("file_size_limit = %s")
        values.append(parse_size(body["file_size_limit"]))
    if "allowed_mime_types" in body:
        sets.append("allowed_mime_types = %s")
        values.append(parse_mime_types(body["allowed_mime_types"]))
    async with session.transaction(ctx, caller, "storage.bucket.update", request=request) as conn:
        cur = await conn.execute(
            f"update storage.buckets set {', '.join(sets)} where id = %s", (*values, request.path_params["bucket"])
        )
        if cur.rowcount == 0:
            raise errors.no_such_bucket()
    return JSONResponse({"message": "Successfully updated"})


async def empty(request: Request) -> Response:
    ctx, service = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id = request.path_params["bucket"]
    async with session.transaction(ctx, caller, "storage.bucket.empty", request=request) as conn:
        if await store.get_bucket(conn, bucket_id) is None:
            raise errors.no_such_bucket()
        cur = await conn.execute("delete from storage.objects where bucket_id = %s returning version", (bucket_id,))
        versions = [r[0] for r in await cur.fetchall()]
    for version in versions:
        await service.blobs.remove(version)
    return JSONResponse({"message": "Successfully emptied"})


async def delete(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    try:
        async with session.transaction(ctx, caller, "storage.bucket.delete", request=request) as conn:
            cur = await conn.execute("delete from storage.buckets where id = %s", (request.path_params["bucket"],))
            if cur.rowcount == 0:
                raise errors.no_such_bucket()
    except errors.StorageError as exc:
        if exc.code == "InvalidRequest" and exc.status == 404:  # 23503: objects still reference it
            raise errors.bucket_not_empty() from exc
        raise
    return JSONResponse({"message": "Successfully deleted"})
