"""Integration tests of the sync engine against a real localbase, through supabase-py, with the
network cut by tests/faultproxy.py: offline queues, lost responses, resets, stalls, RLS refusals,
backfill and pruning, offline ticket-update conflicts, sessions and status.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sync import AuthError, RetryableError, SyncEngine, events
from sync.clock import Clock
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import (
    EngineFactory,
    seed_ticket,
    server_messages,
    sql,
    wait_for,
)


async def test_initial_pull_reads_unread_search_and_read_marker(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        "Printer on fire",
        messages=[(users.customer, "it is smoking"), (users.customer, "now flames"), (users.agent, "checking")],
    )
    agent = await engines.open(users.agent)
    await agent.sync_once()
    progress = [e.status.progress for e in engines.log(agent) if isinstance(e, events.StatusChanged)]
    # per row, of the server's count (sync_count): from 0 up to 1, never back, then gone
    shown = [p for p in progress if p is not None]
    assert shown[0] == 0.0 and shown[-1] == 1.0 and shown == sorted(shown) and agent.status.progress is None
    assert any(0 < p < 1 for p in shown)
    assert any(isinstance(e, events.SyncProgress) and e.phase == "messages" for e in engines.log(agent))
    mine = [t for t in agent.cache.inbox("mine", limit=5000) if t.id == tid]  # the shared stack has others' tickets
    assert mine and mine[0].unread_count == 2 and mine[0].last_message_preview == "checking"
    assert mine[0].customer_name == users.customer.name and mine[0].assignee_name == users.agent.name
    assert [m.content for m in agent.cache.thread(tid)] == ["it is smoking", "now flames", "checking"]
    assert [m.content for m in agent.cache.thread(tid, limit=1)] == ["checking"]
    first, _ = agent.cache.thread(tid, limit=2)
    assert [m.content for m in agent.cache.thread(tid, before=(first.created_at, first.id))] == ["it is smoking"]
    assert agent.cache.count_thread(tid) == 3
    assert {h.ticket_id for h in agent.cache.search("flames")} == {tid}
    assert any(h.message_id is None for h in agent.cache.search("printer"))
    agent.commands.mark_read(tid)
    await agent.sync_once()
    assert agent.cache.ticket(tid).unread_count == 0  # type: ignore[union-attr]
    assert sql(
        stack.db_url, "select count(*) from ticket_reads where ticket_id = %s and user_id = %s", tid, users.agent.id
    ) == [(1,)]
    # the customer's cache sees the agent's read marker ("seen")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert customer.cache.read_marker(tid, users.agent.id) is not None
    assert users.agent.id in customer.cache.profiles()


async def test_offline_queue_arrives_exactly_once_after_reconnect(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Offline replies")
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    proxy.set_mode("drop")
    sent = [agent.commands.send_message(tid, f"offline reply {i}") for i in range(5)]
    assert agent.status.pending == 5 and all(m.local_state == "pending" for m in sent)
    agent.loop.poll_interval = 3600  # only the retry timer / reconnect may bring it back
    await agent.start()
    await wait_for(lambda: agent.status.state == "offline", what="offline status")
    assert agent.status.pending == 5 and agent.status.last_error
    await asyncio.sleep(1.0)
    proxy.set_mode("pass")
    await wait_for(
        lambda: agent.status.pending == 0 and agent.status.state == "online",
        timeout=40,
        what="the outbox to drain after reconnect",
    )
    ids = [m.id for m in sent]
    rows = server_messages(stack.db_url, ids)
    assert sorted(c for _, c in rows) == sorted(f"offline reply {i}" for i in range(5))
    assert len(rows) == 5
    assert all(m.local_state == "sent" for m in agent.cache.thread(tid))


async def test_committed_request_whose_response_was_lost_does_not_duplicate(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Lost response")
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    msgs = [agent.commands.send_message(tid, f"lost-{i}") for i in range(3)]
    rule = proxy.lose_response(b"POST /rest/v1/messages")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert rule.hits == 1
    ids = [m.id for m in msgs]
    assert len(server_messages(stack.db_url, ids)) == 3  # the server committed them
    assert agent.status.pending == 3  # but the client never heard so
    await agent.sync_once()
    assert agent.status.pending == 0
    assert sql(stack.db_url, "select count(*) from messages where ticket_id = %s", tid) == [(3,)]
    assert [m.local_state for m in agent.cache.thread(tid)] == ["sent"] * 3


async def test_reset_mid_request_then_retry_delivers_once(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Reset")
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    msg = agent.commands.send_message(tid, "x" * 5000)  # big enough that half a request is an unfinished body
    rule = proxy.reset_request(b"POST /rest/v1/messages")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert rule.hits == 1
    assert server_messages(stack.db_url, [msg.id]) == []
    await agent.sync_once()
    assert len(server_messages(stack.db_url, [msg.id])) == 1
    assert agent.status.pending == 0


async def test_stalled_network_times_out_as_retryable(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Stall")
    agent = await engines.open(users.agent, url=proxy.url, timeout=1.0)
    await agent.sync_once()
    msg = agent.commands.send_message(tid, "through the stall")
    proxy.set_mode("stall")
    started = time.monotonic()
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert time.monotonic() - started < 10
    proxy.set_mode("pass")
    proxy.cut()  # the stalled connections are dead to the client anyway
    await agent.sync_once()
    assert len(server_messages(stack.db_url, [msg.id])) == 1


async def test_rls_refused_message_fails_with_reason_while_the_rest_go(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    keep = seed_ticket(stack.db_url, users.customer, users.agent, "Still mine")
    moved = seed_ticket(stack.db_url, users.customer, users.agent, "Reassigned while offline")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    m1 = agent.commands.send_message(keep, "one")
    bad = agent.commands.send_message(moved, "to a ticket I lost")
    m3 = agent.commands.send_message(keep, "three")
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent2.id, moved)
    await agent.sync_once()
    assert len(server_messages(stack.db_url, [m1.id, m3.id])) == 2
    assert server_messages(stack.db_url, [bad.id]) == []
    failed = agent.cache.message(bad.id)
    assert failed is not None and failed.local_state == "failed"
    assert failed.error and "row-level security" in failed.error
    assert agent.status.failed == 1 and agent.status.pending == 0
    notices = [e for e in engines.log(agent) if isinstance(e, events.Notice)]
    assert any(n.kind == "message_failed" and n.ticket_id == moved for n in notices)
    # the failed message keeps its ticket visible locally until the user decides
    assert agent.cache.ticket(moved) is not None
    agent.commands.retry(bad.id)
    await agent.sync_once()
    assert agent.cache.message(bad.id).local_state == "failed"  # type: ignore[union-attr]
    agent.commands.discard(bad.id)
    await agent.sync_once()
    assert agent.cache.message(bad.id) is None and agent.cache.ticket(moved) is None  # pruned: no longer visible
    assert agent.status.failed == 0


async def test_customer_message_to_a_closed_ticket_is_refused(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer2, None, "Closing soon")
    other = seed_ticket(stack.db_url, users.customer2, None, "Still open")
    customer = await engines.open(users.customer2)
    await customer.sync_once()
    closed_msg = customer.commands.send_message(tid, "one more thing")
    ok_msg = customer.commands.send_message(other, "fine here")
    sql(stack.db_url, "update tickets set status = 'closed' where id = %s", tid)
    await customer.sync_once()
    assert customer.cache.message(closed_msg.id).local_state == "failed"  # type: ignore[union-attr]
    assert customer.cache.message(ok_msg.id).local_state == "sent"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="internal"):
        customer.commands.send_message(other, "secret", internal=True)
    with pytest.raises(ValueError, match="empty"):
        customer.commands.send_message(other, "  ")


async def test_ticket_reassigned_to_me_backfills_and_reassigned_away_leaves(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    agent = await engines.open(users.agent)
    await agent.sync_once()
    theirs = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent2,
        "Was agent2's",
        messages=[(users.customer, "old 1"), (users.agent2, "old 2")],
    )
    # invisible rows never move a cursor: a later visible message must, or the plain pull would bring
    # the thread and this test would pass without any backfill
    seed_ticket(stack.db_url, users.customer, users.agent, "Moves the cursor", messages=[(users.customer, "hi")])
    await agent.sync_once()  # the messages cursor is now past the thread below
    assert agent.cache.ticket(theirs) is None
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent.id, theirs)
    await agent.sync_once()
    assert [m.content for m in agent.cache.thread(theirs)] == ["old 1", "old 2"]
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent2.id, theirs)
    await agent.sync_once()
    assert agent.cache.ticket(theirs) is None and agent.cache.thread(theirs) == []
    assert any(isinstance(e, events.TicketsRemoved) and theirs in e.ticket_ids for e in engines.log(agent))


async def test_offline_ticket_update_server_state_wins_and_agent_is_told(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Conflict")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    local_view = agent.commands.update_ticket(tid, status="pending", priority="high")
    assert (local_view.status, local_view.priority, local_view.local_state) == ("pending", "high", "pending")
    sql(stack.db_url, "update tickets set priority = 'urgent' where id = %s", tid)  # someone else, meanwhile
    await agent.sync_once()
    assert sql(stack.db_url, "select status, priority from tickets where id = %s", tid) == [("pending", "urgent")]
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and (ticket.status, ticket.priority, ticket.local_state) == ("pending", "urgent", "sent")
    notices = [e for e in engines.log(agent) if isinstance(e, events.Notice) and e.kind == "ticket_update_overruled"]
    assert notices and "priority is urgent" in notices[0].text


async def test_take_and_release_and_refused_assignment(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, None, "Up for grabs")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    assert any(t.id == tid for t in agent.cache.inbox("unassigned", limit=5000))
    agent.commands.take(tid)
    await agent.sync_once()
    assert sql(stack.db_url, "select assignee_id::text from tickets where id = %s", tid) == [(users.agent.id,)]
    # an agent cannot hand a ticket to someone else: refused by the server, shown as failed
    agent.commands.update_ticket(tid, assignee_id=users.agent2.id)
    await agent.sync_once()
    ticket = agent.cache.ticket(tid)
    assert ticket is not None and ticket.local_state == "failed" and ticket.error
    assert ticket.assignee_id == users.agent.id  # the cache shows the server's truth again
    assert agent.status.failed == 0 and agent.status.pending == 0  # nothing left to retry: the server won
    assert any(isinstance(e, events.Notice) and e.kind == "ticket_update_refused" for e in engines.log(agent))
    agent.commands.release(tid)
    await agent.sync_once()
    assert sql(stack.db_url, "select assignee_id::text from tickets where id = %s", tid) == [(None,)]


async def test_customer_creates_ticket_offline_and_it_arrives(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    customer = await engines.open(users.customer, url=proxy.url)
    await customer.sync_once()
    proxy.set_mode("drop")
    ticket = customer.commands.create_ticket("Created on a train", "no network here", priority="high")
    follow = customer.commands.send_message(ticket.id, "and a follow-up")
    assert ticket.id in {t.id for t in customer.cache.inbox(limit=5000)} and customer.cache.count_thread(ticket.id) == 2
    with pytest.raises(RetryableError):
        await customer.sync_once()
    proxy.set_mode("pass")
    await customer.sync_once()
    assert sql(stack.db_url, "select subject, priority, customer_id::text from tickets where id = %s", ticket.id) == [
        ("Created on a train", "high", users.customer.id)
    ]
    assert len(server_messages(stack.db_url, [follow.id])) == 1
    assert customer.cache.ticket(ticket.id).local_state == "sent"  # type: ignore[union-attr]


async def test_expired_token_is_refreshed_and_refused_refresh_needs_sign_in(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Auth")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    session = agent.session
    assert session is not None
    # an hour later by the engine's clock the access token has expired: the round refreshes first,
    # with a rotated refresh token
    agent.account.clock = Clock(wall=lambda: time.time() + 3600)
    await agent.sync_once()
    assert agent.session is not None and agent.session.refresh_token != session.refresh_token
    # the server revokes every session: the next refresh is refused → needs-sign-in, outbox kept
    sql(stack.db_url, "delete from auth.sessions where user_id = %s", users.agent.id)
    sql(stack.db_url, "delete from auth.refresh_tokens where user_id = %s", users.agent.id)
    queued = agent.commands.send_message(tid, "written while signed out")
    await agent.start()
    await wait_for(lambda: agent.status.state == "needs-sign-in", what="needs-sign-in")
    assert agent.status.pending == 1 and agent.user is not None
    # the same user signs in again: same cache, the loop resumes by itself, the queued message goes out
    await agent.sign_in(users.agent.email, users.agent.password)
    await wait_for(lambda: agent.status.pending == 0 and agent.status.state == "online", what="resume")
    assert len(server_messages(stack.db_url, [queued.id])) == 1


async def test_sign_in_errors_are_plain(stack: StackProcess, users: Users, engines: EngineFactory) -> None:
    engine = await engines.open()
    with pytest.raises(AuthError, match="wrong email or password"):
        await engine.sign_in(users.agent.email, "not-the-password")
    with pytest.raises(AuthError):
        engine.cache.inbox()


async def test_restart_offline_with_cached_session_then_sign_out_offline(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    tid = seed_ticket(
        stack.db_url, users.customer, users.agent, "Works offline", messages=[(users.customer, "are you there?")]
    )
    data_dir = tmp_path / "restart"
    first = await engines.open(users.agent, url=proxy.url, data_dir=data_dir)
    await first.sync_once()
    await first.close()
    proxy.set_mode("drop")
    again = await engines.open(url=proxy.url, data_dir=data_dir)
    assert again.user is not None and again.user.id == users.agent.id  # restored with no network
    assert [m.content for m in again.cache.thread(tid)] == ["are you there?"]
    again.commands.send_message(tid, "queued offline after restart")
    await again.start()
    await wait_for(lambda: again.status.state == "offline", what="offline")
    assert again.user is not None and again.status.pending == 1  # expired/unreachable never signs out
    cache = again.cache_path(users.agent.id)
    assert cache.exists() and (cache.stat().st_mode & 0o777) == 0o600
    session_files = list(data_dir.glob("session-*.json"))
    assert session_files and all((p.stat().st_mode & 0o777) == 0o600 for p in session_files)
    await again.sign_out()
    assert again.user is None and not cache.exists() and not list(data_dir.glob("session-*.json"))
    reopened = await SyncEngine.open(again.config, data_dir)
    try:
        assert reopened.user is None
    finally:
        await reopened.close()


async def test_two_processes_of_one_user_share_refreshed_sessions(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    """Regression: refresh tokens rotate, so the app and the CLI on one data dir must not refresh
    with a token the other one already used (that would sign the user out)."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Two processes")
    data_dir = tmp_path / "shared"
    app = await engines.open(users.agent, data_dir=data_dir)
    cli = await engines.open(data_dir=data_dir)
    assert cli.user is not None and cli.user.id == users.agent.id
    for engine in (app, cli):  # an hour later for both: their access tokens have expired
        engine.account.clock = Clock(wall=lambda: time.time() + 3600)
    await app.sync_once()  # refreshes and saves the rotated token
    await app.sync_once()  # and once more (still expired by its clock): the cli's token is two rotations behind
    # past the server's reuse grace window, replaying the spent token would revoke the whole session
    sql(
        stack.db_url,
        "update auth.refresh_tokens set updated_at = now() - interval '1 hour' where user_id = %s and revoked",
        users.agent.id,
    )
    msg = cli.commands.send_message(tid, "from the second process")
    await cli.sync_once()  # must adopt the saved session instead of reusing the spent refresh token
    assert cli.status.state == "online" and cli.status.pending == 0
    assert len(server_messages(stack.db_url, [msg.id])) == 1


