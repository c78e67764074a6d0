"""An agent writing an internal note is not "typing" to the customer (the note is for staff only, but the
typing signal goes to the ticket's channel, which the customer is on). NiceGUI's simulated `User`, the real
stack, fresh users."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
from nicegui import background_tasks

from sync import events
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)


async def test_writing_an_internal_note_sends_no_typing_to_the_customer(app_data: Path, stack: StackProcess) -> None:
    agent_account, customer_account = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    ticket_id = seed_ticket(
        stack.db_url, customer_account, agent_account, f"Note {time.time_ns()}", [(customer_account, "Hi", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, agent_account)
        customer = another_user()
        await sign_in(customer, customer_account)
        heard: list[events.Typing] = []
        engine_of(customer).subscribe(lambda e: heard.append(e) if isinstance(e, events.Typing) else None)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await customer.open(f"/?t={ticket_id}")
        await customer.should_see(marker="composer", retries=WAIT)
        await agent.should_see(marker="viewers", retries=WAIT)  # both are on the ticket's channel

        agent.find(marker="composer-mode").elements.pop().value = "note"
        for word in ("Customer ", "is on ", "the legacy plan"):
            agent.find(marker="composer").type(word)
        await _signals_sent()
        assert _typing_rows(stack, ticket_id) == 0, "the note's keystrokes were signalled to the ticket's channel"
        # a reply's keystrokes are signalled, and the customer hears them (the check above could not pass by a
        # broken channel)
        agent.find(marker="composer-mode").elements.pop().value = "reply"
        agent.find(marker="composer").type(" Hello!")
        await _signals_sent()
        assert _typing_rows(stack, ticket_id) == 1
        await eventually(lambda: len(heard) == 1, "the reply's typing signal at the customer", 30)
        await customer.should_see(marker="typing", retries=WAIT)


async def _signals_sent() -> None:
    """Every typing signal the app started has been answered by the server (committed, or refused)."""
    await asyncio.gather(*(t for t in background_tasks.running_tasks if t.get_name() == "typing"))


def _typing_rows(stack: StackProcess, ticket_id: str) -> int:
    """Typing broadcasts the database minted on the ticket's topic (realtime.send keeps its rows)."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from realtime.messages where topic = %s and event = 'typing'", (f"ticket:{ticket_id}",)
        ).fetchone()
    return int(row[0]) if row else 0
