"""The customer context panel's "first seen" (issue 14) comes from the server, against a real localbase: the
customer's profile was created long before the only ticket this agent's device has, and the panel's date is
the profile's, also after a restart with no network (it is cached with the profile). An old cache (before the
profile's creation time was kept) gets it with the next pull.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest

from sync import SyncEngine
from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket

pytestmark = pytest.mark.timeout(120)

LONG_AGO = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


async def test_first_seen_is_the_profiles_creation_and_holds_offline(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy
) -> None:
    customer = create_user(stack.db_url, "customer", "Old Customer")
    with psycopg.connect(stack.db_url, autocommit=True) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")  # the guard keeps created_at: triggers off
        conn.execute("update public.profiles set created_at = %s where id = %s", (LONG_AGO, customer.id))
    fresh = create_user(stack.db_url, "agent")  # a short first sync, also late in the full suite
    tid = seed_ticket(stack.db_url, customer.id, fresh, "First ticket here", messages=[(customer.id, "hi")])
    agent = await engines.open(fresh, url=proxy.url)
    await agent.sync_once()
    assert agent.cache.ticket(tid) is not None
    seen = agent.cache.first_seen(customer.id)
    assert seen is not None and datetime.fromisoformat(seen) == LONG_AGO  # not the ticket's "today"

    # offline: a restart with the server out of reach reads it from the cache
    data_dir = agent.data_dir
    await agent.close()
    proxy.set_mode("drop")
    try:
        offline = await SyncEngine.open(agent.config, data_dir)
        engines.engines.append(offline)
        assert offline.cache.first_seen(customer.id) == seen
        await offline.close()
    finally:
        proxy.set_mode("pass")

    # a cache from before this (profiles without created_at, the profiles cursor past them): the schema step
    # starts the profiles cursor over, so the next pull fills it in
    with sqlite3.connect(next(data_dir.rglob("*.sqlite3"))) as db:
        db.execute("update profiles set created_at = null")
        db.execute("pragma user_version = 9")
    again = await SyncEngine.open(agent.config, data_dir)
    engines.engines.append(again)
    assert again.cache.first_seen(customer.id) != seen  # only the ticket's date until the pull
    await again.sync_once()
    assert again.cache.first_seen(customer.id) == seen
