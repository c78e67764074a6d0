"""Helpers shared by the realtime tests: signed-in async clients, event collectors, writes as a user.

Rows are written either through REST with a signed-in supabase-py client (as the app does) or, when
a test needs a transaction it can roll back, with psycopg as the user: `set_config('role')` and
`request.jwt.claims` inside one transaction, exactly as PostgREST runs a request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from supabase import AClientOptions, AsyncClient, acreate_client

from tests.conftest import User
from tests.stackproc import StackProcess


_opened: list[tuple[AsyncClient, httpx.AsyncClient]] = []


async def client(stack: StackProcess, **realtime: Any) -> AsyncClient:
    http = httpx.AsyncClient(timeout=30)
    options = AClientOptions(auto_refresh_token=False, persist_session=False, realtime=realtime or None,
                             httpx_client=http)
    sb = await acreate_client(stack.api_url, stack.anon_key, options)
    _opened.append((sb, http))
    return sb


async def close_all() -> None:
    """Close every client the helpers opened (sockets, auth, HTTP), so no ResourceWarning fires later."""
    while _opened:
        sb, http = _opened.pop()
        await sb.realtime.close()
        await sb.auth.close()
        await http.aclose()


async def signed_in(stack: StackProcess, user: User, **realtime: Any) -> AsyncClient:
    """An async supabase client signed in with the user's password (it hands its token to realtime)."""
    sb = await client(stack, **realtime)
    await sb.auth.sign_in_with_password({"email": user.email, "password": user.password})
    session = await sb.auth.get_session()
    assert session is not None
    await sb.realtime.set_auth(session.access_token)
    return sb


async def with_token(stack: StackProcess, token: str, **realtime: Any) -> AsyncClient:
    sb = await client(stack, **realtime)
    await sb.realtime.set_auth(token)
    return sb


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Listener:
    """A channel's received postgres_changes payloads, system messages and subscribe states."""

    channel: AsyncRealtimeChannel | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    systems: list[Any] = field(default_factory=list)
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = field(default_factory=list)

    def records(self, table: str | None = None) -> list[dict[str, Any]]:
        return [c["data"].get("record", {}) for c in self.changes if table in (None, c["data"]["table"])]

    def contents(self) -> list[str]:
        return [r["content"] for r in self.records("messages")]

    async def wait_content(self, content: str, timeout: float = 5.0) -> None:
        await wait_until(lambda: content in self.contents(), timeout, f"message {content!r}")


async def listen(sb: AsyncClient, name: str, *bindings: dict[str, Any], wait_system: bool = True) -> Listener:
    """Subscribe `name` with postgres_changes bindings and wait until the server says it is live."""
    got = Listener()
    channel = sb.channel(name)
    for b in bindings:
        channel.on_postgres_changes(b.get("event", "*"), lambda p: got.changes.append(p), table=b.get("table"),
                                    schema=b.get("schema", "public"), filter=b.get("filter"))
    channel.on_system(got.systems.append)
    await channel.subscribe(lambda s, e: got.states.append((s, e)))
    got.channel = channel
    assert got.states and got.states[0][0] == RealtimeSubscribeStates.SUBSCRIBED, got.states
    if wait_system and bindings:
        await wait_until(lambda: bool(got.systems), what="Subscribed to PostgreSQL")
        assert got.systems[0].message == "Subscribed to PostgreSQL"
    return got


def as_user(db_url: str, user: User, query: str, params: tuple[Any, ...] = (), *,
            rollback: bool = False) -> list[tuple[Any, ...]]:
    """Run `query` in one transaction as `user` (role authenticated + claims), as PostgREST would."""
    claims = json.dumps({"sub": user.id, "role": "authenticated", "email": user.email})
    with psycopg.connect(db_url) as conn:
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     (claims,))
        cur = conn.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        if rollback:
            conn.rollback()
        else:
            conn.commit()
    return rows


def new_ticket(db_url: str, customer: User, assignee: User | None = None, subject: str = "Printer on fire") -> str:
    ticket_id = str(as_user(db_url, customer, "insert into public.tickets (subject) values (%s) returning id::text",
                            (subject,))[0][0])
    if assignee is not None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("update public.tickets set assignee_id = %s where id = %s", (assignee.id, ticket_id))
    return ticket_id


def post(db_url: str, user: User, ticket_id: str, content: str, *, internal: bool = False,
         rollback: bool = False) -> str:
    rows = as_user(db_url, user, "insert into public.messages (ticket_id, content, is_internal) values (%s, %s, %s)"
                   " returning id::text", (ticket_id, content, internal), rollback=rollback)
    return str(rows[0][0])
