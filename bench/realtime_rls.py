"""What one realtime RLS check costs per subscriber identity: the micro-benchmark behind `realtime_latency_*`.

Every `postgres_changes` delivery is checked as its subscriber (localbase/realtime/rls.py: one statement per
distinct identity and batch, inside the checker's generated plpgsql function). This calls that very function
(`rls.check_function` for `public.messages`) for one new message and 1 or 100 identities (customer and agent
alternately, each with its own session id, as the realtime benches subscribe) on a desk of 2,000 tickets (the
agent sees about 1,330 of them, the customer 200), best of 40 calls, and reports µs per identity:
(time for 100 - time for 1) / 99. Baseline: the same function and statement shape against a table without RLS
holding the same key, so the ratio is what the app's policies add to the checker's own per-identity work.

`realtime_rls_check`: value = µs per identity (lower is better). `REALTIME_RLS_TICKETS=0` measures it without the
desk (only the bench's own ticket), as in the `realtime_latency_*` runs.
"""

from __future__ import annotations

import json
import os
import time

import psycopg

from bench.harness import BenchEnv, Figure, figure
from localbase.realtime import rls
from tests.stackproc import session_claims

IDENTITIES = 100
TICKETS = int(os.environ.get("REALTIME_RLS_TICKETS", "2000"))  # 0: the realtime benches' own nearly empty desk
REPEATS = 40


def _desk(conn: psycopg.Connection, env: BenchEnv) -> str:
    """TICKETS tickets: a tenth the bench customer's, a third assigned to the bench agent, a third unassigned."""
    users = env.users
    conn.execute(
        "insert into public.tickets (customer_id, assignee_id, subject)"
        " select case when g %% 10 = 0 then %s::uuid else %s::uuid end,"
        "        case g %% 3 when 1 then %s::uuid when 2 then %s::uuid end, 'desk ' || g"
        " from generate_series(1, %s) g",
        (users.customer.id, users.customer2.id, users.agent.id, users.agent2.id, TICKETS),
    )
    row = conn.execute(
        "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, 'rls bench') returning id",
        (users.customer.id, users.agent.id),
    ).fetchone()
    assert row is not None
    row = conn.execute(
        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'rls bench') returning id::text",
        (row[0], users.agent.id),
    ).fetchone()
    assert row is not None
    conn.execute("analyze public.tickets")
    return str(row[0])


def _groups(env: BenchEnv, n: int) -> str:
    groups = []
    for g in range(n):
        user = env.users.customer if g % 2 == 0 else env.users.agent
        claims = json.dumps(session_claims(env.stack.db_url, user.id))  # each its own live session, as tokens are
        groups.append(rls.Group(g, "authenticated", claims).json())
    return "[" + ",".join(groups) + "]"


def _per_identity(conn: psycopg.Connection, env: BenchEnv, fn: str, keys: str) -> tuple[float, float]:
    """(ms for one identity, µs per further identity), best of REPEATS calls each."""
    best: dict[int, float] = {}
    for n in (1, IDENTITIES):
        groups = _groups(env, n)
        best[n] = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            rows = conn.execute(f"select g, k from {fn}('{{}}'::int8[], %s::jsonb, %s::jsonb, false)", (keys, groups))
            answered = len(rows.fetchall())
            best[n] = min(best[n], time.perf_counter() - started)
        assert answered == n, f"{fn}: {answered} of {n} identities see the row"
    return best[1] * 1000, (best[IDENTITIES] - best[1]) / (IDENTITIES - 1) * 1e6


def rls_check_bench(env: BenchEnv) -> list[Figure]:
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        message = _desk(conn, env)
        keys = json.dumps([{"id": message}])
        oid = conn.execute("select 'public.messages'::regclass::oid").fetchone()[0]  # type: ignore[index]
        conn.execute(rls.check_function(oid, "public", "messages", [("id", "uuid")]).encode())
        fn = f"{rls.SCHEMA}.{rls.check_function_name(oid)}"
        one_ms, per_identity = _per_identity(conn, env, fn, keys)
        # the baseline: the same key in a table without RLS, checked by the same generated function
        conn.execute(
            "create schema if not exists bench_norls; create table if not exists bench_norls.messages (id uuid primary"
            " key); grant usage on schema bench_norls to authenticated; grant select on bench_norls.messages to"
            " authenticated"
        )
        conn.execute("insert into bench_norls.messages values (%s) on conflict do nothing", (message,))
        base_oid = conn.execute("select 'bench_norls.messages'::regclass::oid").fetchone()[0]  # type: ignore[index]
        conn.execute(rls.check_function(base_oid, "bench_norls", "messages", [("id", "uuid")]).encode())
        base_fn = f"{rls.SCHEMA}.{rls.check_function_name(base_oid)}"
        base_one_ms, base_per_identity = _per_identity(conn, env, base_fn, keys)
    return [
        figure(
            "realtime_rls_check",
            per_identity,
            "µs/identity",
            "same check, table without RLS",
            base_per_identity,
            higher_is_better=False,
            identities=IDENTITIES,
            tickets=TICKETS,
            one_identity_ms=round(one_ms, 3),
            baseline_one_identity_ms=round(base_one_ms, 3),
        )
    ]


BENCHES = {"realtime_rls_check": rls_check_bench}
