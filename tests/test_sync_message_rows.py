"""``sync_message_rows`` (migration 20261204000300): the initial sync's pages of messages as arrays. It must show
exactly what ``sync_batch('messages')`` shows to the same caller (RLS: another customer's thread and internal
notes stay hidden; same cursor order, cursor and clamp), in ``MESSAGE_ROW`` order with canonical timestamps, be
refused to anon (and granted to nobody else), and a server without it must still be synced (pages of objects).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg

from sync.decisions import canonical_ts
from sync.errors import RetryableError
from sync.models import MESSAGE_ROW
from tests.conftest import create_user
from tests.fakes import fake_engine, one_ticket_desk
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, sql

_TS = {"created_at", "edited_at", "deleted_at"}


def _as_row(m: dict[str, Any]) -> list[Any]:
    return [canonical_ts(m[c]) if c in _TS else m[c] for c in MESSAGE_ROW]


def test_sync_message_rows_shows_what_sync_batch_shows_as_arrays(stack: StackProcess) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    mine = seed_ticket(stack.db_url, customer, agent, "Mine", messages=[(customer, f"mine {i}") for i in range(5)])
    seed_ticket(stack.db_url, other, agent, "Theirs", messages=[(other, "not for you")])
    sql(
        stack.db_url,
        "insert into public.messages (ticket_id, sender_id, content, is_internal) values (%s, %s, 'a note', true)",
        mine,
        agent.id,
    )
    # PostgreSQL shortens fractions ("...05.1+00:00", none at all): the arrays carry the canonical form (the
    # triggers stamp now() on an edit: set as a replica, as an import would)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute(
            "update public.messages set content = 'mine 1 edited', edited_at = '2026-01-02 03:04:05.1+00',"
            " change_xid = txid_current() where ticket_id = %s and content = 'mine 1'",
            (mine,),
        )
        conn.execute(
            "update public.messages set content = '', deleted_at = '2026-01-02 03:04:05+00',"
            " change_xid = txid_current() where ticket_id = %s and content = 'mine 2'",
            (mine,),
        )
    rpc = f"{stack.api_url}/rest/v1/rpc"
    anon = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}
    as_customer = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=customer.id)}"}
    as_agent = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=agent.id)}"}
    with httpx.Client(timeout=30) as client:

        def call(fn: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            return client.post(f"{rpc}/{fn}", json=body, headers=headers)

        for who in (as_customer, as_agent):
            batch = call("sync_batch", {"table_name": "messages"}, who).json()
            rows = call("sync_message_rows", {}, who).json()
            assert rows == [_as_row(m) for m in batch]  # same rows, same order, the stored values
        rows = call("sync_message_rows", {"after_xid": 0, "after_id": 0}, as_customer).json()
        assert sorted(r[3] for r in rows) == [
            "",
            "mine 0",
            "mine 1 edited",
            "mine 3",
            "mine 4",
        ]  # RLS: no note, no other thread
        assert {r[1] for r in rows} == {mine}
        edited = next(r for r in rows if r[3] == "mine 1 edited")
        deleted = next(r for r in rows if r[3] == "")
        assert edited[6] == "2026-01-02T03:04:05.100000+00:00" and deleted[7] == "2026-01-02T03:04:05.000000+00:00"
        assert all(len(r[5]) == 32 and r[5].endswith("+00:00") for r in rows)
        assert rows[0][4] is False and isinstance(rows[0][8], int) and isinstance(rows[0][9], int)
        agent_rows = call("sync_message_rows", {}, as_agent).json()
        assert any(r[3] == "a note" and r[4] is True for r in agent_rows)  # staff see the note
        rest = call("sync_message_rows", {"after_xid": rows[2][8], "after_id": rows[2][9], "max_rows": 1}, as_customer)
        assert rest.json() == rows[3:4]  # the cursor and the page size
        huge = call("sync_message_rows", {"max_rows": 10**9}, as_customer)
        assert huge.status_code == 200 and huge.json() == rows  # clamped, not refused
        denied = call("sync_message_rows", {}, anon)
        assert denied.status_code in (401, 403), denied.text
    granted = sql(
        stack.db_url,
        "select r.rolname from pg_roles r where r.rolname in ('anon', 'service_role', 'authenticated', 'public')"
        " and has_function_privilege(r.oid, 'public.sync_message_rows(bigint, bigint, integer)', 'execute')",
    )
    assert granted == [("authenticated",)]
    secure = sql(
        stack.db_url,
        "select prosecdef, proconfig from pg_proc where oid = 'public.sync_message_rows(bigint, bigint, integer)'"
        "::regprocedure",
    )
    assert secure == [(False, ['search_path=""'])]  # security invoker: RLS is the caller's


async def test_a_server_without_sync_message_rows_is_pulled_in_pages_of_objects(tmp_path: Path) -> None:
    server, agent, tid = one_ticket_desk(1500)
    asked: list[tuple[int, int]] = []

    async def no_such_function(after: tuple[int, int], max_rows: int = 10_000) -> list[list[Any]]:
        asked.append(after)
        raise RetryableError("Could not find the function public.sync_message_rows", code="PGRST202")

    server.pull_message_rows = no_such_function  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        assert engine.cache.count("messages") == 1500 and engine.cache.initial_sync_done()
        assert asked == [(0, 0)]  # asked once, then pages of objects (sync_batch) for the rest
        assert [m.content for m in engine.cache.thread(tid, limit=3)] == [f"message {i}" for i in (1497, 1498, 1499)]
    finally:
        await engine.close()
