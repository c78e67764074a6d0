"""The SLA due times of many tickets in one pass (migration 20261204000500_sla_bulk_recompute.sql), in the real
PostgreSQL:

- ``private.business_due_times`` answers exactly what ``private.add_business_minutes`` answers, start by start,
  on random calendars: several windows a day (overlapping ones too), holidays, time zones with daylight saving,
  starts on and off business hours, targets from a minute to weeks, no business hours at all, null inputs;
- a settings change recomputes the open tickets through it, and the due times are the walk's;
- the API roles cannot call the helpers.

The calendars are written with triggers off (``session_replication_role = replica``) inside a transaction that
is rolled back, so the shared database's tickets are not recomputed for each one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe")


def _calendar(conn: psycopg.Connection, rnd: random.Random) -> None:
    conn.execute("delete from public.sla_business_hours")
    conn.execute("delete from public.sla_holidays")
    conn.execute("update public.sla_settings set timezone = %s", (rnd.choice(ZONES),))
    for weekday in range(1, 8):
        for _ in range(rnd.choice((0, 1, 1, 2, 3))):
            opens = rnd.randrange(0, 23 * 60)
            closes = rnd.randrange(opens + 1, 24 * 60)
            conn.execute(
                "insert into public.sla_business_hours (weekday, opens, closes) values (%s, %s, %s)",
                (weekday, f"{opens // 60:02}:{opens % 60:02}", f"{closes // 60:02}:{closes % 60:02}"),
            )
    today = datetime.now(UTC).date()
    for _ in range(rnd.randrange(0, 12)):
        day = today + timedelta(days=rnd.randrange(-30, 120))
        conn.execute("insert into public.sla_holidays (day) values (%s) on conflict do nothing", (day,))


def _starts(rnd: random.Random, n: int) -> tuple[list[datetime | None], list[int | None]]:
    now = datetime.now(UTC)
    starts: list[datetime | None] = []
    minutes: list[int | None] = []
    for _ in range(n):
        starts.append(None if rnd.random() < 0.03 else now + timedelta(seconds=rnd.uniform(-40, 60) * 86400))
        minutes.append(None if rnd.random() < 0.03 else rnd.choice((1, 30, 60, 240, 480, 1440, 5000, 20000)))
    return starts, minutes


def _both(conn: psycopg.Connection, starts: list[datetime | None], minutes: list[int | None]) -> tuple[list, list]:
    bulk = conn.execute(
        "select private.business_due_times(%s::timestamptz[], %s::integer[])", (starts, minutes)
    ).fetchone()[0]
    walk = [
        conn.execute("select private.add_business_minutes(%s, %s)", (s, m)).fetchone()[0]
        for s, m in zip(starts, minutes, strict=True)
    ]
    return bulk, walk


@pytest.mark.parametrize("seed", range(12))
def test_the_bulk_answer_is_the_walks_on_random_calendars(stack: StackProcess, seed: int) -> None:
    rnd = random.Random(seed)
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        _calendar(conn, rnd)
        starts, minutes = _starts(rnd, 60)
        bulk, walk = _both(conn, starts, minutes)
        conn.rollback()
    assert len(bulk) == len(walk)
    for i, (b, w) in enumerate(zip(bulk, walk, strict=True)):
        if w is None or b is None:
            assert b == w, (i, starts[i], minutes[i], b, w)
        else:  # the walk rounds minutes, the bulk counts exact seconds: they may differ by a microsecond
            assert abs(b - w) <= timedelta(microseconds=1), (i, starts[i], minutes[i], b, w)
    assert sum(w is not None for w in walk) > 30  # most starts found a due time: the comparison said something


def test_no_business_hours_and_empty_inputs(stack: StackProcess) -> None:
    with psycopg.connect(stack.db_url) as conn:
        conn.execute("set local session_replication_role = replica")
        conn.execute("delete from public.sla_business_hours")
        start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
        bulk, walk = _both(conn, [start, None, start], [90, 5, None])
        assert bulk == walk == [start + timedelta(minutes=90), None, None]
        assert conn.execute("select private.business_due_times('{}', '{}')").fetchone()[0] == []
        # business hours on no day at all: no due time within the walk's two years either
        conn.execute("insert into public.sla_business_hours (weekday, opens, closes) values (1, '09:00', '10:00')")
        conn.execute(
            "insert into public.sla_holidays (day) select d::date from generate_series(now() - interval"
            " '10 days', now() + interval '800 days', interval '1 day') d"
        )
        bulk, walk = _both(conn, [datetime.now(UTC)], [60])
        assert bulk == walk == [None]
        conn.rollback()


def test_a_settings_change_recomputes_open_tickets_to_the_walks_due_times(stack: StackProcess) -> None:
    customer = create_user(stack.db_url, "customer")
    with psycopg.connect(stack.db_url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "insert into public.tickets (customer_id, subject, priority, created_at)"
                " select %s, 'bulk ' || g, (array['low','normal','high','urgent'])[1 + g %% 4],"
                " now() - g * interval '37 minutes' from generate_series(1, 30) g returning id",
                (customer.id,),
            ).fetchall()
        ]
        # the admin's kind of change, through the statement trigger: 30+ tickets take the bulk path
        conn.execute(
            "insert into public.sla_business_hours (weekday, opens, closes) values (1, '09:00', '09:30'),"
            " (2, '09:00', '09:30'), (3, '13:00', '17:00'), (4, '08:00', '12:00'), (4, '10:00', '11:00')"
        )
        conn.execute("update public.sla_targets set first_response_minutes = 1440 where priority = 'normal'")
        got = dict(
            conn.execute(
                "select ticket_id, first_response_due_at from public.ticket_sla where ticket_id = any(%s)", (ids,)
            ).fetchall()
        )
        expected = dict(
            conn.execute(
                "select t.id, private.add_business_minutes(t.created_at, g.first_response_minutes)"
                " from public.tickets t left join public.sla_targets g on g.priority = t.priority"
                " where t.id = any(%s)",
                (ids,),
            ).fetchall()
        )
        conn.rollback()
    assert set(got) == set(ids)
    assert all(expected[i] is not None for i in ids)
    for i in ids:
        assert abs(got[i] - expected[i]) <= timedelta(microseconds=1), (i, got[i], expected[i])


@pytest.mark.parametrize("function", ["business_due_times(timestamptz[], integer[])", "sla_inputs(uuid[])"])
def test_the_api_roles_cannot_call_the_helpers(stack: StackProcess, function: str) -> None:
    with psycopg.connect(stack.db_url) as conn:
        for role, allowed in (("anon", False), ("authenticated", False), ("service_role", True)):
            got = conn.execute(
                "select has_function_privilege(%s, %s, 'execute')", (role, f"private.{function}")
            ).fetchone()[0]
            assert got is allowed, (role, function)
