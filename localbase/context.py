"""What every localbase endpoint shares: keys, database pools, limits, and the caller's identity.

`StackContext` is created by the server's lifespan and stored on `app.state.ctx`; the auth, REST
and realtime modules read it from there and know nothing of how the stack was started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection

from localbase.keys import Keys, TokenError

MAX_BODY_BYTES = 1_048_576  # 1 MiB: PostgREST has no limit of its own; Supabase's gateway does


@dataclass
class StackContext:
    keys: Keys
    db_url: str  # superuser `supabase_admin`: realtime's capture and RLS checks, the REST schema cache
    api_db_url: str  # the `authenticator` login that API requests SET ROLE from, as PostgREST does
    api_url: str  # the public base URL, e.g. http://127.0.0.1:54321
    admin_pool: AsyncConnectionPool  # on db_url
    api_pool: AsyncConnectionPool  # on api_db_url
    auth_pool: AsyncConnectionPool  # `supabase_auth_admin` (search_path auth): every auth.* write, as GoTrue
    max_body_bytes: int = MAX_BODY_BYTES
    extras: dict[str, Any] = field(default_factory=dict)  # seams for later services (storage, ...)


def context(conn: HTTPConnection) -> StackContext:
    ctx: StackContext = conn.app.state.ctx
    return ctx


def bearer_token(conn: HTTPConnection) -> str | None:
    """The bearer token of a request, else its `apikey` header or query parameter."""
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return conn.headers.get("apikey") or conn.query_params.get("apikey") or None


def claims_of(conn: HTTPConnection) -> dict[str, Any]:
    """The verified JWT claims of the caller; `{"role": "anon"}` when no token came.

    Raises TokenError for a token that is present but forged, malformed or expired.
    """
    token = bearer_token(conn)
    if token is None:
        return {"role": "anon"}
    claims = context(conn).keys.verify(token)
    claims.setdefault("role", "anon")
    return claims


__all__ = ["MAX_BODY_BYTES", "StackContext", "TokenError", "bearer_token", "claims_of", "context"]
