"""GoTrue's error responses and request-body parsing for /auth/v1.

GoTrue answers errors in one of two shapes, chosen by the request's `X-Supabase-Api-Version`
header: a date >= 2024-01-01 gets `{"code": "<error_code>", "message": ...}` and the header echoed
back (normalised to `2024-01-01`); no header, or an older or unparsable one, gets the legacy
`{"code": <http status>, "error_code": ..., "msg": ...}` plus an `x-sb-error-code` header. Both
supabase-py (`helpers.handle_exception`) and auth-js (`fetch.handleError`) read the code from the
shape the echoed header announces, so the echo is what makes `error.code` work in the clients.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = date(2024, 1, 1)
MAX_AUTH_BODY_BYTES = 64 * 1024  # GoTrue bodies are tiny; anything this big is abuse or a bug


class AuthError(Exception):
    """An error GoTrue would answer with: HTTP status, machine code and human message."""

    def __init__(self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


class OAuthError(Exception):
    """GoTrue's OAuth2-style error (`{"error", "error_description"}`, always 400)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def bad_request(code: str, message: str) -> AuthError:
    return AuthError(400, code, message)


def forbidden(code: str, message: str) -> AuthError:
    return AuthError(403, code, message)


def unprocessable(code: str, message: str) -> AuthError:
    return AuthError(422, code, message)


def weak_password(reasons: list[str], message: str) -> AuthError:
    return AuthError(422, "weak_password", message, extra={"weak_password": {"reasons": reasons}})


def _wants_2024_shape(request: Request) -> bool:
    raw = request.headers.get(API_VERSION_HEADER, "")
    try:
        return date.fromisoformat(raw) >= API_VERSION_2024 if len(raw) == 10 else False
    except ValueError:
        return False


def error_response(request: Request, exc: AuthError | OAuthError) -> Response:
    """The response GoTrue sends for `exc`, in the shape the request's API version asks for."""
    if isinstance(exc, OAuthError):
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
    headers = {"x-sb-error-code": exc.code}
    if _wants_2024_shape(request):
        headers[API_VERSION_HEADER] = API_VERSION_2024.isoformat()
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    else:
        body = {"code": exc.status, "error_code": exc.code, "msg": exc.message}
    body.update(exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def read_body(request: Request, limit: int = MAX_AUTH_BODY_BYTES) -> bytes:
    """The raw body, refusing (413) anything over `limit` without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AuthError(413, "request_entity_too_large", f"Request body too large (max {limit} bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise AuthError(413, "request_entity_too_large", f"Request body too large (max {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON object in the body; 400 `bad_json` for anything else, as GoTrue answers."""
    raw = await read_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("bad_json", "Could not parse request body as JSON: empty body")
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        _check_strings(value)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise bad_request("bad_json", f"Could not parse request body as JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise bad_request("bad_json", "Could not parse request body as JSON: expected a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid number {name}")  # NaN/Infinity are not JSON, and jsonb refuses them


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _check_strings(value: Any) -> None:
    """Refuse strings PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings must not contain NUL (\\u0000) characters")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("strings must not contain unpaired surrogates") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """`body[name]` if present and of `kind` (None counts as absent); 400 `bad_json` otherwise.

    GoTrue decodes bodies into typed Go structs, so a wrongly typed field is a JSON decode error.
    """
    value = body.get(name)
    if value is None:
        return default
    # bool is an int in Python, but never a valid string/number/object field in GoTrue's structs
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise bad_request("bad_json", f"Could not parse request body as JSON: field {name!r} has the wrong type")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
