"""Partial sync (issue 15, sync/scope.py, migration 20261130000510) against the real stack: a cache scoped to
open/pending tickets plus the last N days leaves an old closed ticket on the server; the server search finds
it and opening it caches it; RLS holds for the scoped pulls, the counts and the search (another customer's
ticket and internal notes are never found or fetched; anon cannot call them); widening the scope pulls what
was skipped.
"""

from __future__ import annotations

import httpx
import pytest

from sync import SyncEngine
from tests.conftest import create_user
from tests.realtime.support import post
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

WORD = "quasarfluxcapacitor"


def _old_closed(db_url: str, customer: str, agent: str, text: str, *, internal: str | None = None) -> str:
    tid = seed_ticket(
        db_url,
        customer,
        agent,
        f"Old {text}",
        status="closed",
        messages=[(customer, f"my {text} is broken"), (agent, "fixed it")],
    )
    if internal is not None:
        sql(
            db_url,
            "insert into public.messages (ticket_id, sender_id, content, is_internal) values (%s, %s, %s, true)",
            tid,
            agent,
            internal,
        )
    sql(db_url, "update public.tickets set last_message_at = now() - interval '100 days' where id = %s", tid)
    return tid


async def _scoped(engines: EngineFactory, user: object, days: int | None) -> SyncEngine:
    engine = await engines.open(user)  # type: ignore[arg-type]
    engine.partial.set_days(days)
    await engine.sync_once()
    return engine


async def test_old_closed_ticket_stays_on_the_server_until_searched_or_opened(
    stack: StackProcess, engines: EngineFactory
) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    old = _old_closed(stack.db_url, customer.id, agent.id, WORD, internal=f"internal {WORD} note")
    theirs = _old_closed(stack.db_url, other.id, agent.id, WORD)
    recent_closed = seed_ticket(
        stack.db_url, customer.id, agent.id, "Recent", status="closed", messages=[(customer.id, "thanks")]
    )
    open_one = seed_ticket(stack.db_url, customer.id, agent.id, "Open", messages=[(customer.id, "still broken")])

    mine = await _scoped(engines, customer, 30)
    assert mine.partial.days() == 30
    assert not mine.cache.has_ticket(old)  # outside the scope: closed, last active 100 days ago
    assert mine.cache.has_ticket(recent_closed) and mine.cache.has_ticket(open_one)
    assert [m.content for m in mine.cache.thread(open_one)] == ["still broken"]
    assert mine.cache.search(WORD) == []  # the local index cannot know it

    hits = await mine.partial.search_server(WORD)
    assert {h.ticket_id for h in hits} == {old}  # not the other customer's ticket (RLS)
    assert all("internal" not in h.snippet for h in hits)  # nor the internal note
    assert any(h.message_id is not None and f"[{WORD}]" in h.snippet for h in hits)
    assert any(h.message_id is None for h in hits)  # the subject too

    assert await mine.partial.fetch_ticket(old)  # opening the hit caches the ticket and its thread
    assert [m.content for m in mine.cache.thread(old)] == [f"my {WORD} is broken", "fixed it"]
    assert {h.ticket_id for h in mine.cache.search(WORD)} == {old}
    assert not await mine.partial.fetch_ticket(theirs)  # another customer's: the server does not show it
    assert not mine.cache.has_ticket(theirs)
    await mine.sync_once()  # the next pull keeps the fetched ticket
    assert mine.cache.has_ticket(old)

    # the agent's scoped cache also leaves it out, and the agent's search finds the internal note
    staff = await _scoped(engines, agent, 30)
    assert not staff.cache.has_ticket(old) and staff.cache.has_ticket(open_one)
    staff_hits = await staff.partial.search_server(WORD)
    assert {h.ticket_id for h in staff_hits} == {old, theirs}
    assert any("internal" in h.snippet for h in staff_hits)

    # widening to everything pulls what the scope skipped
    staff.partial.set_days(None)
    await staff.sync_once()
    assert staff.cache.has_ticket(old) and staff.cache.count_thread(old) == 3