async def test_a_401_mid_session_refreshes_and_retries(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """The server rejects the access token although the client thinks it is valid (clock skew,
    revoked key): PGRST303 → refresh → the same push succeeds, nothing is lost or failed."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Mid-session 401")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    expired = stack.mint(users.agent.id, ttl=-30, email=users.agent.email)
    before = agent.session
    assert before is not None
    await agent.remote.use_token(expired)  # the engine's session still says the token is good
    msg = agent.commands.send_message(tid, "survives a 401")
    await agent.sync_once()
    assert len(server_messages(stack.db_url, [msg.id])) == 1
    # refreshed: the refresh token rotated and the expired access token is gone (a new access token minted in
    # the same second as the old one carries the same claims, so it may equal `before.access_token`)
    assert agent.session is not None and agent.session.access_token != expired
    assert agent.session.refresh_token != before.refresh_token
    assert agent.status.state == "online" and agent.status.failed == 0


async def test_lost_response_then_ticket_closed_is_sent_not_failed(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    """Regression: the insert committed but its response was lost, then the agent closed the ticket; the
    resend fails RLS (customers cannot write to closed tickets) although the server has the message. It
    must end `sent`, not `failed` with a refusal the user can neither retry nor discard."""
    tid = seed_ticket(stack.db_url, users.customer2, None, "Closed after a lost response")
    customer = await engines.open(users.customer2, url=proxy.url)
    await customer.sync_once()
    msg = customer.commands.send_message(tid, "thanks, that fixed it")
    rule = proxy.lose_response(b"POST /rest/v1/messages")
    with pytest.raises(RetryableError):
        await customer.sync_once()
    assert rule.hits == 1 and len(server_messages(stack.db_url, [msg.id])) == 1
    sql(stack.db_url, "update tickets set status = 'closed' where id = %s", tid)
    await customer.sync_once()
    assert customer.cache.message(msg.id).local_state == "sent"  # type: ignore[union-attr]
    assert customer.status.failed == 0 and customer.status.pending == 0
    assert not any(isinstance(e, events.Notice) and e.kind == "message_failed" for e in engines.log(customer))
    assert len(server_messages(stack.db_url, [msg.id])) == 1


async def test_ticket_whose_offline_update_was_refused_still_leaves_when_reassigned_away(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """Regression: a refused ticket update marks the ticket `failed`, and pruning only looked at
    `sent` tickets, so a ticket reassigned away while the agent changed it offline stayed in the
    agent's cache, thread included, for good."""
    tid = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        "Reassigned while offline",
        messages=[(users.customer, "private details")],
    )
    agent = await engines.open(users.agent)
    await agent.sync_once()
    assert agent.cache.ticket(tid) is not None
    agent.commands.update_ticket(tid, status="pending")
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent2.id, tid)
    await agent.sync_once()
    assert any(isinstance(e, events.Notice) and e.kind == "ticket_update_refused" for e in engines.log(agent))
    await agent.sync_once()
    assert agent.cache.ticket(tid) is None and agent.cache.thread(tid) == []
    assert agent.status.pending == 0 and agent.status.failed == 0


async def test_backfill_cut_by_the_network_is_resumed_by_the_next_pull(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    """Regression: a ticket that became visible was noted for backfill only in memory, after its row
    and the tickets cursor were committed; if the backfill request failed, the next pull saw the ticket
    as already known and its older thread never arrived."""
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "Mine")
    agent = await engines.open(users.agent, url=proxy.url)
    theirs = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent2,
        "Backfill cut",
        messages=[(users.customer, "older 1"), (users.agent2, "older 2")],
    )
    # a later message the agent sees moves its messages cursor past the thread it cannot see yet
    sql(
        stack.db_url,
        "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'later')",
        mine,
        users.customer.id,
    )
    await agent.sync_once()
    assert agent.cache.ticket(theirs) is None and agent.cache.thread(mine)
    sql(stack.db_url, "update tickets set assignee_id = %s where id = %s", users.agent.id, theirs)
    rule = proxy.reset_request(b"GET /rest/v1/messages")  # the thread backfill (pulls are POST /rpc)
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert rule.hits == 1 and agent.cache.ticket(theirs) is not None
    await agent.sync_once()
    assert [m.content for m in agent.cache.thread(theirs)] == ["older 1", "older 2"]
