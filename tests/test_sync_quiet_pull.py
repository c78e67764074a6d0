"""A pull after the initial sync asks which tables changed first (``rpc sync_status``, one request) and pulls only
those: a caught-up pull was one empty page per synced table (5 requests for a customer, 15 for staff), every poll of
every client, and with 50 clients chatting most of the stack's requests (bench/README.md, e2e, eighth pass).

On the fake server for the request shape (which calls a pull makes), and on the real stack for the guarantee: a row
written by someone else after a caught-up pull still arrives by the next one, for every kind of table the pull reads,
and nothing is pulled twice. The answer's horizon moves the cursors of the tables it did not name past the rows this
user may not see (a quiet customer's cursor no longer lags behind the desk's traffic), and never past a row of a
transaction still open when it was asked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from sync import RemoteConfig, SyncEngine, pull, remote
from sync.decisions import ticket_digest
from sync.errors import SyncError
from sync.remote import Status
from tests.conftest import PASSWORD, User, create_user
from tests.fakes import fake_engine, one_ticket_desk
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, sql

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
        assert server.calls.count("status") == 1
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
    "refusal",
    [
        SyncError("Could not find the function public.sync_status", code="PGRST202"),
        # an older server's sync_status, which does not know a table this client syncs: before, every pull failed
        SyncError("not a synced table: mentions", code="22023"),
        None,  # an answer of another shape (what SupabaseRemote.status returns for a body it cannot read)
    ],
)
async def test_a_server_without_sync_status_gets_every_table_and_is_asked_once(
    tmp_path: Path, refusal: SyncError | None
) -> None:
    server, agent, _ = one_ticket_desk(1)
    engine = await fake_engine(server, tmp_path)
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        asked = 0

        async def no_status(cursors: object) -> Status | None:
            nonlocal asked
            asked += 1
            if refusal is not None:
                raise refusal
            return None

        server.status = no_status  # type: ignore[method-assign,assignment]
        for _ in range(2):
            server.calls.clear()
            await engine.sync_once()
            assert "pull messages" in server.calls and "pull tickets" in server.calls
        assert asked == 1
    finally:
        await engine.close()


async def test_a_changed_profile_setting_or_identity_sends_the_question_back_to_the_cache_cursors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role change (a profile), a changed setting (staff_require_mfa) or a session that reached aal2 may show rows
    below an earlier horizon that were never written since: the questions after it start from the cache's cursors
    again, an answer asked before the change sets no horizon, and no horizon is used past HORIZON_TTL_S."""
    server, agent, _ = one_ticket_desk(1)
    engine = await fake_engine(server, tmp_path)
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        asked: list[dict[str, tuple[int, int]]] = []
        answers = [Status(frozenset(), 1000), Status(frozenset(), 1000), Status(frozenset({"profiles"}), 2000)]

        async def status(cursors: dict[str, tuple[int, int]]) -> Status | None:
            asked.append(dict(cursors))
            if len(asked) == 5:
                engine.parts.puller.forget_horizons()  # the session changed while this question was out
            return answers.pop(0) if answers else Status(frozenset(), 3000)

        server.status = status  # type: ignore[method-assign,assignment]
        for _ in range(6):
            await engine.sync_once()
        own = await engine.cache.cursor("messages")
        assert [a["messages"] for a in asked] == [own, (1000, 0), (1000, 0), own, (3000, 0), own]
        await engine.sync_once()
        assert asked[-1]["messages"] == (3000, 0)
        server.settings["staff_require_mfa"] = not server.settings.get("staff_require_mfa", False)
        await engine.sync_once()  # read before the question: a setting RLS reads changed
        assert asked[-1]["messages"] == own
        await engine.sync_once()
        assert asked[-1]["messages"] == (3000, 0)
        monkeypatch.setattr(pull, "HORIZON_TTL_S", -1.0)  # a horizon older than this is not used
        await engine.sync_once()
        assert asked[-1]["messages"] == own
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


