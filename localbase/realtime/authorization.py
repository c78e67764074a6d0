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

Both checks run in one round trip: `localbase_realtime.authorize()` (created on first use) does the
probe inserts, switches role and claims, asks, and then raises a private SQLSTATE inside its own
block, so PostgreSQL rolls back the probes, the role and the claims before it returns the answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from localbase.realtime.rls import SCHEMA, run_setup

Extension = Literal["broadcast", "presence"]
STATEMENT_TIMEOUT = "5s"  # a slow policy must not hold a pool connection forever

# runs as the superuser that calls it; the role switch is local to the inner block, undone by its rollback
AUTHORIZE_SQL = f"""
create schema if not exists {SCHEMA};
revoke all on schema {SCHEMA} from public;
create or replace function {SCHEMA}.authorize(topic text, claims jsonb, read_exts text[], write_ext text)
returns text[] language plpgsql as $fn$
declare
  probes uuid[] := array(select gen_random_uuid() from unnest(read_exts));
  allowed text[] := '{{}}';
begin
  begin
    insert into realtime.messages (id, topic, extension)
    select p, topic, e from unnest(probes, read_exts) as u(p, e);
    perform set_config('realtime.topic', topic, true),
            set_config('request.jwt.claims', claims::text, true),
            set_config('request.jwt.claim.sub', coalesce(claims->>'sub', ''), true),
            set_config('request.jwt.claim.role', coalesce(claims->>'role', 'anon'), true),
            set_config('request.headers', '{{}}', true),
            set_config('role', coalesce(claims->>'role', 'anon'), true);
    begin
      allowed := array(select 'read:' || m.extension from realtime.messages m where m.id = any(probes));
    exception when query_canceled then raise;
      when others then allowed := '{{}}';  -- a policy that raises is a "no"
    end;
    if write_ext is not null then
      begin
        insert into realtime.messages (topic, extension) values (topic, write_ext);
        allowed := allowed || ('write:' || write_ext);
      exception when query_canceled then raise;
        when others then null;
      end;
    end if;
    raise exception using errcode = 'LBRT0';  -- undo the probes, the role and the claims
  exception when sqlstate 'LBRT0' then
    return allowed;
  end;
end
$fn$;
revoke all on function {SCHEMA}.authorize(text, jsonb, text[], text) from public;
"""


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


_ready: set[int] = set()  # pools whose database has the function (per process)
_lock = asyncio.Lock()


async def _authorize(
    pool: AsyncConnectionPool, sub_topic: str, claims: dict[str, Any], read_exts: list[str], write_ext: str | None
) -> set[str]:
    try:
        if id(pool) not in _ready:
            async with _lock, pool.connection() as conn:
                await run_setup(conn, AUTHORIZE_SQL)
            _ready.add(id(pool))
        claims = {**claims, "role": str(claims.get("role") or "anon")}
        async with pool.connection() as conn, conn.pipeline() as pipeline:  # one round trip for the three
            await conn.execute(f"set statement_timeout = '{STATEMENT_TIMEOUT}'")
            cur = await conn.execute(
                f"select {SCHEMA}.authorize(%s, %s, %s, %s)", (sub_topic, Jsonb(claims), read_exts, write_ext)
            )
            await conn.execute("reset statement_timeout")
            await pipeline.sync()
            row = await cur.fetchone()
    except psycopg.Error as exc:
        raise AuthorizationUnavailable(str(exc)) from None
    return set(row[0]) if row and row[0] else set()


async def read(pool: AsyncConnectionPool, sub_topic: str, claims: dict[str, Any], *, presence: bool) -> Policies:
    """May the caller receive broadcasts / presence on `sub_topic`? Raises AuthorizationUnavailable."""
    allowed = await _authorize(pool, sub_topic, claims, ["broadcast", "presence"] if presence else ["broadcast"], None)
    return Policies(
        broadcast_read="read:broadcast" in allowed, presence_read=("read:presence" in allowed) if presence else None
    )


async def write(pool: AsyncConnectionPool, sub_topic: str, claims: dict[str, Any], extension: Extension) -> bool:
    """May the caller send (broadcast) or track (presence) on `sub_topic`? Raises AuthorizationUnavailable."""
    return f"write:{extension}" in await _authorize(pool, sub_topic, claims, [], extension)
