"""Library exceptions → the sync error tree, by type (after httpx's ``map_httpcore_exceptions``).

Used only inside the ``SupabaseRemote`` adapter (sync/remote.py): the engine and sync/decisions.py
never see a library's exception. Server answers with a code (PostgREST's APIError) go through the
pure ``decisions.classify_code``; the rest is mapped by the first matching row of ``_BY_TYPE``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pydantic
import websockets.exceptions
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase_auth.errors import AuthError as LibAuthError
from supabase_auth.errors import AuthRetryableError, AuthUnknownError

from sync.decisions import classify_code
from sync.errors import AuthError, PermanentError, RetryableError, SyncError


def _api_error(exc: BaseException) -> SyncError:
    assert isinstance(exc, APIError)
    return classify_code(exc.code, exc.message or str(exc), exc.details, exc.hint)


def _auth_error(exc: BaseException) -> SyncError:
    assert isinstance(exc, LibAuthError)
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, (AuthRetryableError, AuthUnknownError)) or (isinstance(status, int) and status >= 500):
        return RetryableError(message, code=code, status=status)
    # 400 invalid_credentials / refresh_token_not_found / refresh_token_already_used, 401, 403, 422,
    # and a missing session: the server said no, asking again will not change its mind
    return AuthError(message, code=code, status=status, refused=True)


def _storage_error(exc: BaseException) -> SyncError:
    # Supabase Storage answers {statusCode, error, message}, mostly with HTTP 400: the body's statusCode
    # is what tells a refusal (403 RLS, 404, 409, 413, 415) from a server fault (5xx, 544 timeout)
    assert isinstance(exc, StorageApiError)
    status = int(exc.status) if str(exc.status).isdigit() else 0
    message = exc.message or str(exc)
    if status >= 500 or status in (408, 429):
        return RetryableError(message, code=str(exc.code), status=status)
    if status == 401 or exc.code == "InvalidJWT":
        return AuthError(message, code=str(exc.code), status=status)
    return PermanentError(message, code=str(status or exc.code), status=status)


def _network(exc: BaseException) -> SyncError:
    name = type(exc).__name__
    return RetryableError(f"network: {exc or name}", code=name)


def _unexpected_answer(exc: BaseException) -> SyncError:
    # a proxy or a half-dead server answered something that is not PostgREST's JSON
    return RetryableError(f"unexpected server answer: {exc}", code=type(exc).__name__)


_BY_TYPE: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[BaseException], SyncError]], ...
] = (
    (APIError, _api_error),
    (StorageApiError, _storage_error),
    (LibAuthError, _auth_error),
    ((TimeoutError, asyncio.TimeoutError, ConnectionError, OSError, EOFError), _network),
    ((httpx.HTTPError, httpx.StreamError, websockets.exceptions.WebSocketException), _network),
    (pydantic.ValidationError, _unexpected_answer),
)


def map_exception(exc: BaseException) -> SyncError:
    """The error-tree branch of any exception from the network stack or the Supabase clients. An
    unknown exception is retryable: giving up on a user's message needs a reason we understand."""
    if isinstance(exc, SyncError):
        return exc
    for types, mapper in _BY_TYPE:
        if isinstance(exc, types):
            return mapper(exc)
    return RetryableError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__)


def storage_api_error(status: int, body: bytes) -> StorageApiError:
    """Storage's error body as storage3 raises it, so errormap maps streamed refusals like the others."""
    try:
        data = json.loads(body)
        return StorageApiError(str(data["message"]), str(data["error"]), data["statusCode"])
    except (KeyError, TypeError, ValueError):
        return StorageApiError(f"Unable to parse error message: {body[:200]!r}", "InternalError", status)
