"""Issue 16: the status bar's "synced" time moves on every successful push or pull.

Before the fix a flush of the outbox left ``last_synced_at`` where the last pull put it (the user saw
"Synced 36 s ago" right after coming back online), and a round whose push went through but whose pull
failed cleared the wish to pull, so the next round after the backoff did not pull either.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from sync import RetryableError
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket


def age(moment: datetime | None) -> float:
    assert moment is not None
    return (datetime.now(UTC) - moment).total_seconds()


async def test_synced_time_after_a_flush_is_fresh(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Synced time")
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    proxy.set_mode("drop")
    for i in range(3):
        agent.commands.send_message(tid, f"written offline {i}")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    await asyncio.sleep(2.5)  # time passes offline (this is the scenario, not a wait for a condition)
    proxy.set_mode("pass")
    assert await agent.push() == 3
    assert age(agent.status.last_synced_at) < 2.0
    assert agent.status.state == "online" and agent.status.pending == 0


async def test_a_pull_that_failed_after_a_push_is_retried_by_the_next_round(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Pull after push")
    agent = await engines.open(users.agent, url=proxy.url)
    await agent.sync_once()
    await asyncio.sleep(2.5)  # so that a fresh "synced" time can be told from the first one
    agent.commands.send_message(tid, "pushed, then the pull breaks")
    rule = proxy.reset_request(b"POST /rest/v1/rpc/sync_")
    with pytest.raises(RetryableError):
        await agent.sync_once(pull=False)
    assert rule.hits == 1 and agent.status.pending == 0
    assert age(agent.status.last_synced_at) < 2.0, "the push reached the server: that is a sync"
    seed_ticket(stack.db_url, users.customer, users.agent, "Arrived meanwhile")
    assert await agent.sync_once(pull=False), "the failed pull is still wanted"
    assert any(t.subject == "Arrived meanwhile" for t in agent.cache.inbox("mine", limit=5000))
