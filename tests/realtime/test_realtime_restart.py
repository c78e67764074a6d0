"""Reconnect after the server restarts: realtime-py's socket reconnects, the channel rejoins, and changes flow
again. Uses a stack of its own (module scope) so restarting it does not disturb the shared session stack."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import create_user
from tests.realtime.support import listen, new_ticket, post, wait_until, with_token
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    proc = StackProcess(tmp_path_factory.mktemp("realtime-restart") / "data")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_reconnect_after_server_restart(own_stack: StackProcess) -> None:
    customer = create_user(own_stack.db_url, "customer")
    agent = create_user(own_stack.db_url, "agent")
    ticket = new_ticket(own_stack.db_url, customer, agent)
    sb = await with_token(own_stack, own_stack.mint(sub=customer.id), max_retries=40, initial_backoff=0.5)
    got = await listen(sb, "restart", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"})
    post(own_stack.db_url, agent, ticket, "before restart")
    await got.wait_content("before restart")

    await asyncio.to_thread(own_stack.restart)
    # the client notices, reconnects with backoff, rejoins, and the server says it is live again
    await wait_until(lambda: len(got.systems) >= 2, timeout=60, what="resubscribed after restart")
    assert got.systems[-1].message == "Subscribed to PostgreSQL"
    assert any(s.value == "CHANNEL_ERROR" for s, _ in got.states)  # the outage was visible to the app
    post(own_stack.db_url, agent, ticket, "after restart")
    await got.wait_content("after restart", timeout=10)
    assert got.contents() == ["before restart", "after restart"]


async def test_capture_restart_tells_subscribers_so_they_rejoin_and_catch_up(own_stack: StackProcess) -> None:
    """Regression: when the capture's database session died (its temporary slot with it), the capture
    restarted on a new slot and the channels stayed "live": changes committed in between were never
    delivered and no client was told. Now each live channel gets a postgres_changes error (the client
    reports CHANNEL_ERROR and rejoins, which is when the sync engine runs its catch-up pull)."""
    import psycopg

    customer = create_user(own_stack.db_url, "customer")
    agent = create_user(own_stack.db_url, "agent")
    ticket = new_ticket(own_stack.db_url, customer, agent)
    sb = await with_token(own_stack, own_stack.mint(sub=customer.id))
    got = await listen(
        sb, "capture-restart", {"event": "INSERT", "table": "messages", "filter": f"ticket_id=eq.{ticket}"}
    )
    with psycopg.connect(own_stack.db_url, autocommit=True) as conn:
        killed = conn.execute(
            "select pg_terminate_backend(active_pid) from pg_replication_slots"
            " where slot_name like 'localbase_realtime_%' and active_pid is not null"
        ).fetchall()
    assert killed == [(True,)]
    await wait_until(
        lambda: any(s.value == "CHANNEL_ERROR" for s, _ in got.states),
        timeout=15,
        what="the capture restart reported to the subscriber",
    )
    await wait_until(
        lambda: got.systems[-1].message == "Subscribed to PostgreSQL" and len(got.systems) >= 2,
        timeout=30,
        what="resubscribed after the capture restart",
    )
    post(own_stack.db_url, agent, ticket, "after capture restart")
    await got.wait_content("after capture restart", timeout=10)
