"""Realtime Authorization: private channels decided by RLS policies on `realtime.messages`, as Supabase does.

Supabase Realtime (`Realtime.Tenants.Authorization`) asks the project's own policies, never its own
rules. For a private channel (`config.private: true`) on topic T:
  * read, at join and again on every `access_token` push: inside one transaction that is rolled back,
    insert one probe row per extension (`broadcast`, and `presence` when presence is enabled) for T,
    switch to the caller's role with `request.jwt.claims`, `request.jwt.claim.sub|role` and
    `realtime.topic` = T, and select the probes back: a probe the caller can SELECT means "may
    receive" that extension. Neither readable: the join is refused.
  * write, on the first broadcast or track: insert a row (T, extension) as the caller, rolled back;
    `insufficient_privilege` (an RLS WITH CHECK failure) means "may not send / track". Cached on the
    channel until the next `access_token`.
A policy that raises counts as "no". Public channels never reach this module. Public and private
channels of the same name are different topics (Realtime keys them apart), see `Channel.hub_key`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Extension = Literal["broadcast", "presence"]
STATEMENT_TIMEOUT = "5s"  # a slow policy must not hold a pool connection forever


class AuthorizationUnavailable(Exception):
    """The policies could not be evaluated (no realtime schema, database down): not a "no"."""


@dataclass
class Policies:
    """What a private channel's subscriber may do; None = not evaluated yet."""

    broadcast_read: bool | None = None
    presence_read: bool | None = None
    broadcast_write: bool | None = None
    presence_write: bool | None = None

    @property
    def can_read(self) -> bool:
        return bool(self.broadcast_read or self.presence_read)


def unauthorized_reason(sub_topic: str) -> str:
    """Supabase's join refusal, `Unauthorized: ` + its message."""
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"


async def _as_caller(conn: AsyncConnection[Any], sub_topic: str, claims: dict[str, Any]) -> None:
    role = str(claims.get("role") or "anon")
    await conn.execute(
        "select set_config('statement_timeout', %s, true), set_config('role', %s, true),"
        " set_config('realtime.topic', %s, true), set_config('request.jwt.claims', %s, true),"
        " set_config('request.jwt.claim.sub', %s, true), set_config('request.jwt.claim.role', %s, true),"
        " set_config('request.headers', '{}', true)",
        (STATEMENT_TIMEOUT, role, sub_topic, json.dumps(claims), str(claims.get("sub") or ""), role),
    )


async def read(pool: AsyncConnectionPool, sub_topic: str, claims: dict[str, Any], *,
               presence: bool) -> Policies:
    """May the caller receive broadcasts / presence on `sub_topic`? Raises AuthorizationUnavailable."""
    extensions: list[Extension] = ["broadcast", "presence"] if presence else ["broadcast"]
    probes = {ext: uuid.uuid4() for ext in extensions}
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute(
                "insert into realtime.messages (id, topic, extension)"
                " select * from unnest(%s::uuid[], %s::text[], %s::text[])",
                (list(probes.values()), [sub_topic] * len(probes), list(probes)),
            )
            await _as_caller(conn, sub_topic, claims)
            try:
                cur = await conn.execute("select id from realtime.messages where id = any(%s)",
                                         (list(probes.values()),))
                visible = {row[0] for row in await cur.fetchall()}
            except psycopg.errors.QueryCanceled as exc:
                raise AuthorizationUnavailable(f"QueryCanceled: {exc}") from None
            except psycopg.Error:  # a policy that raises (or no grant) is a "no", as on Supabase
                visible = set()
    except psycopg.Error as exc:
        raise AuthorizationUnavailable(str(exc)) from None
    return Policies(broadcast_read=probes["broadcast"] in visible,
                    presence_read=(probes["presence"] in visible) if presence else None)


async def write(pool: AsyncConnectionPool, sub_topic: str, claims: dict[str, Any], extension: Extension) -> bool:
    """May the caller send (broadcast) or track (presence) on `sub_topic`? Raises AuthorizationUnavailable."""
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            await _as_caller(conn, sub_topic, claims)
            try:
                await conn.execute("insert into realtime.messages (topic, extension) values (%s, %s)",
                                   (sub_topic, extension))
            except psycopg.errors.QueryCanceled as exc:
                raise AuthorizationUnavailable(f"QueryCanceled: {exc}") from None
            except psycopg.Error:
                return False
            return True
    except psycopg.Error as exc:
        raise AuthorizationUnavailable(str(exc)) from None
