"""A new message from someone else is drawn first and marked read a moment later (pages/workspace.py
``WorkspaceView._read_soon``), through NiceGUI's simulated `User` on the real stack, with fresh users and a ticket:

- while the page handles the new message, the read marker is not yet written (it used to be written and pushed
  in the same step, before NiceGUI could send the page its new bubble: bench e2e_latency's drawn → arrived);
- the marker still follows, in the cache and on the server (nothing is lost by deferring it).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from sync import events as sync_events
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import sql


def _server_marker(db_url: str, ticket_id: str, user_id: str) -> datetime | None:
    rows = sql(
        db_url, "select last_read_at from public.ticket_reads where ticket_id = %s and user_id = %s", ticket_id, user_id
    )
    return rows[0][0] if rows else None


def _later(marker: datetime | None, than: str) -> bool:
    return marker is not None and marker > datetime.fromisoformat(than)


async def test_a_new_message_is_drawn_before_it_is_marked_read(app_data: Path, stack: StackProcess) -> None:
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    stamp = time.time_ns()
    tid = seed_ticket(stack.db_url, customer, agent, f"Read soon {stamp}", [(agent, f"first {stamp}", False)])
    async with running_app() as user:
        await sign_in(user, customer)
        await user.open(f"/?t={tid}")
        await user.should_see(f"first {stamp}", retries=WAIT)
        engine = engine_of(user)
        # opening marked the ticket read; wait until that marker is on the server and nothing is left to push
        await eventually(lambda: _server_marker(stack.db_url, tid, customer.id) is not None, "the first marker", 60)
        await eventually(lambda: not engine.cache.outbox(), "an empty outbox", 60)
        before = engine.cache.read_marker(tid, customer.id)
        assert before is not None

        at_event: list[str | None] = []

        def watch(event: sync_events.Event) -> None:  # subscribed after the page, so it runs after its handler
            if isinstance(event, sync_events.MessagesChanged) and event.ticket_id == tid and event.new_from_others:
                at_event.append(engine.cache.read_marker(tid, customer.id))

        unsubscribe = engine.subscribe(watch)
        try:
            sql(
                stack.db_url,
                "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                tid,
                agent.id,
                f"reply {stamp}",
            )
            await eventually(lambda: bubble_with(user, f"reply {stamp}") is not None, "the agent's reply", 60)
            await eventually(lambda: bool(at_event), "the page's new-message event", 60)
        finally:
            unsubscribe()
        assert at_event[0] == before  # not marked in the step that drew the bubble
        await eventually(lambda: (engine.cache.read_marker(tid, customer.id) or "") > before, "the new marker", 60)
        await eventually(
            lambda: _later(_server_marker(stack.db_url, tid, customer.id), before), "the marker pushed", 60
        )
