"""Partial sync in the app (issue 15) through NiceGUI's simulated `User` on the real stack: a customer whose
cache keeps open/pending tickets plus the last 30 days does not have an old closed ticket; the search
dialog's "search older tickets on the server" finds it, and opening the hit downloads and shows its thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    running_app,
    sign_in,
)
from tests.test_sync_support import seed_ticket, sql


async def test_an_old_ticket_is_found_on_the_server_and_opened(
    app_data: Path,
    stack: StackProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPPORTCHAT_SYNC_SCOPE_DAYS", "30")  # the new cache starts partial
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    word = f"nebula{time.time_ns() % 10**8}"
    old = seed_ticket(
        stack.db_url,
        customer.id,
        agent.id,
        "Old order",
        status="closed",
        messages=[(customer.id, f"my {word} is broken"), (agent.id, "fixed it")],
    )
    sql(stack.db_url, "update public.tickets set last_message_at = now() - interval '100 days' where id = %s", old)
    recent = seed_ticket(stack.db_url, customer.id, agent.id, "New order", messages=[(customer.id, "hello")])
    async with running_app() as user:
        await sign_in(user, customer)
        engine = engine_of(user)
        await eventually(lambda: engine.cache.initial_sync_done() and engine.cache.has_ticket(recent), "first sync")
        assert engine.partial.days() == 30 and not engine.cache.has_ticket(old)
        user.find(marker="open-search").click()
        user.find(marker="search-input").type(word)
        await user.should_see(marker="search-server", retries=WAIT)
        await user.should_not_see(marker="search-hit")  # nothing local
        user.find(marker="search-server").click()
        await user.should_see(marker="search-hit", retries=WAIT)
        user.find(marker="search-hit").click()
        await eventually(lambda: engine.cache.has_ticket(old), "the ticket fetched on demand")
        await eventually(lambda: bubble_with(user, f"my {word} is broken") is not None, "its thread")
