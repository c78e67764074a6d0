"""What an admin's SLA settings change costs on a desk with many open tickets.

Every change to the SLA settings (timezone, targets, business hours, holidays) recomputes the due times of all open
and pending tickets inside the admin's own statement. `sla_settings_change` times that statement (a target changed
through the real trigger) on a desk of SLA_TICKETS open tickets with 30-minute business days on weekdays and a
one-day target, the case where the calendar is walked furthest; median of REPEATS changes. Baseline: the same due
times computed the way every change computed them before migration 20261204000500, one
`private.add_business_minutes` walk per ticket and target (first response and next response), timed as one
statement on the same desk. Both must finish within the `authenticated` role's statement timeout (8 s on Supabase),
or the admin cannot change the settings at all.
"""

from __future__ import annotations

import os
import time

import psycopg

from bench.harness import BenchEnv, Figure, figure, median

TICKETS = int(os.environ.get("SLA_TICKETS", "2000"))
REPEATS = 5


def _desk(conn: psycopg.Connection, env: BenchEnv) -> None:
    conn.execute("set session_replication_role = replica")  # the desk in one go; its SLA rows come below
    conn.execute(
        "insert into public.tickets (customer_id, subject, priority) select %s, 'sla ' || g, 'normal'"
        " from generate_series(1, %s) g",
        (env.users.customer.id, TICKETS),
    )
    conn.execute(
        "insert into public.sla_business_hours (weekday, opens, closes)"
        " select w, '09:00', '09:30' from generate_series(1, 5) w"
    )
    conn.execute("set session_replication_role = origin")
    conn.execute("analyze public.tickets")


def sla_settings_change(env: BenchEnv) -> list[Figure]:
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        _desk(conn, env)
        open_tickets = conn.execute("select count(*) from public.tickets where status in ('open', 'pending')")
        tickets = int(open_tickets.fetchone()[0])  # type: ignore[index]
        changes: list[float] = []
        for i in range(REPEATS):
            minutes = 1440 + i  # a different target each time: every ticket's due time moves
            started = time.perf_counter()
            conn.execute(
                "update public.sla_targets set first_response_minutes = %s where priority = 'normal'", (minutes,)
            )
            changes.append((time.perf_counter() - started) * 1000)
        walks: list[float] = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            conn.execute(
                "select count(private.add_business_minutes(t.created_at, g.first_response_minutes))"
                " + count(private.add_business_minutes(w.since, g.next_response_minutes))"
                " from public.tickets t left join public.sla_targets g on g.priority = t.priority"
                " cross join lateral (select s.awaiting_reply_since as since from public.ticket_sla s"
                " where s.ticket_id = t.id) w where t.status in ('open', 'pending')"
            ).fetchone()
            walks.append((time.perf_counter() - started) * 1000)
    return [
        figure(
            "sla_settings_change",
            median(changes),
            "ms",
            "the walk per ticket (before 20261204000500)",
            median(walks),
            higher_is_better=False,
            open_tickets=tickets,
            runs_ms=[round(x, 1) for x in changes],
            baseline_runs_ms=[round(x, 1) for x in walks],
        )
    ]


BENCHES = {"sla_settings_change": sla_settings_change}
