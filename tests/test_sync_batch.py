"""``sync_batch`` (migration 20261202000300): the initial sync's pages of up to 10,000 rows in one JSON answer,
so an admin's RLS set of visible tickets is built once per 10,000 rows instead of per 1,000. It must show
exactly what ``sync_<table>`` shows (RLS, columns, cursor order), refuse anon and any table it does not serve,
and a server without it must still be synced (pages of ``sync_<table>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.errors import RetryableError
from tests.conftest import create_user
from tests.fakes import FakeRemote, fake_engine, one_ticket_desk
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket


def test_sync_batch_shows_what_sync_messages_shows_and_refuses_the_rest(stack: StackProcess) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    mine = seed_ticket(stack.db_url, customer, agent, "Mine", messages=[(customer, f"mine {i}") for i in range(5)])
    seed_ticket(stack.db_url, other, agent, "Theirs", messages=[(other, "not for you")])
    rpc = f"{stack.api_url}/rest/v1/rpc"
    anon = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}
    as_customer = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=customer.id)}"}
    with httpx.Client(timeout=30) as client:

        def call(fn: str, body: dict[str, Any], headers: dict[str, str] = as_customer) -> httpx.Response:
            return client.post(f"{rpc}/{fn}", json=body, headers=headers)

        paged = call("sync_messages", {"after_xid": 0, "after_id": 0}).json()
        batch = call("sync_batch", {"table_name": "messages", "after_xid": 0, "after_id": 0}).json()
        assert batch == paged  # same rows, same columns, same order
        assert [m["content"] for m in batch] == [f"mine {i}" for i in range(5)]
        assert {m["ticket_id"] for m in batch} == {mine}  # RLS: the other customer's thread is not there
        third = batch[2]
        rest = call(
            "sync_batch",
            {"table_name": "messages", "after_xid": third["change_xid"], "after_id": third["change_id"], "max_rows": 1},
        ).json()
        assert rest == batch[3:4]  # the cursor and the page size
        assert call("sync_batch", {"table_name": "tickets"}).json() == call("sync_tickets", {}).json()
        huge = call("sync_batch", {"table_name": "messages", "max_rows": 10**9})
        assert huge.status_code == 200 and huge.json() == batch  # clamped, not refused
        for bad in ("outbox", "auth.users", "messages; drop table public.messages", "app_settings", None):
            refused = call("sync_batch", {"table_name": bad})
            assert refused.status_code == 400 and "not a table sync_batch serves" in refused.text, refused.text
        denied = call("sync_batch", {"table_name": "messages"}, anon)
        assert denied.status_code in (401, 403), denied.text


async def test_a_server_without_sync_batch_is_pulled_in_pages_of_sync_tables(tmp_path: Path) -> None:
    server, agent, _ = one_ticket_desk(1500)
    asked: list[str] = []

    async def no_such_function(table: str, after: tuple[int, int], max_rows: int = 10_000) -> list[dict[str, Any]]:
        asked.append(table)
        raise RetryableError("Could not find the function public.sync_batch", code="PGRST202")

    server.pull_batch = no_such_function  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        assert engine.cache.count("messages") == 1500 and engine.cache.initial_sync_done()
        assert asked == ["profiles"]  # asked once, then pages of sync_<table> for the rest
    finally:
        await engine.close()


async def test_other_errors_of_sync_batch_are_not_taken_for_an_old_server(tmp_path: Path) -> None:
    server = FakeRemote()
    agent = server.add_user("agent", "Ann Agent")

    async def offline(table: str, after: tuple[int, int], max_rows: int = 10_000) -> list[dict[str, Any]]:
        raise RetryableError("network: connection reset", code="ConnectError")

    server.pull_batch = offline  # type: ignore[method-assign]
    engine = await fake_engine(server, tmp_path / "e")
    try:
        await engine.sign_in(agent.email, agent.password)
        with pytest.raises(RetryableError):
            await engine.sync_once()
        assert engine.parts.puller.batches  # still asks for batches next time
    finally:
        await engine.close()
