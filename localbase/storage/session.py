"""Who is calling, and one database transaction run as them — the way Supabase Storage does it.

Supabase Storage verifies the bearer JWT, then on each transaction sets `role`,
`request.jwt.claims`, `request.jwt.claim.sub`/`.role`, `request.method`/`path` and
`storage.operation` (transaction-local), so PostgreSQL's RLS on `storage.objects` decides; the
role's own settings (its statement timeout) apply per transaction, as on /rest/v1. Some steps
run "as super user" (the storage admin, which bypasses RLS): writing the final row after the bytes
are stored, serving a signed or public URL. Here that is `service_role` on the same `authenticator`
pool; it has BYPASSRLS and the same grants on `storage.*`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request

from localbase.context import StackContext, TokenError, bearer_token
from localbase.rest.session import _role_settings as role_settings
from localbase.storage import errors

T = TypeVar("T")

_SETUP_SQL = (
    "select set_config('search_path', 'storage, public, extensions', true),"
    " set_config('role', %(role)s, true),"
    " set_config('request.jwt.claim.role', %(role)s, true),"
    " set_config('request.jwt.claim.sub', %(sub)s, true),"
    " set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('request.method', %(method)s, true),"
    " set_config('request.path', %(path)s, true),"
    " set_config('storage.operation', %(operation)s, true)"
)


async def _setup(ctx: StackContext, conn: AsyncConnection[Any], setup: dict[str, str]) -> None:
    """Set the request up, with the impersonated role's own settings (statement_timeout: Supabase's 3 s
    for anon, 8 s for authenticated), which SET ROLE alone does not apply — read and cached per role
    exactly as /rest/v1 does."""
    settings = await role_settings(ctx, conn, setup["role"])
    params: dict[str, str] = dict(setup)
    extra = ""
    for i, (name, value) in enumerate(settings):
        params[f"setting_{i}"], params[f"value_{i}"] = name, value
        extra += f", set_config(%(setting_{i})s, %(value_{i})s, true)"
    await conn.execute(_SETUP_SQL + extra, params)


SERVICE_ROLE = "service_role"


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def owner(self) -> str | None:
        """The object owner Supabase Storage records: the JWT `sub`, if any."""
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None

    @property
    def is_service(self) -> bool:
        return self.role in (SERVICE_ROLE, "supabase_admin")


STORAGE_ADMIN = Caller(SERVICE_ROLE, {"role": SERVICE_ROLE})


def identify(ctx: StackContext, request: Request) -> Caller:
    """The caller of a request; a present but bad token is an InvalidJWT error, as on Supabase."""
    token = bearer_token(request)
    if token is None:
        return Caller("anon", {"role": "anon"})
    try:
        claims = ctx.keys.verify(token)
    except TokenError as exc:
        raise errors.invalid_jwt("exp claim timestamp check failed" if exc.expired else "invalid signature") from exc
    role = claims.get("role") or "anon"
    if not isinstance(role, str):
        raise errors.invalid_jwt()
    return Caller(role, {**claims, "role": role})


@asynccontextmanager
async def transaction(
    ctx: StackContext, caller: Caller, operation: str, *, request: Request | None = None
) -> AsyncIterator[AsyncConnection[Any]]:
    """One transaction as `caller`; commits on success, rolls back on any exception."""
    setup = {
        "role": caller.role,
        "sub": caller.owner or "",
        "claims": json.dumps(caller.claims),
        "method": request.method if request else "",
        "path": request.url.path if request else "",
        "operation": operation,
    }
    try:
        async with ctx.api_pool.connection() as conn:
            await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                await _setup(ctx, conn, setup)
                yield conn
            except BaseException:
                await _rollback(conn)
                raise
            await conn.execute("COMMIT")
    except psycopg.errors.InvalidParameterValue as exc:
        if exc.sqlstate == "22023" and "role" in str(exc):
            raise errors.access_denied("Access denied: Invalid role", http_status=403) from exc
        raise errors.from_pg(exc) from exc
    except psycopg.Error as exc:
        raise errors.from_pg(exc) from exc


async def test_permission(
    ctx: StackContext, caller: Caller, operation: str, work: Callable[[AsyncConnection[Any]], Awaitable[T]]
) -> T:
    """Run `work` as the caller and roll it back: Supabase Storage's `testPermission`, which asks
    RLS whether a write would be allowed before any bytes are accepted."""
    setup = {
        "role": caller.role,
        "sub": caller.owner or "",
        "claims": json.dumps(caller.claims),
        "method": "",
        "path": "",
        "operation": operation,
    }
    try:
        async with ctx.api_pool.connection() as conn:
            await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                await _setup(ctx, conn, setup)
                return await work(conn)
            finally:
                await _rollback(conn)
    except psycopg.Error as exc:
        raise errors.from_pg(exc) from exc


async def _rollback(conn: AsyncConnection[Any]) -> None:
    try:
        await conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the connection is broken; the pool discards it
