"""The customer context panel (issue 14, item 6) through NiceGUI's simulated `User` on the real stack: beside
the open ticket an agent sees the customer, when they were first seen, their other tickets (a click opens
one) and staff notes about them; a note added there reaches the server and other staff, never the customer;
customers get no panel."""

from __future__ import annotations

import time
from pathlib import Path

from nicegui.testing.user_interaction import UserInteraction

from tests.conftest import Users
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
    sign_in,
)
from tests.test_sync_support import sql


async def test_context_panel_shows_the_customer_and_keeps_staff_notes(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    stamp = time.time_ns()
    seed_ticket(
        stack.db_url,
        users.customer2,
        users.agent2,
        f"Older issue {stamp}",
        [(users.customer2, f"the old problem {stamp}", False)],
    )
    tid = seed_ticket(
        stack.db_url,
        users.customer2,
        users.agent2,
        f"Current issue {stamp}",
        [(users.customer2, "it broke again", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent2)
        customer = another_user()
        await sign_in(customer, users.customer2)
        await agent.open(f"/?t={tid}")
        await agent.should_see(marker="context-panel", retries=WAIT)
        assert agent.find(marker="context-name").elements.pop().text == users.customer2.name
        await agent.should_see(marker="context-first-seen", retries=WAIT)
        await agent.should_see(f"Older issue {stamp}", retries=WAIT)

        note = f"Prefers email; VIP since 2024 ({stamp})"
        agent.find(marker="context-note-input").type(note)
        agent.find(marker="context-note-add").click()
        await agent.should_see(note, retries=WAIT)
        await eventually(
            lambda: (
                sql(stack.db_url, "select author_id::text from customer_notes where body = %s", note)
                == [(users.agent2.id,)]
            ),
            "the note on the server",
            60,
        )

        # the other ticket opens from the panel
        rows = [
            r
            for r in agent.find(marker="context-ticket").elements
            if any(getattr(d, "text", "") == f"Older issue {stamp}" for d in r.descendants())
        ]
        assert len(rows) == 1
        UserInteraction(agent, {rows[0]}, None).click()
        await eventually(lambda: bubble_with(agent, f"the old problem {stamp}") is not None, "the older ticket", 60)

        # the customer: no panel, and the note never reaches their cache
        await customer.open(f"/?t={tid}")
        await customer.should_see(marker="composer", retries=WAIT)
        await customer.should_not_see(marker="context-panel")
        await engine_of(customer).sync_once()
        assert engine_of(customer).cache.count("customer_notes") == 0
