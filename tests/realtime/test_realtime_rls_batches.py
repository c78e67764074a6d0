"""One batch, many identities asking about different rows: the RLS check's (identity, row) answers never cross.

The capture sends the batch's changed keys once and, per subscriber identity, the keys its filters matched
(localbase/realtime/rls.py). Here identities with different filters and different rights ask about interleaved
rows of three tickets in one transaction; each socket must receive exactly the rows its filter matches and RLS
shows it, in commit order, and nothing else (a sentinel after the batch proves the "nothing").
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import conninfo

from localbase.realtime.authorization import AUTHORIZE_SQL
from localbase.realtime.rls import SETUP_SQL, run_setup
from tests.conftest import User, Users
from tests.realtime.support import RawSocket, new_ticket, post
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


async def test_identities_asking_about_different_rows_of_one_batch(stack: StackProcess, users: Users) -> None:
    a = new_ticket(stack.db_url, users.customer, users.agent)  # the customer's, assigned to agent
    b = new_ticket(stack.db_url, users.customer2, users.agent2)  # customer2's, assigned to agent2
    c = new_ticket(stack.db_url, users.customer, users.agent2)  # the customer's, assigned to agent2
    tickets = {"a": a, "b": b, "c": c}

    def binding(ticket: str | None) -> dict[str, object]:
        spec: dict[str, object] = {"event": "INSERT", "schema": "public", "table": "messages"}
        if ticket is not None:
            spec["filter"] = f"ticket_id=eq.{ticket}"
        return {"postgres_changes": [spec]}

    # (who, filter ticket, the tickets whose rows it must receive, a ticket it may read for the sentinel)
    subscribers: list[tuple[User, str | None, set[str], str]] = [
        (users.customer, c, {c}, a),  # own ticket c only: a subset of the batch's keys
        (users.customer, b, set(), a),  # asks about customer2's rows: RLS hides every one
        (users.customer2, None, {b}, b),  # whole table: only its own ticket
        (users.agent, None, {a}, a),  # whole table: only the ticket assigned to it
        (users.agent2, a, set(), b),  # asks about agent's ticket only: hidden
        (users.agent2, None, {b, c}, b),
    ]
    sockets: list[tuple[RawSocket, set[str]]] = []
    try:
        for who, ticket, expected, readable in subscribers:
            sock = await RawSocket.open(stack)
            token = stack.mint(sub=who.id)
            for topic, spec in (("realtime:rls-batches", binding(ticket)), ("realtime:sentinel", binding(readable))):
                reply = await sock.join(topic, spec, token=token)
                assert reply["status"] == "ok"
                await sock.next(lambda f, topic=topic: f["event"] == "system" and f["topic"] == topic)
            sockets.append((sock, expected))
        order = "abcacbbcaabc"
        with psycopg.connect(stack.db_url) as conn:  # one transaction: one batch, one RLS round trip
            for i, name in enumerate(order):
                conn.execute(
                    "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                    (tickets[name], users.admin.id, f"row {i} of {name}"),
                )
        # committed after the batch, on a ticket each identity may read: on one socket frames keep commit order, so
        # anything of the batch a socket was going to get arrives before its sentinel
        for ticket in (a, b):
            post(stack.db_url, users.admin, ticket, "sentinel")
        for sock, expected in sockets:
            want = [f"row {i} of {n}" for i, n in enumerate(order) if tickets[n] in expected]
            got: list[str] = []
            while True:
                frame = await sock.next(lambda f: f["event"] == "postgres_changes")
                record = frame["payload"]["data"]["record"]
                if frame["topic"] == "realtime:sentinel":
                    if record["content"] == "sentinel":
                        break
                    continue
                assert record["ticket_id"] in expected, f"a hidden row arrived: {record['content']}"
                if record["content"] != "sentinel":  # whole-table subscribers see the sentinels of their tickets too
                    got.append(record["content"])
            assert got == want
    finally:
        for sock, _ in sockets:
            await sock.close()


def test_the_check_waits_until_the_changes_transaction_is_visible(stack: StackProcess) -> None:
    """The walsender may send a commit before other snapshots see it; a check then would read the row's previous
    version. `await_visible` (called first by every check) returns only once the transaction is visible: here a
    transaction still open stands in for one in that window, and the wait ends when it commits."""
    with psycopg.connect(stack.db_url) as writer, psycopg.connect(stack.db_url, autocommit=True) as checker:
        row = writer.execute("select pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        xid32 = int(row[0]) & 0xFFFFFFFF  # the WAL (pgoutput BEGIN) carries 32 bits
        done = threading.Event()

        def wait() -> None:
            checker.execute("select localbase_realtime.await_visible(%s::int8[])", ([xid32],))
            done.set()

        waiting = threading.Thread(target=wait)
        waiting.start()
        with psycopg.connect(stack.db_url, autocommit=True) as probe:  # the check is in its wait loop, not done
            for _ in range(200):
                row = probe.execute(
                    "select count(*) from pg_stat_activity where query like %s and wait_event = 'PgSleep'",
                    ("%await_visible%",),
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.01)  # polling pg_stat_activity for the condition, not a synchronisation sleep
            assert row and row[0], "await_visible did not wait for an uncommitted transaction"
        assert not done.is_set()
        writer.commit()
        waiting.join(timeout=10)
        assert done.is_set(), "await_visible did not return once the transaction was visible"
        # an old, long visible transaction (and the epoch arithmetic for it) returns at once
        checker.execute("select localbase_realtime.await_visible(%s::int8[])", ([xid32, 3],))


def test_capture_and_first_private_join_set_the_schema_up_at_once_without_failing(stack: StackProcess) -> None:
    """At start the capture (rls.SETUP_SQL) and the first private join (authorization.AUTHORIZE_SQL) both create the
    helper schema; two `create schema if not exists` at once made one of them fail (a join refused with "unable to
    connect"). Both run concurrently here, on a scratch database, again and again."""
    name = f"setup_race_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.db_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = conninfo.make_conninfo(stack.db_url, dbname=name)
    try:
        with psycopg.connect(url, autocommit=True) as one:
            for _ in range(15):
                one.execute("drop schema if exists localbase_realtime cascade")
                barrier = threading.Barrier(2)
                failures: list[Exception] = []

                def run(
                    url: str, script: str, barrier: threading.Barrier = barrier, failures: list[Exception] = failures
                ) -> None:
                    async def setup() -> None:
                        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                            barrier.wait()
                            await run_setup(conn, script)

                    try:
                        asyncio.run(setup())
                    except psycopg.Error as exc:
                        failures.append(exc)

                threads = [
                    threading.Thread(target=run, args=(url, SETUP_SQL)),
                    threading.Thread(target=run, args=(url, AUTHORIZE_SQL)),
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
                assert not failures, failures
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as admin:
            admin.execute(f'drop database "{name}" with (force)')
