"""The collision guard through NiceGUI's simulated `User` on the real stack (issue 14, item 5): a reply that
would cross a message that landed while the agent was typing asks first (Review keeps the text, Send anyway
sends it once); a colleague viewing a ticket shows as an avatar on its inbox row; an agent who took a ticket
offline while a colleague took it online is told who was first."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.inbox import row_of
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    send,
    sign_in,
)


def say(db_url: str, ticket_id: str, sender_id: str, content: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
            (ticket_id, sender_id, content),
        )


def count(db_url: str, ticket_id: str, content: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from messages where ticket_id = %s and content = %s", (ticket_id, content)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_reply_crossing_a_new_message_asks_first(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Crossing {time.time_ns()}",
        [(users.customer, "My order is late", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "My order is late") is not None, "the thread")
        agent.find(marker="composer").type("Sorry about that, I will")  # typing starts here
        say(stack.db_url, ticket_id, users.customer.id, "Never mind, it just arrived!")
        await eventually(lambda: bubble_with(agent, "Never mind, it just arrived!") is not None, "the live message")

        reply = "Sorry about that, I will check with the courier."
        send(agent, reply)
        await agent.should_see(marker="collision-text", retries=WAIT)
        text = agent.find(marker="collision-text").elements.pop().text
        assert text.startswith(f"{users.customer.name} replied ") and text.endswith(" s ago"), text
        assert count(stack.db_url, ticket_id, reply) == 0  # nothing went out yet
        agent.find(marker="collision-review").click()
        await agent.should_not_see(marker="collision-text", retries=WAIT)
        assert agent.find(marker="composer").elements.pop().value, "Review keeps the text"
        assert count(stack.db_url, ticket_id, reply) == 0

        # reviewed: the next send goes straight through
        send(agent, "Great, glad it arrived!")
        await eventually(lambda: count(stack.db_url, ticket_id, "Great, glad it arrived!") == 1, "the reply", 60)

        # typing again, another message crosses it; this time the agent sends anyway, exactly once
        agent.find(marker="composer").type("One more thing")
        say(stack.db_url, ticket_id, users.admin.id, "FYI: refund issued")
        await eventually(lambda: bubble_with(agent, "FYI: refund issued") is not None, "the admin's reply")
        send(agent, "One more thing: the tracking link is in your email.")
        await agent.should_see(marker="collision-send", retries=WAIT)
        assert agent.find(marker="collision-text").elements.pop().text.startswith(f"{users.admin.name} replied")
        agent.find(marker="collision-send").click()
        await eventually(
            lambda: count(stack.db_url, ticket_id, "One more thing: the tracking link is in your email.") == 1,
            "sent anyway",
            60,
        )
        await eventually(lambda: not agent.find(marker="composer").elements.pop().value, "the box emptied")


async def test_a_colleague_viewing_shows_on_the_inbox_row(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Watched {time.time_ns()}",
        [(users.customer, "Anyone there?", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        admin = another_user()
        await sign_in(admin, users.admin)
        await agent.open("/")
        await agent.should_see("Watched", retries=WAIT)
        await admin.open(f"/?t={ticket_id}")
        await admin.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bool(row_of(agent, ticket_id).get("viewers")), "the viewers on the inbox row")
        assert row_of(agent, ticket_id)["viewers"]["names"] == [users.admin.name]
        assert engine_of(agent).presence.inbox_viewers(ticket_id) == (users.admin.name,)


async def test_the_agent_who_took_a_ticket_second_is_told_who_was_first(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    ticket_id = seed_ticket(
        stack.db_url, users.customer, None, f"Up for grabs {time.time_ns()}", [(users.customer, "Help!", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="take", retries=WAIT)
        proxy.set_mode("drop")
        agent.find(marker="take").click()  # offline: queued
        with psycopg.connect(stack.db_url, autocommit=True) as conn:  # a colleague takes it online meanwhile
            conn.execute("update tickets set assignee_id = %s where id = %s", (users.agent2.id, ticket_id))
        proxy.set_mode("pass")
        await agent.should_see(f"{users.agent2.name} took this ticket first", retries=WAIT)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute("select assignee_id::text from tickets where id = %s", (ticket_id,)).fetchone()
    assert row == (users.agent2.id,)


def test_history_arriving_while_typing_is_no_crossing() -> None:
    """Regression (browser test under load): the first sync filled the thread after the agent started typing,
    and the old messages asked "Customer replied … ago" before the send."""
    from datetime import UTC, datetime, timedelta

    from supportchat_app.components.collision import SendGuard
    from sync.models import Message

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def msg(i: str, minutes_ago: float, sender: str = "customer") -> Message:
        return Message(i, "t", sender, "hi", False, (now - timedelta(minutes=minutes_ago)).isoformat())

    guard = SendGuard("me")
    guard.start([], now)  # nothing from others in the cache yet
    old, fresh = msg("a", 60), msg("b", -0.1)
    assert guard.newer([old]) == []
    assert guard.newer([old, fresh, msg("c", -0.2, sender="me")]) == [fresh]
    guard.start([old, fresh], now)  # reviewed
    assert guard.newer([old, fresh]) == []