async def test_a_caught_up_pull_on_the_stack_is_the_question_settings_and_the_digest(desk: Desk) -> None:
    sent: list[str] = []

    async def note(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    http = desk.engine.remote._http  # type: ignore[attr-defined]
    http.event_hooks = {"request": [note], "response": []}
    await desk.engine.sync_once()
    assert sorted(sent) == [
        "GET /rest/v1/app_settings",
        "GET /rest/v1/notification_preferences",
        "POST /rest/v1/rpc/sync_status",  # which tables changed: none, so no sync_<table> page
        "POST /rest/v1/rpc/visible_tickets_digest",  # the same tickets as cached: no listing of their ids
    ]


async def test_the_prune_lists_the_ids_only_when_the_digests_differ(stack: StackProcess, desk: Desk) -> None:
    """Before, every pull listed every visible ticket id (a hundred pages for an admin of 100,000 tickets); now
    the digests are compared first, and a ticket reassigned away still leaves the cache at the next pull."""
    engine = desk.engine
    listed: list[set[str]] = []
    plain = engine.remote.visible_ticket_ids

    async def listing() -> set[str]:
        listed.append(await plain())
        return listed[-1]

    engine.remote.visible_ticket_ids = listing  # type: ignore[method-assign]
    await engine.sync_once()
    assert listed == []
    queued = str(uuid.uuid4())  # a ticket created offline, not on the server yet: not in the comparison
    engine.cache.queue_ticket(
        {"id": queued, "customer_id": desk.customer.id, "assignee_id": None, "subject": "Queued", "status": "open"}
        | {"priority": "normal"},
        None,
    )
    await engine.pull()
    assert listed == []
    other = create_user(stack.db_url, "agent")
    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", other.id, desk.ticket)
    await engine.pull()
    assert len(listed) == 1 and desk.ticket not in listed[0]
    assert not engine.cache.has_ticket(desk.ticket) and engine.cache.has_ticket(queued)


async def test_the_digest_is_of_the_tickets_rls_shows_and_only_for_signed_in_users(
    stack: StackProcess, desk: Desk
) -> None:
    agent = desk.engine.remote
    assert await agent.visible_tickets_digest() == ticket_digest(await agent.visible_ticket_ids())
    customer = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), desk.engine.data_dir / "c")
    try:
        await customer.sign_in(desk.customer.email, PASSWORD)
        own = sql(stack.db_url, "select id::text from public.tickets where customer_id = %s", desk.customer.id)
        assert await customer.remote.visible_tickets_digest() == ticket_digest(r[0] for r in own)
    finally:
        await customer.close()
    anonymous = httpx.post(
        f"{stack.api_url}/rest/v1/rpc/visible_tickets_digest",
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"},
        json={},
    )
    assert anonymous.status_code in (401, 403, 404) and "count" not in anonymous.text


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


@dataclass
class Quiet:
    engine: SyncEngine  # a customer's, after its initial sync
    customer: User
    ticket: str  # the customer's own
    other: str  # another customer's ticket


@pytest.fixture
async def quiet(stack: StackProcess, tmp_path: Path) -> AsyncIterator[Quiet]:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    ticket = seed_ticket(stack.db_url, customer, agent, messages=[(customer, "mine")])
    theirs = seed_ticket(stack.db_url, other, agent, messages=[(other, "theirs")])
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), tmp_path)
    try:
        await engine.sign_in(customer.email, PASSWORD)
        await engine.sync_once()
        yield Quiet(engine, customer, ticket, theirs)
    finally:
        await engine.close()


def _last_change(db_url: str, ticket: str) -> tuple[int, int]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select change_xid, change_id from public.messages where ticket_id = %s order by change_xid desc,"
            " change_id desc limit 1",
            (ticket,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _questions(engine: SyncEngine) -> list[dict[str, list[int]]]:
    """The cursors of every ``sync_status`` question the engine asks from now on."""
    asked: list[dict[str, list[int]]] = []

    async def note(request: httpx.Request) -> None:
        if request.url.path == "/rest/v1/rpc/sync_status":
            asked.append(json.loads(request.content)["cursors"])

    engine.remote._http.event_hooks = {"request": [note], "response": []}  # type: ignore[attr-defined]
    return asked


async def test_a_quiet_customers_question_starts_past_rows_it_may_not_see(stack: StackProcess, quiet: Quiet) -> None:
    """Before, the customer's question started at its own last message, and walked everything written since by
    others through RLS, at every poll. The cache's cursor itself only moves with rows the customer was given."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        for i in range(5):
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content) values"
                " (%s, (select customer_id from public.tickets where id = %s), %s)",
                (quiet.other, quiet.other, f"not yours {i}"),
            )
    others = _last_change(stack.db_url, quiet.other)
    own = await quiet.engine.cache.cursor("messages")
    asked = _questions(quiet.engine)
    await quiet.engine.sync_once()
    await quiet.engine.sync_once()
    assert tuple(asked[0]["messages"]) == own
    assert tuple(asked[1]["messages"]) > others  # the first answer's horizon
    assert await quiet.engine.cache.cursor("messages") == own
    assert [m.content for m in quiet.engine.cache.thread(quiet.ticket)] == ["mine"]
    quiet.engine.parts.puller.forget_horizons()  # e.g. the session reached aal2: what it may see may have grown
    await quiet.engine.sync_once()
    assert tuple(asked[2]["messages"]) == own


async def test_the_cursor_never_moves_past_a_row_of_a_transaction_still_open(stack: StackProcess, quiet: Quiet) -> None:
    with psycopg.connect(stack.db_url) as late:  # a transaction: open until its commit below
        late.execute(
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'committed late')",
            (quiet.ticket, quiet.customer.id),
        )
        with psycopg.connect(stack.db_url, autocommit=True) as conn:  # others' rows committed meanwhile
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content) values"
                " (%s, (select customer_id from public.tickets where id = %s), 'not yours')",
                (quiet.other, quiet.other),
            )
        await quiet.engine.sync_once()  # the late row is not visible yet: the question names no table
        assert [m.content for m in quiet.engine.cache.thread(quiet.ticket)] == ["mine"]
        late.commit()
    await quiet.engine.sync_once()
    assert [m.content for m in quiet.engine.cache.thread(quiet.ticket)] == ["mine", "committed late"]
    await quiet.engine.sync_once()
    assert [m.content for m in quiet.engine.cache.thread(quiet.ticket)] == ["mine", "committed late"]
