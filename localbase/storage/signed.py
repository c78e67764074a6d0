"""Signed URLs: download links anyone holding them may use until they expire, and upload links
(valid 2 hours) that let their holder put one object at one path.

A link is a JWT signed with the stack's JWT secret (Supabase Storage's default `urlSigningKey`)
carrying the exact `bucket/name` it is for and a `scope` (download or upload), so a download token
can never open an upload, nor any other object; the URL's path must match the token's. Creating a
download link needs the caller to see the object under RLS; creating an upload link needs RLS to
allow the insert (tried and rolled back). Serving a download link bypasses RLS, as on Supabase —
that is what the link is for — but the object must still exist.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.context import TokenError
from localbase.storage import errors, session, store
from localbase.storage.buckets import json_body
from localbase.storage.objects import accept_upload, can_upload, serve
from localbase.storage.service import service_of
from localbase.storage.session import STORAGE_ADMIN, Caller

Scope = Literal["download", "upload"]
UPLOAD_URL_SECONDS = 2 * 60 * 60


def _expires_in(options: dict[str, Any]) -> int:
    try:
        seconds = int(options.get("expiresIn", 0))
    except (TypeError, ValueError) as exc:
        raise errors.invalid_request("expiresIn must be a number of seconds") from exc
    if seconds < 1:
        raise errors.invalid_request("expiresIn must be at least 1 second")
    return seconds


def _quote(url: str) -> str:
    return urllib.parse.quote(url, safe="/!*'()&$=@;:+,-_.")


def _token(request: Request, url: str, scope: Scope, seconds: int, **extra: Any) -> str:
    ctx, _ = service_of(request)
    now = int(time.time())
    return ctx.keys.sign({**extra, "url": url, "scope": scope, "iat": now, "exp": now + seconds})


def _verify(request: Request, bucket_id: str, name: str, scope: Scope) -> dict[str, Any]:
    ctx, _ = service_of(request)
    token = request.query_params.get("token")
    if not token:
        raise errors.invalid_jwt("Missing token")
    try:
        claims = ctx.keys.verify(token)
    except TokenError as exc:
        raise errors.invalid_jwt("jwt expired" if exc.expired else "invalid signature") from exc
    if claims.get("scope") != scope:
        raise errors.invalid_signature(f"Token is not scoped for {scope}")
    if claims.get("url") != f"{bucket_id}/{name}":
        raise errors.invalid_signature("The url do not match the signature")
    return claims


async def sign_one(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id, name = request.path_params["bucket"], store.check_key(request.path_params["key"])
    seconds = _expires_in(await json_body(request))
    async with session.transaction(ctx, caller, "storage.object.sign", request=request) as conn:
        row = await store.find_object(conn, bucket_id, name)
    if row is None:
        raise errors.no_such_key()
    url = f"{bucket_id}/{name}"
    return JSONResponse({"signedURL": f"/object/sign/{_quote(url)}?token={_token(request, url, 'download', seconds)}"})


async def sign_many(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id = request.path_params["bucket"]
    options = await json_body(request)
    seconds = _expires_in(options)
    paths = options.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) > 1000:
        raise errors.invalid_request("paths must be a list of at most 1000 object names")
    async with session.transaction(ctx, caller, "storage.object.sign_many", request=request) as conn:
        visible = await store.visible_names(conn, bucket_id, paths)
    out = []
    for path in paths:
        if path in visible:
            url = f"{bucket_id}/{path}"
            token = _token(request, url, "download", seconds)
            out.append({"error": None, "path": path, "signedURL": f"/object/sign/{_quote(url)}?token={token}"})
        else:
            out.append(
                {
                    "error": "Either the object does not exist or you do not have access to it",
                    "path": path,
                    "signedURL": None,
                }
            )
    return JSONResponse(out)


async def download(request: Request) -> Response:
    ctx, service = service_of(request)
    bucket_id, name = request.path_params["bucket"], store.check_key(request.path_params["key"])
    _verify(request, bucket_id, name, "download")
    async with session.transaction(ctx, STORAGE_ADMIN, "storage.object.get_signed", request=request) as conn:
        row = await store.find_object(conn, bucket_id, name)
    if row is None:
        raise errors.no_such_key()
    return serve(service, request, row)


async def sign_upload(request: Request) -> Response:
    ctx, _ = service_of(request)
    caller = session.identify(ctx, request)
    bucket_id, name = request.path_params["bucket"], store.check_key(request.path_params["key"])
    upsert = request.headers.get("x-upsert", "").lower() == "true"
    async with session.transaction(ctx, STORAGE_ADMIN, "storage.bucket.find") as conn:
        if await store.find_bucket(conn, bucket_id) is None:
            raise errors.no_such_bucket()
    await can_upload(ctx, caller, bucket_id, name, upsert)
    url = f"{bucket_id}/{name}"
    token = _token(request, url, "upload", UPLOAD_URL_SECONDS, owner=caller.owner, upsert=upsert)
    return JSONResponse({"url": f"/object/upload/sign/{_quote(url)}?token={token}", "token": token})


async def upload(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], store.check_key(request.path_params["key"])
    claims = _verify(request, bucket_id, name, "upload")
    owner = claims.get("owner")
    # the link acts for whoever created it: RLS is asked again as that user when the row is written
    caller = Caller("authenticated", {"role": "authenticated", "sub": owner}) if owner else STORAGE_ADMIN
    row = await accept_upload(request, caller, bucket_id, name, bool(claims.get("upsert")))
    return JSONResponse({"Id": str(row["id"]), "Key": f"{bucket_id}/{name}"})
