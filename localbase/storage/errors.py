"""Storage error bodies, shaped like Supabase Storage's.

Supabase Storage answers every error with `{"statusCode": "<code as a string>", "code", "error",
"message"}` and, unless the error is a 500 or the route says otherwise, with HTTP status 400 whatever
`statusCode` says (its error handler keeps that legacy behaviour; storage-js and storage3 read the
body). `exists()` in storage3 looks for `statusCode` 404 with `error` "not_found".
"""

from __future__ import annotations

import json

import psycopg
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class StorageError(Exception):
    """An error answered to the client as Supabase Storage would."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        error: str | None = None,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error = error or code
        self.message = message
        self.http_status = http_status if http_status is not None else (500 if status >= 500 else 400)
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()), status_code=self.http_status, media_type=JSON_TYPE, headers=self.headers
        )


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def already_exists() -> StorageError:
    return StorageError(409, "ResourceAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def invalid_jwt(message: str = "Invalid JWT") -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def expired_token() -> StorageError:
    return StorageError(400, "ExpiredToken", "The provided token has expired.")


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def access_denied(
    message: str = "new row violates row-level security policy", *, http_status: int | None = None
) -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized", http_status=http_status)


def entity_too_large() -> StorageError:
    return StorageError(
        413, "EntityTooLarge", "The object exceeded the maximum allowed size", error="Payload too large"
    )


def invalid_mime_type(mime: str) -> StorageError:
    return StorageError(415, "InvalidMimeType", f"mime type {mime} is not supported", error="invalid_mime_type")


def invalid_content_type() -> StorageError:
    """Supabase Storage's answer to a Content-Type it cannot parse (Fastify's invalid media type)."""
    return StorageError(415, "InvalidMimeType", "Invalid Content-Type header", error="invalid_mime_type")


def from_pg(exc: psycopg.Error) -> StorageError:
    """Supabase Storage's `DBError.fromDBError` mapping of the SQLSTATEs that matter here."""
    sqlstate = exc.sqlstate or ""
    text = exc.diag.message_primary or str(exc)
    if sqlstate == "42501":
        return access_denied("new row violates row-level security policy" if "row-level security" in text else text)
    if sqlstate == "23505":
        return already_exists()
    if sqlstate == "23503":
        return StorageError(404, "InvalidRequest", "The related resource does not exist")
    if sqlstate == "22P02":
        return StorageError(400, "InvalidParameter", "Invalid Parameter value")
    if sqlstate == "57014":
        return StorageError(544, "DatabaseTimeout", "The connection to the database timed out", http_status=544)
    if sqlstate.startswith(("22", "23", "P0")):
        return StorageError(400, "InvalidRequest", text)
    return StorageError(500, "DatabaseError", text)
