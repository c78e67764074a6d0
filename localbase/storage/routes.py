"""The `/storage/v1` Mount: every route, in match order (specific paths before `/object/{bucket}/...`,
so that, as on Supabase, `info`, `sign`, `public`, `list`... are not bucket names), each wrapped so
that any failure is answered in Storage's error shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from localbase.storage import buckets, errors, objects, signed, tus

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.StorageError as exc:
            return exc.response()
        except Exception:
            log.exception("storage: %s %s failed", request.method, request.url.path)
            return errors.StorageError(500, "InternalError", "Internal server error").response()

    return run


def _route(path: str, handler: Handler, methods: list[str]) -> Route:
    return Route(path, guarded(handler), methods=methods)


def mount() -> Mount:
    key = "{bucket}/{key:path}"
    return Mount(
        "/storage/v1",
        routes=[
            _route("/bucket", buckets.list_all, ["GET"]),
            _route("/bucket", buckets.create, ["POST"]),
            _route("/bucket/{bucket}", buckets.get, ["GET"]),
            _route("/bucket/{bucket}", buckets.update, ["PUT"]),
            _route("/bucket/{bucket}", buckets.delete, ["DELETE"]),
            _route("/bucket/{bucket}/empty", buckets.empty, ["POST"]),
            _route("/object/list/{bucket}", objects.list_objects, ["POST"]),
            _route("/object/move", objects.move, ["POST"]),
            _route("/object/copy", objects.copy, ["POST"]),
            _route("/object/sign/{bucket}", signed.sign_many, ["POST"]),
            _route(f"/object/sign/{key}", signed.sign_one, ["POST"]),
            _route(f"/object/sign/{key}", signed.download, ["GET", "HEAD"]),
            _route(f"/object/upload/sign/{key}", signed.sign_upload, ["POST"]),
            _route(f"/object/upload/sign/{key}", signed.upload, ["PUT"]),
            _route(f"/object/public/{key}", objects.public, ["GET", "HEAD"]),
            _route(f"/object/authenticated/{key}", objects.download, ["GET", "HEAD"]),
            _route(f"/object/info/public/{key}", objects.info, ["GET"]),
            _route(f"/object/info/authenticated/{key}", objects.info, ["GET"]),
            _route(f"/object/info/{key}", objects.info, ["GET"]),
            _route(f"/object/{key}", objects.upload, ["POST", "PUT"]),
            _route(f"/object/{key}", objects.download, ["GET", "HEAD"]),
            _route(f"/object/{key}", objects.remove_one, ["DELETE"]),
            _route("/object/{bucket}", objects.remove_many, ["DELETE"]),
            _route("/upload/resumable", tus.options, ["OPTIONS"]),
            _route("/upload/resumable", tus.create, ["POST"]),
            _route("/upload/resumable/{upload_id}", tus.head, ["HEAD"]),
            _route("/upload/resumable/{upload_id}", tus.patch, ["PATCH"]),
            _route("/upload/resumable/{upload_id}", tus.terminate, ["DELETE"]),
        ],
    )
