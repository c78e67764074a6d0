"""One REST request = one PostgreSQL transaction, set up exactly as PostgREST does.

The caller's JWT is verified here (no token ⇒ anon; forged, malformed or `alg:none` ⇒ 401
PGRST301; expired ⇒ 401 PGRST303), then on a pooled `authenticator` connection:
`BEGIN ISOLATION LEVEL READ COMMITTED [READ ONLY]`, `set_config` of search_path, role,
request.jwt.claims, request.method/path/headers (all transaction-local), the work, and COMMIT — or
ROLLBACK on error or `Prefer: tx=rollback`. PostgreSQL then decides every RLS question.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request

from localbase.context import StackContext, TokenError, bearer_token
from localbase.rest import errors

T = TypeVar("T")

_SETUP_SQL = (
    "select set_config('search_path', '\"public\", \"extensions\"', true),"
    " set_config('role', %(role)s, true),"
    " set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('request.method', %(method)s, true),"
    " set_config('request.path', %(path)s, true),"
    " set_config('request.headers', %(headers)s, true)"
)


@dataclass(frozen=True)
class Identity:
    role: str
    claims: dict[str, Any]


def identify(ctx: StackContext, request: Request) -> Identity:
    """The caller's role and claims; raises RestError 401 for a token that cannot be trusted."""
    token = bearer_token(request)
    if token is None:
        return Identity("anon", {"role": "anon"})
    try:
        claims = ctx.keys.verify(token)
    except TokenError as exc:
        if exc.expired:
            raise errors.RestError(401, "PGRST303", "JWT expired", headers={
                "WWW-Authenticate": 'Bearer error="invalid_token", error_description="JWT expired"'}) from exc
        raise errors.RestError(401, "PGRST301", "JWT could not be decoded", details=str(exc), headers={
            "WWW-Authenticate": 'Bearer error="invalid_token", error_description="JWT could not be decoded"'},
        ) from exc
    role = claims.get("role") or "anon"
    if not isinstance(role, str):
        raise errors.RestError(401, "PGRST301", "JWT could not be decoded", details="role claim must be a string")
    return Identity(role, {**claims, "role": role})


async def in_transaction(ctx: StackContext, request: Request, who: Identity, *, read_only: bool,
                         rollback: bool, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """Run `work` in one request transaction; PostgreSQL errors become PostgREST errors."""
    path = request.url.path
    prefix = "/rest/v1"
    if path.startswith(prefix):
        path = path[len(prefix):] or "/"
    headers = {k.lower(): v for k, v in request.headers.items()}
    setup = {"role": who.role, "claims": json.dumps(who.claims), "method": request.method, "path": path,
             "headers": json.dumps(headers)}
    try:
        async with ctx.api_pool.connection() as conn:
            await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY" if read_only
                               else "BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                await conn.execute(_SETUP_SQL, setup)
                result = await work(conn)
            except BaseException:
                await _rollback(conn)
                raise
            if rollback:
                await conn.execute("ROLLBACK")
            else:
                await conn.execute("COMMIT")
            return result
    except psycopg.errors.InvalidParameterValue as exc:
        if "role" in str(exc) and exc.sqlstate == "22023":
            # a JWT naming a role that does not exist: PostgREST answers 401 PGRST301 style
            raise errors.RestError(401, "22023", str(exc.diag.message_primary or exc)) from exc
        raise errors.from_pg(exc, who.role) from exc
    except psycopg.DataError as exc:
        if exc.sqlstate is None:  # raised by psycopg itself, e.g. a NUL byte in a value
            raise errors.RestError(400, "22P05", "Invalid input", details=str(exc)) from exc
        raise errors.from_pg(exc, who.role) from exc
    except psycopg.Error as exc:
        if exc.sqlstate is None:
            raise errors.RestError(503, "PGRST000", "Database connection error", details=str(exc)) from exc
        raise errors.from_pg(exc, who.role) from exc


async def _rollback(conn: AsyncConnection[Any]) -> None:
    try:
        await conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the connection is broken; the pool discards it
