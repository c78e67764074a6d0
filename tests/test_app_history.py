"""Edits and deletes are visible in the app (issue 10 item 4, issue 13): a message its sender edited on
the server shows "edited", a deleted one shows "Message deleted" and never its old text, for the agent
reading the thread through the real engine, cache and NiceGUI pages."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from supabase import Client, ClientOptions, create_client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    bubbles,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    sign_in,
)


async def test_the_thread_shows_edited_and_deleted_messages(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    ticket_id = seed_ticket(stack.db_url, users.customer, users.agent, f"History {time.time_ns()}")
    token = stack.mint(sub=users.customer.id, email=users.customer.email)
    with httpx.Client(timeout=30) as http:
        customer = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(headers={"Authorization": f"Bearer {token}"}, httpx_client=http),
        )
        _edit_and_delete(customer, ticket_id)
    await _agent_sees_the_history(users, ticket_id)


def _edit_and_delete(customer: Client, ticket_id: str) -> None:
    sent = (
        customer.table("messages")
        .insert(
            [
                {"ticket_id": ticket_id, "content": "my order is 1234"},
                {"ticket_id": ticket_id, "content": "my card number is 4111 1111 1111 1111"},
                {"ticket_id": ticket_id, "content": "thanks"},
            ]
        )
        .execute()
        .data
    )
    edited, deleted = sent[0]["id"], sent[1]["id"]
    # the sender edits within the window and deletes the message they regret, through the API
    customer.table("messages").update({"content": "my order is 1243"}).eq("id", edited).execute()
    customer.table("messages").update({"deleted_at": "now"}).eq("id", deleted).execute()


async def _agent_sees_the_history(users: Users, ticket_id: str) -> None:
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(
            lambda: any(m.deleted_at for m in engine.cache.thread(ticket_id)), "the edit and the delete in the cache"
        )
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "my order is 1243") is not None, "the edited text")
        assert "edited" in markers_in(bubble_with(agent, "my order is 1243"))
        assert "edited" not in markers_in(bubble_with(agent, "thanks"))
        texts = {getattr(d, "text", None) for b in bubbles(agent) for d in b.descendants()}
        assert "Message deleted" in texts
        assert not any("4111" in str(t) for t in texts), "a deleted message's text never reaches the page"
        assert "my order is 1234" not in texts, "the page shows the edited text, not the original"
