"""Who is viewing, replayed (issue 14, collision guard), against a real localbase with two clients: an agent
who opens the inbox or a ticket sees at once who is already viewing it (the server keeps the last 'viewing'
signal, ``rpc ticket_viewers``), not after the others' next renewal (every 20 s); a second page on the same
ticket (a reload) gets the known viewers at once and keeps the channel when the first page goes. Tried as an
attacker would: customers, anon and agents who may not join a ticket's topic learn nothing from it.
"""

from __future__ import annotations

import pytest

from sync import SyncEngine, events
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_history_rls import As, as_, refused
from tests.test_rest_clients import clients_fixture
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for

uses_clients = clients_fixture
uses_as = as_
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
]


async def started(engine: SyncEngine) -> SyncEngine:
    """Started and its realtime socket up (the first pull may go on: presence does not wait for it)."""
    await engine.start()
    await wait_for(lambda: engine.remote.live.subscribed, timeout=120, what="realtime")  # type: ignore[attr-defined]
    return engine


def kept(stack: StackProcess, ticket_id: str) -> list[str]:
    """The viewers the server keeps for a ticket (live ones, as the RPC counts them)."""
    rows = sql(
        stack.db_url,
        "select user_id::text from private.ticket_viewers where ticket_id = %s"
        " and seen_at > now() - interval '50 seconds' order by user_id",
        ticket_id,
    )
    return [r[0] for r in rows]


async def test_viewers_show_at_once_when_the_inbox_or_a_ticket_opens(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Already on it")
    agent = await started(await engines.open(users.agent))
    await agent.presence.watch(tid)
    await wait_for(lambda: kept(stack, tid) == [users.agent.id], what="the agent's viewing kept by the server")

    # a second client opens the inbox, then the ticket: the agent shows right after each call, with no
    # broadcast waited for (the agent's next renewal is up to 20 s away)
    admin = await started(await engines.open(users.admin))
    await admin.presence.watch_inbox()
    assert admin.presence.inbox_viewers(tid) == (users.agent.name,)
    assert any(
        isinstance(e, events.InboxViewersChanged) and e.ticket_id == tid and e.viewers == (users.agent.name,)
        for e in engines.log(admin)
    )
    await admin.presence.watch(tid)
    assert admin.presence.viewers[tid] == (users.agent.name,)

    # a reloaded page watches before the old one unwatches: the new one is told at once, the channel stays
    before = len(engines.log(admin))
    await admin.presence.watch(tid)
    assert events.PresenceChanged(tid, (users.agent.name,)) in engines.log(admin)[before:]
    await admin.presence.unwatch(tid)
    assert admin.presence.viewers.get(tid) == (users.agent.name,)  # still watched by the new page
    await wait_for(lambda: users.admin.id in kept(stack, tid), what="the admin's viewing kept too")
    await wait_for(
        lambda: agent.presence.viewers.get(tid) == (users.admin.name,), timeout=30, what="the admin at the agent"
    )

    # the agent leaves: the server forgets them at once, a newcomer sees only the admin
    await agent.presence.unwatch(tid)
    await wait_for(lambda: kept(stack, tid) == [users.admin.id], what="the agent forgotten")
    newcomer = await started(await engines.open(users.agent2))
    await newcomer.presence.watch_inbox()
    assert newcomer.presence.inbox_viewers(tid) == (users.admin.name,)
    await admin.presence.unwatch(tid)
    await wait_for(lambda: kept(stack, tid) == [], what="the admin gone")


def test_only_who_may_join_a_ticket_learns_its_viewers(stack: StackProcess, users: Users, as_: As) -> None:
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "Viewed")
    theirs = seed_ticket(stack.db_url, users.customer2, users.agent, "Someone else's")
    for ticket in (mine, theirs):
        as_("agent").rpc("ticket_signal", {"ticket_id": ticket, "signal": "viewing"}).execute()
    names = {"ticket_id": mine, "user_id": users.agent.id, "name": users.agent.name, "role": "agent"}
    # the customer learns who views their own ticket (what its topic tells them), nothing of anyone else's
    assert as_("customer").rpc("ticket_viewers", {"ticket": mine}).execute().data == [names]
    refused(lambda: as_("customer").rpc("ticket_viewers", {"ticket": theirs}).execute())
    refused(lambda: as_("customer").rpc("ticket_viewers", {}).execute())  # the staff-wide list
    refused(lambda: as_("anon").rpc("ticket_viewers", {"ticket": mine}).execute())
    # an agent may not join a colleague's ticket's topic: not its viewers either, only the staff-wide list
    refused(lambda: as_("agent2").rpc("ticket_viewers", {"ticket": mine}).execute())
    assert names in as_("agent2").rpc("ticket_viewers", {}).execute().data
    # the kept state is the server's own: the API does not expose it, and no API role is granted it
    for who in ("agent", "admin", "customer"):
        refused(lambda who=who: as_(who).schema("private").table("ticket_viewers").select("*").execute(), "PGRST106")
    assert sql(
        stack.db_url,
        "select count(*) from information_schema.role_table_grants where table_schema = 'private'"
        " and table_name = 'ticket_viewers' and grantee in ('anon', 'authenticated', 'public')",
    ) == [(0,)]
    # a client that stopped renewing (crashed) drops out after the viewing TTL
    sql(
        stack.db_url,
        "update private.ticket_viewers set seen_at = now() - interval '2 minutes' where ticket_id = %s",
        mine,
    )
    assert as_("customer").rpc("ticket_viewers", {"ticket": mine}).execute().data == []
    as_("agent").rpc("ticket_signal", {"ticket_id": theirs, "signal": "left"}).execute()
    assert all(r["ticket_id"] != theirs for r in as_("admin").rpc("ticket_viewers", {}).execute().data)
