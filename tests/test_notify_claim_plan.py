"""The worker's claim (notify/queue.py) reads a bounded number of notification rows right after a burst, while
PostgreSQL's statistics still say that nothing is queued (migration 20261202000110). The regression: the
planner found each claimed group's rows through an index on every queued row (statistics said there were
none), so one claim of 100 groups read the whole queue once or once per group, 0.4-1.4 s a claim on 10,000
queued rows, until autovacuum analyzed the table again. Measured by rows read (EXPLAIN ANALYZE), not time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from notify.queue import _CLAIM, _INDEXES_ONLY, LOCKSPACE
from tests.conftest import create_user
from tests.stackproc import StackProcess

BURST = 2000  # notifications queued at once (20 customers x 100 tickets, one agent reply each)
GROUPS = 100  # a claim's groups, the worker's default batch


@pytest.fixture
def no_autoanalyze(stack: StackProcess) -> Iterator[psycopg.Connection]:
    """The superuser connection, with autovacuum kept off the table so its statistics stay those of before
    the burst for the length of the test (as they are for a minute or more after a real burst)."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("alter table public.notifications set (autovacuum_enabled = false)")
        try:
            yield conn
        finally:
            conn.execute("alter table public.notifications reset (autovacuum_enabled)")


def rows_read(plan: dict[str, Any], relation: str) -> int:
    """Rows the plan's scans of ``relation`` produced or threw away, over all their loops."""
    total = 0
    if plan.get("Relation Name") == relation and plan["Node Type"] != "ModifyTable":
        loops = int(plan.get("Actual Loops", 1))
        total += (int(plan.get("Actual Rows", 0)) + int(plan.get("Rows Removed by Filter", 0))) * loops
        total += int(plan.get("Rows Removed by Index Recheck", 0))
    for child in plan.get("Plans", []):
        total += rows_read(child, relation)
    return total


def _scans(plan: dict[str, Any]) -> list[str]:
    """Each scan of the plan, with the rows it read, for the failure message."""
    here = []
    if "Relation Name" in plan:
        where = f"{plan['Node Type']} {plan.get('Index Name', '')} on {plan['Relation Name']}"
        rows = (
            f"{plan.get('Actual Rows')} x {plan.get('Actual Loops')}, filtered {plan.get('Rows Removed by Filter', 0)}"
        )
        here.append(f"{where}: {rows}")
    return here + [line for child in plan.get("Plans", []) for line in _scans(child)]


def test_a_claim_after_a_burst_reads_a_bounded_number_of_rows(
    stack: StackProcess, no_autoanalyze: psycopg.Connection
) -> None:
    db = no_autoanalyze
    db.execute("analyze public.notifications")  # statistics of the queue before the burst
    # earlier tests' notifications still queued (waiting for their recipients' delay) are older than the burst, so
    # the oldest-first walk may read each of them once: they count toward the bound, the burst's size does not
    (earlier,) = db.execute("select count(*) from public.notifications where state = 'queued'").fetchone() or (0,)
    agent = create_user(stack.db_url, "agent")
    customers = [create_user(stack.db_url, "customer") for _ in range(BURST // 100)]
    burst: list[int] = []
    try:
        with db.transaction():
            db.execute(
                "insert into public.tickets (customer_id, assignee_id, subject)"
                " select c, %s, 'Burst ' || g from unnest(%s::uuid[]) c, generate_series(1, 100) g",
                (agent.id, [c.id for c in customers]),
            )
            db.execute(
                "insert into public.messages (ticket_id, sender_id, content)"
                " select t.id, %s, 'on its way' from public.tickets t where t.assignee_id = %s",
                (agent.id, agent.id),
            )
            burst = [
                int(r[0])
                for r in db.execute(
                    "select n.id from public.notifications n join public.tickets t on t.id = n.ticket_id"
                    " where t.assignee_id = %s and n.state = 'queued'",
                    (agent.id,),
                )
            ]
        assert len(burst) == BURST
        with db.transaction(force_rollback=True):  # nothing claimed stays claimed
            db.execute("set local role postgres")  # as the worker runs it
            db.execute(_INDEXES_ONLY)
            row = db.execute(
                "explain (analyze, format json) " + _CLAIM,
                {"delay": 0, "groups": GROUPS, "token": 1, "lease": 60, "space": LOCKSPACE},
            ).fetchone()
            claimed = db.execute("select count(*) from public.notifications where claimed_by = 1").fetchone()
        assert row is not None and claimed is not None
        plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
        taken = int(claimed[0])
        assert taken >= GROUPS, "the claim took its groups"
        read = rows_read(plan[0]["Plan"], "notifications")
        # the oldest-first walk (4 rows a group at most, and the earlier queued rows it passes), each group's queued
        # rows (what it claimed) and the claimed rows again by id, plus a margin: 700 (+ earlier) when the groups are
        # the burst's (one row each), while a plan that reads the queue once reads the whole burst (2,000 + earlier)
        bound = GROUPS * 4 + 2 * taken + 100 + int(earlier)
        assert read <= bound, (read, taken, earlier, _scans(plan[0]["Plan"]))
    finally:
        if burst:
            db.execute("update public.notifications set state = 'skipped' where id = any(%s)", (burst,))
