"""rt17: a ticket channel the server refuses (the agent lost access to the ticket) was joined again by realtime-py on
its own timer (after 1, 2, 5, then every 10 s) for good. Against the real localbase realtime, which refuses a private
channel through RLS on realtime.messages as Supabase does: the agent's app goes through tests/faultproxy.py, which
counts the ``phx_join`` frames the server was sent for the ticket's topic.

The channel is left at the refusal, the ticket shows nobody viewing, and it is joined again once per event that
may bring access back (a token refresh, the ticket coming back), never on a timer; with access back, presence and
typing work on it again.
"""

from __future__ import annotations

import asyncio

import pytest

from sync import SyncEngine, events
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for
from tests.test_ticket_channels import started

pytestmark = pytest.mark.timeout(120)

WINDOW_S = 15.0  # how long the joins are watched: the package's timer joins again after 1, 2, 5 and 10 s


def presence_of(engines: EngineFactory, engine: SyncEngine, ticket_id: str) -> list[tuple[str, ...]]:
    """Who the engine said views the ticket, each time it said it."""
    log = engines.log(engine)
    return [e.viewers for e in log if isinstance(e, events.PresenceChanged) and e.ticket_id == ticket_id]


async def test_a_refused_ticket_channel_is_left_and_joined_again_only_when_access_may_be_back(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Reassigned away and back")

    def joins() -> int:
        return proxy.ws_sent(b'"phx_join"', f'"realtime:ticket:{tid}"'.encode())

    agent = await started(await engines.open(users.agent, url=proxy.url))
    customer = await started(await engines.open(users.customer))
    await customer.presence.watch(tid)
    await agent.presence.watch(tid)
    await wait_for(
        lambda: users.customer.name in (presence_of(engines, agent, tid) or [()])[-1], what="the agent seeing them"
    )
    assert joins() == 1

    # the ticket reassigned away; the agent's next token is checked against the channel: the server shuts it
    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", users.agent2.id, tid)
    await agent.account.refresh()
    await wait_for(
        lambda: presence_of(engines, agent, tid)[-1] == () or joins() > 1, what="the server refusing the channel"
    )
    refused_at = joins()
    # an observation window, not a synchronisation: nothing the agent's app does may join the topic meanwhile
    await asyncio.sleep(WINDOW_S)
    assert joins() == refused_at == 1, f"{joins() - 1} joins of a refused channel in {WINDOW_S:.0f} s"
    assert presence_of(engines, agent, tid)[-1] == (), "a refused ticket shows nobody viewing"
    assert agent.status.state == "online"  # nothing alarming: the app itself is fine

    # a token refresh may bring access: one join, refused again (access is still gone), and no more
    refusals = presence_of(engines, agent, tid).count(())
    await agent.account.refresh()
    await wait_for(lambda: presence_of(engines, agent, tid).count(()) > refusals, what="the second refusal")
    assert joins() == 2

    # access back: the ticket's row comes to the agent (realtime, then the pull), and the channel is joined again
    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", users.agent.id, tid)
    await wait_for(
        lambda: users.customer.name in presence_of(engines, agent, tid)[-1], what="the agent seeing them again"
    )
    assert joins() >= 3
    typed = len([e for e in engines.log(agent) if isinstance(e, events.Typing) and e.ticket_id == tid])
    await customer.presence.send_typing(tid)
    await wait_for(
        lambda: len([e for e in engines.log(agent) if isinstance(e, events.Typing) and e.ticket_id == tid]) > typed,
        what="the customer's typing on the joined channel",
    )


async def test_a_ticket_the_agent_may_not_read_is_joined_once_and_again_when_it_comes_to_them(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    """The join itself refused (a ticket of another agent's opened, say from a link): one join, nobody shown viewing,
    no typing signal sent; assigned to the agent, the ticket comes to them in a pull and the channel is joined."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent2, "Someone else's")

    def joins() -> int:
        return proxy.ws_sent(b'"phx_join"', f'"realtime:ticket:{tid}"'.encode())

    agent = await started(await engines.open(users.agent, url=proxy.url))
    customer = await started(await engines.open(users.customer))
    await customer.presence.watch(tid)
    await agent.presence.watch(tid)  # the join's answer has come when it returns
    await agent.presence.send_typing(tid)
    # an observation window, not a synchronisation: nothing the agent's app does may join the topic meanwhile
    await asyncio.sleep(WINDOW_S)
    assert joins() == 1, f"{joins() - 1} joins of a refused channel in {WINDOW_S:.0f} s"
    assert presence_of(engines, agent, tid) == [()], "a refused ticket shows nobody viewing"
    # no signal either (the server refuses them as well): no "viewing" renewal, no "typing"
    assert not proxy.requested(b"/rpc/ticket_signal") and agent.status.state == "online"

    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", users.agent.id, tid)
    await wait_for(
        lambda: users.customer.name in presence_of(engines, agent, tid)[-1], what="the agent seeing them at last"
    )
    assert joins() >= 2
    await wait_for(lambda: proxy.requested(b"/rpc/ticket_signal") > 0, what="the agent's viewing signal")
