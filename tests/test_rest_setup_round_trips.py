"""A REST request's transaction (localbase/rest/session.py `in_transaction`): BEGIN and the PostgREST-style setup
go to PostgreSQL in one round trip, and the values the client controls (headers, path, claims) arrive intact,
quoted as literals, never as SQL.

In process, against the session stack's PostgreSQL: a pool on the superuser's URL stands in for the
`authenticator` one (the setup switches role either way); round trips are counted as cursor executions (each one
query sent and its results read before the next).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from psycopg import AsyncConnection, AsyncCursor
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request

from localbase.rest.session import Identity, in_transaction
from tests.stackproc import StackProcess

HOSTILE = "x'); select pg_sleep(5); --\\' \"quoted\" \\x00-free ünïcode %s %(role)s $1 $$dollar$$"


def _request(headers: dict[str, str], path: str = "/rest/v1/messages") -> Request:
    raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]  # as HTTP carries them
    return Request({"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""})


@pytest.fixture
async def ctx(stack: StackProcess) -> AsyncIterator[Any]:
    pool = AsyncConnectionPool(stack.db_url, min_size=1, max_size=1, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True)
    try:
        yield SimpleNamespace(api_pool=pool, extras={})
    finally:
        await pool.close()


async def test_begin_and_setup_are_one_round_trip(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    who = Identity("authenticated", {"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated"})

    async def work(conn: AsyncConnection[Any]) -> str:
        cur = await conn.execute("select current_user")
        row = await cur.fetchone()
        assert row is not None
        return str(row[0])

    await in_transaction(ctx, _request({}), who, read_only=False, work=work)  # role settings cached
    sent: list[str] = []
    real = AsyncCursor.execute

    async def counted(self: AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query)[:40])
        return await real(self, query, *args, **kwargs)

    monkeypatch.setattr(AsyncCursor, "execute", counted)
    role = await in_transaction(ctx, _request({}), who, read_only=False, work=work)
    assert role == "authenticated"
    assert len(sent) == 3, f"BEGIN + setup, the work and COMMIT should be three round trips: {sent}"


async def test_client_values_reach_the_settings_intact(ctx: Any) -> None:
    claims = {"sub": "00000000-0000-0000-0000-000000000002", "role": "authenticated", "name": HOSTILE}
    who = Identity("authenticated", claims)
    headers = {"x-evil": HOSTILE, "prefer": "return=minimal"}

    async def work(conn: AsyncConnection[Any]) -> tuple[Any, ...]:
        cur = await conn.execute(
            "select current_setting('request.headers'), current_setting('request.jwt.claims'),"
            " current_setting('request.path'), current_user, current_setting('transaction_read_only')"
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)

    request = _request(headers, path=f"/rest/v1/{HOSTILE}")
    got = await in_transaction(ctx, request, who, read_only=True, work=work)
    sent_headers, sent_claims, path, user, read_only = got
    assert json.loads(sent_headers)["x-evil"] == HOSTILE
    assert json.loads(sent_claims) == claims
    assert path == request.url.path.removeprefix("/rest/v1") and "select pg_sleep(5)" in path
    assert (user, read_only) == ("authenticated", "on")
