"""Taking a ticket and changing it on the sync engine's ``FakeRemote`` (tests/fakes.py): a take goes through
the server's take (``rpc take_ticket``), the loser is told who won, and a change made while its ticket update
is in flight is not lost (regression: "take, then change the status" dropped the status)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync import events
from tests.test_sync_loop import World, world

uses_world = world


async def test_a_lost_take_names_the_winner_and_leaves_nothing_to_retry(world: World) -> None:
    rival = world.server.add_user("agent", "Rita Rival")
    tid = world.server.add_ticket(world.customer, None)
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.take(tid)
    world.server.tables["tickets"][tid] |= {"assignee_id": rival.id}  # the rival was first
    await agent.sync_once()
    assert "take ticket" in world.server.calls
    notices = [e for e in log if isinstance(e, events.Notice)]
    assert [(n.kind, n.text) for n in notices] == [
        ("ticket_taken", "Rita Rival took this ticket first; it is theirs now.")
    ]
    assert agent.status.pending == 0 and agent.status.failed == 0
    assert world.server.tables["tickets"][tid]["assignee_id"] == rival.id


async def test_a_change_made_while_a_take_is_in_flight_is_sent_after_it(world: World) -> None:
    tid = world.server.add_ticket(world.customer, None)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.take(tid)
    real = world.server.take_ticket

    async def take_while_the_agent_acts(ticket_id: str) -> dict[str, Any]:
        answer = await real(ticket_id)
        agent.commands.update_ticket(tid, status="pending")  # folded into the entry being sent
        return answer

    world.server.take_ticket = take_while_the_agent_acts  # type: ignore[method-assign]
    await agent.sync_once()
    await agent.sync_once()
    row = world.server.tables["tickets"][tid]
    assert (row["assignee_id"], row["status"]) == (world.agent.id, "pending")
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and (ticket.status, ticket.local_state) == ("pending", "sent")


async def test_a_change_made_while_an_update_is_in_flight_is_sent_after_it(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    agent.commands.update_ticket(tid, priority="high")
    real = world.server.update_ticket

    async def update_while_the_agent_acts(
        ticket_id: str, changes: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        rows = await real(ticket_id, changes, expect)
        if changes.get("priority") == "high":
            agent.commands.update_ticket(tid, status="pending", priority="urgent")
        return rows

    world.server.update_ticket = update_while_the_agent_acts  # type: ignore[method-assign]
    await agent.sync_once()
    await agent.sync_once()
    row = world.server.tables["tickets"][tid]
    assert (row["priority"], row["status"]) == ("urgent", "pending")
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and (ticket.status, ticket.priority, ticket.local_state) == ("pending", "urgent", "sent")
