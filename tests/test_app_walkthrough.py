"""Defects found walking through the real app as its agents, admins and customers use it, each pinned by the
simulated user (NiceGUI's `user` fixture) against the real localbase and sync engine."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    running_app,
    seed_ticket,
    sign_in,
)


async def test_empty_side_says_pick_a_ticket_once_the_inbox_has_tickets(app_data: Path, stack: StackProcess) -> None:
    """The right side drawn while the inbox was empty said "No tickets yet" beside the tickets that arrived after
    it (the first sync, a new ticket live): it follows the inbox now."""
    agent = create_user(stack.db_url, "agent", "Nina Newcomer")
    customer = create_user(stack.db_url, "customer", "Carl Customer")
    async with running_app() as user:
        await sign_in(user, agent)
        await user.should_see("No tickets yet", retries=WAIT)
        seed_ticket(stack.db_url, customer, agent, "Printer on fire")
        await user.should_see("Printer on fire", retries=WAIT)
        await user.should_see("Pick a ticket on the left", retries=WAIT)
        await user.should_not_see("No tickets yet")
