"""A "typing" signal that arrives after the message it was about is stale (migration 20261202000500).

The signal names the signaller's newest message in the ticket (``after``); the receiving engine drops a
signal whose ``after`` is older than a message of that person it already holds. Real stack, two engines,
fresh users (so the first syncs stay short however late in the suite this runs).
"""

from __future__ import annotations

import uuid

import pytest

from sync import SyncEngine, events
from sync.decisions import canonical_ts
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for

pytestmark = pytest.mark.timeout(120)


async def started(engine: SyncEngine) -> SyncEngine:
    await engine.start()
    await wait_for(lambda: engine.status.state == "online", what="the engine online")
    return engine


def typing_from(engines: EngineFactory, engine: SyncEngine, user_id: str) -> int:
    return sum(1 for e in engines.log(engine) if isinstance(e, events.Typing) and e.user_id == user_id)


async def test_a_typing_signal_older_than_the_message_is_dropped(stack: StackProcess, engines: EngineFactory) -> None:
    customer_user, agent_user = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    tid = seed_ticket(stack.db_url, customer_user, agent_user, "Typing order")
    agent = await started(await engines.open(agent_user))
    customer = await started(await engines.open(customer_user))
    await wait_for(lambda: agent.cache.ticket(tid) is not None and customer.cache.ticket(tid) is not None)
    await agent.presence.watch(tid)
    await customer.presence.watch(tid)
    me = {"user_id": customer_user.id, "name": customer_user.name}

    # typing before any message: the signal names none, and the agent shows it
    await customer.presence.send_typing(tid)
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 1, what="the first typing signal")

    first = customer.commands.send_message(tid, "first question")
    await wait_for(lambda: agent.cache.message(first.id) is not None, what="the message at the agent")
    # the server carries what the client said it typed after
    assert customer.cache.latest_message_from(tid, customer_user.id) == first.id

    # a signal sent before that message but delivered after it (what a race between the two requests does):
    # the agent holds a newer message from the customer, so it is dropped
    await customer.remote.live.typing(tid, me, None)
    # ... and a signal sent after it, naming it, is shown; signals of one topic arrive in commit order, so
    # once this one is in, the stale one has been heard and judged
    await customer.remote.live.typing(tid, me, first.id)
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 2, what="the fresh typing signal")

    # a second message, then a signal naming the first: stale again
    second = customer.commands.send_message(tid, "second question")
    await wait_for(lambda: agent.cache.message(second.id) is not None, what="the second message")
    await customer.remote.live.typing(tid, me, first.id)
    # a message the agent does not hold (newer, or an internal note it could not read): fresh
    await customer.remote.live.typing(tid, me, str(uuid.uuid4()))
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 3, what="the signal after an unknown id")
    # the engine's own throttled signal names the newest message, so it is fresh
    customer.presence.stop_typing(tid)
    await customer.presence.send_typing(tid)
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 4, what="the engine's own signal")
    # each signal carries the server's clock when it was minted, canonical like the messages' own stamps, so
    # the pane can tell the message being typed (written later) from an older one re-synced (state.TypingState)
    *_, last = [e for e in engines.log(agent) if isinstance(e, events.Typing) and e.user_id == customer_user.id]
    written = agent.cache.message(second.id)
    assert written is not None and last.at is not None and canonical_ts(last.at) == last.at
    assert canonical_ts(written.created_at) < last.at
    # ... and when the message it names was written, as the agent holds it, so the message typed next ends the
    # indicator even when the server minted the signal after it
    assert last.after_at == canonical_ts(written.created_at)


async def test_a_device_in_its_first_sync_is_heard_though_it_lacks_its_own_message(
    stack: StackProcess, engines: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its cache may not hold its user's newest message yet (written on another device a moment ago): a
    signal naming an older one (or none) would be judged stale by a receiver that holds it, for up to
    STALE_WINDOW, so such a device names no message at all (migration 20261206000010)."""
    customer_user, agent_user = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    tid = seed_ticket(stack.db_url, customer_user, agent_user, "First sync typing")
    agent = await started(await engines.open(agent_user))
    customer = await started(await engines.open(customer_user))
    await wait_for(lambda: agent.cache.ticket(tid) is not None and customer.cache.ticket(tid) is not None)
    await agent.presence.watch(tid)
    await customer.presence.watch(tid)
    sent = customer.commands.send_message(tid, "written on my phone")
    await wait_for(lambda: agent.cache.message(sent.id) is not None, what="the message at the agent")
    before = typing_from(engines, agent, customer_user.id)
    # this device's cache lacks the message (as a device in its first sync would)
    monkeypatch.setattr(customer.cache, "latest_message_from", lambda ticket_id, sender_id: None)
    monkeypatch.setattr(customer.cache, "initial_sync_done", lambda: True)
    await customer.presence.send_typing(tid)  # believing its cache complete, it names none: judged stale
    customer.presence.stop_typing(tid)
    monkeypatch.setattr(customer.cache, "initial_sync_done", lambda: False)
    await customer.presence.send_typing(tid)  # in its first sync: it names no message, and is heard
    # signals of one topic arrive in commit order: once the second is in, the first was heard and dropped
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == before + 1, what="the signal heard")
    assert typing_from(engines, agent, customer_user.id) == before + 1


async def test_the_two_argument_signal_still_works_and_the_after_id_reveals_nothing(
    stack: StackProcess, engines: EngineFactory
) -> None:
    """Older clients call ``ticket_signal(ticket_id, signal)``; the id in ``after`` is passed through as the
    signaller's own hint, never looked up: naming another ticket's message reads nothing and fails nothing,
    and only who may join the ticket's topic may signal on it at all."""
    customer_user, agent_user = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    stranger = create_user(stack.db_url, "customer")
    tid = seed_ticket(stack.db_url, customer_user, agent_user, "Old client")
    other = seed_ticket(stack.db_url, stranger, None, "Not yours", messages=[(stranger, "secret")])
    (secret_id,) = sql(stack.db_url, "select id::text from messages where ticket_id = %s", other)[0]
    agent = await started(await engines.open(agent_user))
    await wait_for(lambda: agent.cache.ticket(tid) is not None)
    await agent.presence.watch(tid)
    customer = await engines.open(customer_user)
    client = await customer.remote.client()
    await client.rpc("ticket_signal", {"ticket_id": tid, "signal": "typing"}).execute()
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 1, what="the two-argument signal")
    await client.rpc("ticket_signal", {"ticket_id": tid, "signal": "typing", "after": secret_id}).execute()
    await wait_for(lambda: typing_from(engines, agent, customer_user.id) == 2, what="a signal naming a foreign id")
    # the stranger may not signal on the customer's ticket, with or without an id
    intruder = await engines.open(stranger)
    intruder_client = await intruder.remote.client()
    for args in ({"ticket_id": tid, "signal": "typing"}, {"ticket_id": tid, "signal": "typing", "after": secret_id}):
        with pytest.raises(Exception, match="may not signal"):
            await intruder_client.rpc("ticket_signal", args).execute()
    # anon may not call either overload
    rows = sql(
        stack.db_url,
        "select p.pronargs, has_function_privilege('anon', p.oid, 'execute'),"
        " has_function_privilege('authenticated', p.oid, 'execute') from pg_proc p"
        " where p.proname = 'ticket_signal' and p.pronamespace = 'public'::regnamespace order by p.pronargs",
    )
    assert rows == [(2, False, True), (3, False, True)]
