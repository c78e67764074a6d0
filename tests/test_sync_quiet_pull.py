"""A pull after the initial sync asks which tables changed first (``rpc sync_changed``, one request) and pulls only
those: a caught-up pull was one empty page per synced table (5 requests for a customer, 15 for staff), every poll of
every client, and with 50 clients chatting most of the stack's requests (bench/README.md, e2e, eighth pass).

On the fake server for the request shape (which calls a pull makes), and on the real stack for the guarantee: a row
written by someone else after a caught-up pull still arrives by the next one, for every kind of table the pull reads,
and nothing is pulled twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from sync import RemoteConfig, SyncEngine, remote
from sync.errors import SyncError
from tests.conftest import PASSWORD, User, create_user
from tests.fakes import fake_engine, one_ticket_desk
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket

pytestmark = pytest.mark.timeout(120)


def _pulls(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("pull ")]


async def test_a_caught_up_pull_asks_one_question_and_pulls_no_table(tmp_path: Path) -> None:
    server, agent, ticket = one_ticket_desk(3)
    engine = await fake_engine(server, tmp_path)
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()  # the initial sync: every table
        server.calls.clear()
        await engine.sync_once()
        assert _pulls(server.calls) == []
        assert server.calls.count("changed") == 1
        server.write(
            "messages",
            {
                "id": str(uuid.uuid4()),
                "ticket_id": ticket,
                "sender_id": agent.id,
                "content": "late",
                "is_internal": False,
                "created_at": server.stamp(),
            },
        )
        server.calls.clear()
        await engine.sync_once()
        assert _pulls(server.calls) == ["pull messages", "pull messages"]  # its page, then the empty one
        assert [m.content for m in engine.cache.thread(ticket)][-1] == "late"
    finally:
        await engine.close()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Could not find the function public.sync_changed", "PGRST202"),
        # an older server's sync_changed, which does not know a table this client syncs: before, every pull failed
        ("not a synced table: mentions", "22023"),
    ],
)
async def test_a_server_without_sync_changed_gets_every_table_and_is_asked_once(
    tmp_path: Path, message: str, code: str
) -> None:
    server, agent, _ = one_ticket_desk(1)
    engine = await fake_engine(server, tmp_path)
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        asked = 0

        async def no_changed(cursors: object) -> set[str]:
            nonlocal asked
            asked += 1
            raise SyncError(message, code=code)

        server.changed = no_changed  # type: ignore[method-assign,assignment]
        for _ in range(2):
            server.calls.clear()
            await engine.sync_once()
            assert "pull messages" in server.calls and "pull tickets" in server.calls
        assert asked == 1
    finally:
        await engine.close()


@dataclass
class Desk:
    engine: SyncEngine  # the agent's, after its initial sync
    customer: User
    ticket: str


@pytest.fixture
async def desk(stack: StackProcess, tmp_path: Path) -> AsyncIterator[Desk]:
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    ticket = seed_ticket(stack.db_url, customer, agent, messages=[(customer, "first")])
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), tmp_path)
    try:
        await engine.sign_in(agent.email, PASSWORD)
        await engine.sync_once()
        yield Desk(engine, customer, ticket)
    finally:
        await engine.close()


async def test_rows_written_after_a_caught_up_pull_arrive_by_the_next_on_the_stack(
    stack: StackProcess, desk: Desk
) -> None:
    engine, customer, ticket = desk.engine, desk.customer, desk.ticket
    tag = f"vip {uuid.uuid4().hex[:8]}"  # the stack is shared: names unique
    await engine.sync_once()  # caught up: nothing past any cursor
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'second')",
            (ticket, customer.id),
        )
        conn.execute("update public.profiles set display_name = 'Renamed' where id = %s", (customer.id,))
        conn.execute("insert into public.tags (name) values (%s)", (tag,))
    await engine.sync_once()
    assert [m.content for m in engine.cache.thread(ticket)] == ["first", "second"]
    assert engine.cache.profiles()[customer.id].display_name == "Renamed"
    assert tag in [t.name for t in engine.workspace.tags()]
    await engine.sync_once()
    assert [m.content for m in engine.cache.thread(ticket)] == ["first", "second"]  # nothing twice


async def test_a_caught_up_pull_on_the_stack_is_the_question_settings_and_one_page_of_ids(desk: Desk) -> None:
    sent: list[str] = []

    async def note(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    http = desk.engine.remote._http  # type: ignore[attr-defined]
    http.event_hooks = {"request": [note], "response": []}
    await desk.engine.sync_once()
    pages = sent.count("GET /rest/v1/tickets")  # the visible ids for the prune: one page, counted in its statement
    assert pages == 1 or desk.engine.cache.count("tickets") >= remote.PAGE  # (the stack is shared by every test)
    assert sorted(s for s in sent if s != "GET /rest/v1/tickets") == [
        "GET /rest/v1/app_settings",
        "GET /rest/v1/notification_preferences",
        "POST /rest/v1/rpc/sync_changed",  # which tables changed: none, so no sync_<table> page
    ]


async def test_visible_ids_past_one_page_are_not_counted_at_every_poll(
    stack: StackProcess, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count the first page asks for saves the listing's last request only while the ids fit in one page;
    past it, it is a second pass over every visible ticket at every poll, so a listing that did not fit asks for
    none the next time (before: every listing did)."""
    for _ in range(3):  # the agent sees at least four tickets (its own and the unassigned ones)
        seed_ticket(stack.db_url, desk.customer)
    counted: list[bool] = []

    async def note(request: httpx.Request) -> None:
        if request.url.path == "/rest/v1/tickets":
            counted.append("count=exact" in request.headers.get("prefer", ""))

    http = desk.engine.remote._http  # type: ignore[attr-defined]
    http.event_hooks = {"request": [note], "response": []}
    every = await desk.engine.remote.visible_ticket_ids()  # one page: counted
    assert counted[0] and len(every) >= 4
    monkeypatch.setattr(remote, "PAGE", len(every) // 2)  # the same desk, now past one page
    counted.clear()
    assert await desk.engine.remote.visible_ticket_ids() == every  # counted (the last one fit), pages to the end
    assert counted[0] and len(counted) >= 2
    counted.clear()
    assert await desk.engine.remote.visible_ticket_ids() == every
    assert not any(counted) and len(counted) >= 2
