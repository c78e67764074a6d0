"""SLA business hours and holidays through the sync engine (issue 14), against a real localbase: an admin
sets them offline-first (outbox, exactly once), the server recomputes the open tickets' due times, other
agents get the rows; removals are real DELETEs on the server and reach other agents' caches by realtime
without a full resync (also a deleted SLA target, and a ticket's due times when the ticket goes); agents
and customers cannot write them (RLS, as an attacker's client would try).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest

from sync import RetryableError, SyncEngine
from sync.workspace_rows import RowWrite
from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def calendar(stack: StackProcess) -> Iterator[None]:
    """Business hours and holidays are global: every test leaves round-the-clock UTC behind."""
    yield
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("delete from public.sla_business_hours")
        conn.execute("delete from public.sla_holidays")
        conn.execute("update public.sla_settings set timezone = 'UTC'")
        conn.execute(
            "insert into public.sla_targets (priority, first_response_minutes, next_response_minutes)"
            " values ('low', 1440, 1440) on conflict (priority) do nothing"
        )


async def live(engine: SyncEngine) -> None:
    """Started with no polling: after the first pull, only realtime can bring anything."""
    engine.loop.poll_interval = 3600
    await engine.start()
    await wait_for(lambda: engine.status.last_synced_at is not None, timeout=120, what="the first pull")
    await wait_for(lambda: engine.remote.live.subscribed, timeout=60, what="realtime")  # type: ignore[attr-defined]


def due(db_url: str, ticket_id: str) -> datetime:
    return sql(db_url, "select first_response_due_at from ticket_sla where ticket_id = %s", ticket_id)[0][0]


async def test_admin_sets_hours_and_holidays_offline_first_and_removals_reach_other_agents(
    stack: StackProcess, users: Users, engines: EngineFactory, proxy: FaultProxy, calendar: None
) -> None:
    fresh = create_user(stack.db_url, "agent")  # a short first sync, also late in the full suite
    tid = seed_ticket(stack.db_url, users.customer, fresh, "Hours", messages=[(users.customer, "hi")])
    round_the_clock = due(stack.db_url, tid)
    agent = await engines.open(fresh)
    await live(agent)
    # each of the admin's writes below recomputes the due times of every open ticket in the shared database
    # (thousands late in the full suite, and 30-minute business days make each computation long): the engines'
    # 5 s test timeout cut one such request in a full run (ReadTimeout), so the admin waits as the app would
    admin = await engines.open(users.admin, url=proxy.url, timeout=60)
    await admin.sync_once()
    ws = admin.workspace
    with pytest.raises(ValueError, match="close after"):
        ws.add_business_hours(1, "17:00", "09:00")
    with pytest.raises(ValueError, match="time zone"):
        ws.set_sla_timezone("Mars/Olympus")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        ws.add_holiday("2026-02-30")
    # a short day on every weekday, in a zone far from UTC, and a holiday: queued, shown at once
    spans = [ws.add_business_hours(day, "10:00", "10:30") for day in range(1, 8)]
    with pytest.raises(ValueError, match="overlap"):
        ws.add_business_hours(3, "10:15", "11:00")
    ws.set_sla_timezone("Pacific/Kiritimati")
    ws.add_holiday("2031-01-01", "New year")
    assert [h.weekday for h in ws.sla_business_hours()] == list(range(1, 8))
    assert {h.local_state for h in ws.sla_business_hours()} == {"pending"}
    rule = proxy.lose_response(b"POST /rest/v1/sla_business_hours")
    with pytest.raises(RetryableError):
        await admin.sync_once()
    assert rule.hits == 1
    await admin.sync_once()
    assert admin.status.pending == 0
    assert sql(stack.db_url, "select count(*) from sla_business_hours") == [(7,)]  # once, the lost answer too
    assert sql(stack.db_url, "select day::text, name from sla_holidays") == [("2031-01-01", "New year")]
    assert {h.local_state for h in ws.sla_business_hours()} == {"sent"}
    # the server recomputed the ticket's due time: 30 business minutes a day make a day-long target take weeks
    assert due(stack.db_url, tid) > round_the_clock
    await wait_for(lambda: len(agent.workspace.sla_business_hours()) == 7, timeout=30, what="hours at the agent")
    await wait_for(lambda: agent.workspace.sla_timezone() == "Pacific/Kiritimati", timeout=30, what="zone")
    await wait_for(
        lambda: datetime.fromisoformat(str(agent.workspace.sla_of([tid])[tid].due_at)) == due(stack.db_url, tid),
        timeout=30,
        what="the recomputed due time at the agent",
    )

    # removals: DELETEs on the server, gone from the other agent's cache by realtime alone
    ws.remove_holiday("2031-01-01")
    for span in spans[:5]:
        ws.remove_business_hours(span)
    assert [h.weekday for h in ws.sla_business_hours()] == [6, 7] and ws.sla_holidays() == []
    await admin.sync_once()
    assert admin.status.pending == 0
    assert sql(stack.db_url, "select weekday from sla_business_hours order by weekday") == [(6,), (7,)]
    assert sql(stack.db_url, "select count(*) from sla_holidays") == [(0,)]
    await wait_for(
        lambda: [h.weekday for h in agent.workspace.sla_business_hours()] == [6, 7], timeout=30, what="hours removed"
    )
    await wait_for(lambda: agent.workspace.sla_holidays() == [], timeout=30, what="the holiday removed")
    # a day added again before its removal was sent: removed, then added, in that order
    ws.add_holiday("2031-12-25", "Christmas")
    await admin.sync_once()
    ws.remove_holiday("2031-12-25")
    ws.add_holiday("2031-12-25", "Noel")
    await admin.sync_once()
    assert sql(stack.db_url, "select name from sla_holidays") == [("Noel",)]
    await agent.stop()
    await asyncio.sleep(0)


async def test_deleted_sla_rows_leave_caches_by_realtime(
    stack: StackProcess, users: Users, engines: EngineFactory, calendar: None
) -> None:
    fresh = create_user(stack.db_url, "agent")
    tid = seed_ticket(stack.db_url, users.customer, fresh, "Gone", messages=[(users.customer, "hi")])
    sql(stack.db_url, "insert into sla_holidays (day, name) values ('2032-05-01', 'May day')")
    agent = await engines.open(fresh)
    await live(agent)
    assert [h.day for h in agent.workspace.sla_holidays()] == ["2032-05-01"]
    assert tid in agent.workspace.sla_of([tid])
    # the service deletes a target, a holiday, and a ticket (its due times go by cascade)
    sql(stack.db_url, "delete from sla_targets where priority = 'low'")
    sql(stack.db_url, "delete from sla_holidays where day = '2032-05-01'")
    sql(stack.db_url, "delete from tickets where id = %s", tid)
    await wait_for(
        lambda: "low" not in {t.priority for t in agent.workspace.sla_targets()}, timeout=30, what="target removed"
    )
    await wait_for(lambda: agent.workspace.sla_holidays() == [], timeout=30, what="holiday removed")
    await wait_for(
        lambda: all(r["ticket_id"] != tid for r in agent.cache.workspace.rows("ticket_sla")),
        timeout=30,
        what="the deleted ticket's due times removed",
    )
    await agent.stop()
    await asyncio.sleep(0)


async def test_agents_and_customers_cannot_set_hours_or_holidays(
    stack: StackProcess, users: Users, engines: EngineFactory, calendar: None
) -> None:
    sql(
        stack.db_url,
        "insert into sla_business_hours (id, weekday, opens, closes) values"
        " ('7d1c0000-0000-4000-8000-000000000001', 2, '08:00', '12:00')",
    )
    sql(stack.db_url, "insert into sla_holidays (day, name) values ('2033-01-01', 'Kept')")
    agent = await engines.open(create_user(stack.db_url, "agent"))
    await agent.sync_once()
    ws = agent.workspace
    with pytest.raises(ValueError, match="only admins"):
        ws.add_business_hours(1, "09:00", "10:00")
    with pytest.raises(ValueError, match="only admins"):
        ws.remove_holiday("2033-01-01")
    # an attacker's client skips the app's checks: every write is refused by the server, nothing changes
    ws.apply(
        [
            RowWrite(
                "sla_business_hours",
                "insert",
                {"id": "7d1c0000-0000-4000-8000-000000000002", "weekday": 1, "opens": "00:00", "closes": "23:59"},
            ),
            RowWrite("sla_business_hours", "delete", {"id": "7d1c0000-0000-4000-8000-000000000001"}),
            RowWrite("sla_holidays", "update", {"day": "2033-01-01", "name": "Changed"}),
            RowWrite("sla_holidays", "delete", {"day": "2033-01-01"}),
            RowWrite("sla_holidays", "insert", {"day": "2033-02-02", "name": "Mine"}),
        ]
    )
    await agent.sync_once()
    assert agent.status.pending == 0
    assert sql(stack.db_url, "select id::text, weekday from sla_business_hours") == [
        ("7d1c0000-0000-4000-8000-000000000001", 2)
    ]
    assert sql(stack.db_url, "select day::text, name from sla_holidays") == [("2033-01-01", "Kept")]
    hours = {h.id: h for h in agent.cache.workspace.sla_business_hours()}
    assert hours["7d1c0000-0000-4000-8000-000000000001"].local_state == "failed"  # shown again, with the reason
    assert hours["7d1c0000-0000-4000-8000-000000000002"].local_state == "failed"
    assert {h.day: h.name for h in agent.workspace.sla_holidays()}["2033-01-01"] == "Kept"
    # a customer's cache never gets them, and its writes are refused too
    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert customer.workspace.sla_business_hours() == [] and customer.workspace.sla_holidays() == []
    customer.workspace.apply([RowWrite("sla_holidays", "insert", {"day": "2033-03-03", "name": "Customer's"})])
    await customer.sync_once()
    assert customer.status.pending == 0
    assert sql(stack.db_url, "select count(*) from sla_holidays where day = '2033-03-03'") == [(0,)]
