"""The collision guard's server side (issue 14, item 5), tried as an attacker would and raced for real:
two agents never both take a ticket (rpc take_ticket decides under the row lock, the loser is told who
won), and only staff hear who views which ticket (`staff:viewers`, minted by the database only).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sync import SyncEngine, events
from tests.conftest import Users
from tests.realtime.support import RawSocket
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


def take(as_: As, who: str, ticket_id: str) -> dict[str, Any]:
    rows = as_(who).rpc("take_ticket", {"ticket": ticket_id}).execute().data
    assert isinstance(rows, list) and len(rows) == 1, rows
    return dict(rows[0])


def holder(stack: StackProcess, ticket_id: str) -> str | None:
    rows = sql(stack.db_url, "select assignee_id::text from tickets where id = %s", ticket_id)
    return rows[0][0] if rows else None


def test_two_agents_taking_at_once_one_wins_and_the_other_is_told(stack: StackProcess, users: Users, as_: As) -> None:
    for round_ in range(5):
        tid = seed_ticket(stack.db_url, users.customer, None, f"race {round_}")
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(take, [as_, as_], ["agent", "agent2"], [tid, tid]))
        outcomes = sorted(r["outcome"] for r in results)
        assert outcomes == ["lost", "taken"], results
        winner = next(r for r in results if r["outcome"] == "taken")
        loser = next(r for r in results if r["outcome"] == "lost")
        assert holder(stack, tid) == winner["assignee_id"] == loser["assignee_id"]
        assert loser["assignee_name"] in (users.agent.name, users.agent2.name)
        assert loser["assignee_name"] == (
            users.agent.name if winner["assignee_id"] == users.agent.id else users.agent2.name
        )


def test_take_is_idempotent_and_never_overrides(stack: StackProcess, users: Users, as_: As) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "mine, twice")
    assert take(as_, "agent", tid)["outcome"] == "taken"
    again = take(as_, "agent", tid)  # a resend after a lost answer
    assert again == {"outcome": "already_yours", "assignee_id": users.agent.id, "assignee_name": users.agent.name}
    # an admin's take does not hand the ticket over (that is an ordinary update); they are told who holds it
    assert take(as_, "admin", tid) == {
        "outcome": "lost",
        "assignee_id": users.agent.id,
        "assignee_name": users.agent.name,
    }
    assert holder(stack, tid) == users.agent.id


def test_customers_anon_and_the_service_key_cannot_take(stack: StackProcess, users: Users, as_: As) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "not yours to take")
    refused(lambda: as_("customer").rpc("take_ticket", {"ticket": tid}).execute())
    refused(lambda: as_("anon").rpc("take_ticket", {"ticket": tid}).execute())
    refused(lambda: as_("service").rpc("take_ticket", {"ticket": tid}).execute())  # no user: nobody to assign
    refused(
        lambda: as_("agent").rpc("take_ticket", {"ticket": "00000000-0000-4000-8000-000000000000"}).execute(),
        code="P0002",
    )
    assert holder(stack, tid) is None


async def started(engine: SyncEngine) -> SyncEngine:
    await engine.start()
    await wait_for(lambda: engine.status.state == "online", what="the engine online")
    return engine


async def test_engines_taking_at_once_one_wins_and_the_loser_gets_a_notice(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "grab it", messages=[(users.customer, "anyone?")])
    carol, dave = await engines.open(users.agent), await engines.open(users.agent2)
    await asyncio.gather(carol.sync_once(), dave.sync_once())
    carol.commands.take(tid)
    dave.commands.take(tid)
    await asyncio.gather(carol.sync_once(), dave.sync_once())
    winner_id = holder(stack, tid)
    assert winner_id in (users.agent.id, users.agent2.id)
    winner, loser = (carol, dave) if winner_id == users.agent.id else (dave, carol)
    winner_name = users.agent.name if winner is carol else users.agent2.name
    notices = [e for e in engines.log(loser) if isinstance(e, events.Notice) and e.ticket_id == tid]
    assert [n.kind for n in notices] == ["ticket_taken"], notices
    assert notices[0].text.startswith(f"{winner_name} took this ticket first")
    assert not [e for e in engines.log(winner) if isinstance(e, events.Notice) and e.ticket_id == tid]
    assert winner.cache.ticket(tid).assignee_id == winner_id  # type: ignore[union-attr]
    assert loser.status.pending == 0 and loser.status.failed == 0  # nothing left to retry: the server decided
    await loser.sync_once()
    assert loser.cache.ticket(tid) is None  # an agent no longer sees a colleague's ticket


async def test_a_take_with_other_changes_sends_them_after_winning(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "take and triage")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    agent.commands.take(tid)
    agent.commands.update_ticket(tid, priority="high", status="pending")
    await agent.sync_once()
    assert sql(stack.db_url, "select assignee_id::text, priority, status from tickets where id = %s", tid) == [
        (users.agent.id, "high", "pending")
    ]
    assert agent.cache.ticket(tid).local_state == "sent"  # type: ignore[union-attr]


async def test_only_staff_hear_who_views_which_ticket(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "who is on it")
    sockets: list[RawSocket] = []
    try:
        for token in (None, stack.mint(users.customer.id)):
            sock = await RawSocket.open(stack)
            sockets.append(sock)
            reply = await sock.join(
                "realtime:staff:viewers", {"private": True, "broadcast": {"self": False}}, token=token
            )
            assert reply["status"] == "error", reply
        # an agent may join but not send: a forged "viewing" never reaches anyone
        forger = await RawSocket.open(stack)
        sockets.append(forger)
        assert (
            await forger.join(
                "realtime:staff:viewers",
                {"private": True, "broadcast": {"self": False}},
                token=stack.mint(users.agent2.id),
            )
        )["status"] == "ok"
        agent = await started(await engines.open(users.agent))
        await agent.presence.watch_inbox()
        customer = await started(await engines.open(users.customer))
        await customer.presence.watch(tid)  # a customer's viewing stays on the ticket's own topic
        await forger.send(
            "realtime:staff:viewers",
            "broadcast",
            {
                "type": "broadcast",
                "event": "viewing",
                "payload": {"ticket_id": tid, "user_id": users.admin.id, "name": "Forged"},
            },
        )
        await forger.reply(await forger.send("phoenix", "heartbeat", {}))  # the send was taken in (or dropped)
        admin = await started(await engines.open(users.admin))
        await admin.presence.watch(tid)
        await wait_for(
            lambda: agent.presence.inbox_viewers(tid) == (users.admin.name,), what="the admin in the inbox row"
        )
        seen = [e for e in engines.log(agent) if isinstance(e, events.InboxViewersChanged) and e.ticket_id == tid]
        assert seen and all(e.viewers == (users.admin.name,) for e in seen)
        await admin.presence.unwatch(tid)
        await wait_for(lambda: agent.presence.inbox_viewers(tid) == (), what="the admin leaving")
    finally:
        for sock in sockets:
            await sock.close()