async def test_a_full_cache_is_the_default_and_bad_settings_are_refused(
    stack: StackProcess, engines: EngineFactory
) -> None:
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    old = _old_closed(stack.db_url, customer.id, agent.id, "toaster")
    engine = await engines.open(customer)
    assert engine.partial.days() is None
    await engine.sync_once()
    assert engine.cache.has_ticket(old)
    for bad in (0, -3, 100_000, True):
        with pytest.raises(ValueError):
            engine.partial.set_days(bad)  # type: ignore[arg-type]
    assert engine.partial.days() is None


def test_the_scoped_rpcs_hold_rls_and_refuse_anon(stack: StackProcess) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    theirs = _old_closed(stack.db_url, other.id, agent.id, "zebracrossing")
    rest = f"{stack.api_url}/rest/v1/rpc"
    anon = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}
    as_customer = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=customer.id)}"}
    forever = {"since": "1970-01-01T00:00:00Z", "after_xid": 0, "after_id": 0, "max_rows": 1000}
    with httpx.Client(timeout=30) as client:
        for fn, body in (
            ("search_messages", {"query": "zebracrossing"}),
            ("sync_messages_scoped", forever),
            ("sync_count_scoped", {"table_name": "messages", "since": "1970-01-01T00:00:00Z"}),
        ):
            refused = client.post(f"{rest}/{fn}", json=body, headers=anon)
            assert refused.status_code in (401, 403), (fn, refused.status_code, refused.text)
        assert client.post(f"{rest}/search_messages", json={"query": "zebracrossing"}, headers=as_customer).json() == []
        rows = client.post(f"{rest}/sync_messages_scoped", json=forever, headers=as_customer).json()
        assert rows == []  # a new customer with no tickets: nothing, however far back
        tickets = client.post(f"{rest}/sync_tickets_scoped", json=forever, headers=as_customer).json()
        assert theirs not in {t["id"] for t in tickets}
        count = client.post(
            f"{rest}/sync_count_scoped",
            headers=as_customer,
            json={"table_name": "messages", "since": "1970-01-01T00:00:00Z"},
        ).json()
        assert count == 0
        bad = client.post(
            f"{rest}/sync_count_scoped",
            headers=as_customer,
            json={"table_name": "auth.users", "since": "1970-01-01T00:00:00Z"},
        )
        assert bad.status_code == 400 and "not a table of the partial sync" in bad.text
        long = client.post(f"{rest}/search_messages", json={"query": "x" * 201}, headers=as_customer)
        assert long.status_code == 400
        assert (
            client.post(f"{rest}/search_messages", json={"query": "\"' OR 1=1 --"}, headers=as_customer).status_code
            == 200
        )
        other_count = client.post(
            f"{rest}/sync_count", headers=as_customer, json={"table_name": "messages", "after_xid": 0, "after_id": 0}
        ).json()
        assert other_count == 0  # sync_count (20261130000500) is RLS-bound too


async def test_a_note_on_an_old_ticket_reaches_a_scoped_teammate(stack: StackProcess, engines: EngineFactory) -> None:
    """review16b: since internal notes no longer touch their ticket (migration 20261214000210: its customer saw when
    staff wrote them), a note did not bring an old closed ticket into a partial sync's scope, and a teammate
    whose cache held that ticket never pulled the note, nor the @mention in it. Notes are in scope by their own
    time now (migration 20261214000900); the customer's scoped pulls still get none."""
    customer, agent, teammate = (create_user(stack.db_url, r) for r in ("customer", "agent", "admin"))
    old = _old_closed(stack.db_url, customer.id, agent.id, "kettle")
    staff = await _scoped(engines, teammate, 30)
    assert await staff.partial.fetch_ticket(old)  # opened once: cached, though outside the scope
    mine = await _scoped(engines, customer, 30)
    assert await mine.partial.fetch_ticket(old)
    note = f"@[{teammate.name}]({teammate.id}) refund issued, call back Monday"
    post(stack.db_url, agent, old, note, internal=True)
    await staff.sync_once()
    assert [m.content for m in staff.cache.thread(old)] == ["my kettle is broken", "fixed it", note]
    await mine.sync_once()
    assert [m.content for m in mine.cache.thread(old)] == ["my kettle is broken", "fixed it"]
