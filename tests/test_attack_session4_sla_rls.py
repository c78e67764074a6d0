"""Attacker's review of the SLA calendar's writes (business hours, holidays, time zone, targets; the desk
settings page now also DELETEs rows): an agent or a customer changes none of them — no insert, update or
delete goes through (RLS filters to nothing or refuses) — and anon is not granted the tables. All held.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from postgrest.exceptions import APIError

from tests.stackproc import StackProcess
from tests.test_history_rls import As, as_
from tests.test_rest_clients import clients_fixture

uses_as = as_
uses_clients = clients_fixture


@pytest.fixture
def calendar(stack: StackProcess) -> Iterator[psycopg.Connection]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("insert into public.sla_business_hours (weekday, opens, closes) values (3, '09:00', '17:00')")
        conn.execute("insert into public.sla_holidays (day, name) values ('2031-01-01', 'New year')")
        yield conn
        conn.execute("delete from public.sla_business_hours")
        conn.execute("delete from public.sla_holidays")


def _state(conn: psycopg.Connection) -> tuple[object, ...]:
    return (
        conn.execute("select count(*) from public.sla_business_hours").fetchone(),
        conn.execute("select count(*) from public.sla_holidays").fetchone(),
        conn.execute("select timezone from public.sla_settings").fetchone(),
        conn.execute("select array_agg(first_response_minutes order by priority) from public.sla_targets").fetchone(),
    )


def test_only_admins_change_the_sla_calendar(calendar: psycopg.Connection, as_: As) -> None:
    before = _state(calendar)
    for who in ("agent", "customer"):
        c = as_(who)
        assert c.table("sla_business_hours").delete().eq("weekday", 3).execute().data == []
        assert c.table("sla_holidays").delete().eq("day", "2031-01-01").execute().data == []
        assert c.table("sla_business_hours").update({"closes": "23:00"}).eq("weekday", 3).execute().data == []
        assert c.table("sla_holidays").update({"name": "x"}).eq("day", "2031-01-01").execute().data == []
        assert c.table("sla_settings").update({"timezone": "Asia/Tokyo"}).eq("id", True).execute().data == []
        assert c.table("sla_targets").update({"first_response_minutes": 1}).neq("priority", "x").execute().data == []
        for table, row in (
            ("sla_business_hours", {"weekday": 4, "opens": "00:00", "closes": "23:59"}),
            ("sla_holidays", {"day": "2031-01-02"}),
        ):
            with pytest.raises(APIError):
                c.table(table).insert(row).execute()
    for table in ("sla_business_hours", "sla_holidays", "sla_settings", "sla_targets"):
        with pytest.raises(APIError, match="permission denied"):
            as_("anon").table(table).select("*").execute()
    assert _state(calendar) == before
    # the admin may (the same calls, so the refusals above are RLS and not a broken request)
    assert len(as_("admin").table("sla_holidays").delete().eq("day", "2031-01-01").execute().data) == 1
