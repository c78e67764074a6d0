"""REST benchmarks: /rest/v1 through supabase-py against raw psycopg on the same database.

rest_insert  messages inserted per second, bulk (batches of 200 in one request) and one row per
             request; baseline: psycopg doing the same inserts in the same transactions shape
             (one per batch / per row) under the same RLS role and claims, so the ratio is the
             cost of HTTP + JSON + PostgREST-style SQL, not of skipping RLS.
rest_select  p50 latency of one thread page (50 newest messages of a ticket); baseline: the same
             query via psycopg under the same role and claims.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
from postgrest.types import ReturnMethod
from supabase import Client, ClientOptions, create_client

from bench.harness import BenchEnv, Figure, figure, median
from tests.stackproc import session_claims

BULK_ROWS = 2000
BATCH = 200
SINGLE_ROWS = 200
SELECT_ROUNDS = 200
PAGE = 50


@contextmanager
def rest_client(env: BenchEnv, token: str) -> Iterator[Client]:
    http = httpx.Client(timeout=60)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # supabase-py passes deprecated args itself
            client = create_client(
                env.stack.api_url,
                env.stack.anon_key,
                ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http),
            )
            client.postgrest.auth(token)
        yield client
    finally:
        http.close()


# the strongest raw way: one set-based statement per batch, like the REST layer's INSERT ... SELECT
UNNEST_SQL = (
    "insert into public.messages (id, ticket_id, content) select * from unnest(%s::uuid[], %s::uuid[], %s::text[])"
)


def _new_ticket(env: BenchEnv) -> str:
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.tickets (customer_id, subject) values (%s, 'bench') returning id",
            (env.users.customer.id,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _as_user(conn: psycopg.Connection, claims: str) -> None:
    """What every REST request does first: role and claims for RLS, transaction-local (``claims`` of a live session,
    ``session_claims``, as GoTrue's tokens name one: staff rights need it)."""
    conn.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims,)
    )


def _rows(ticket: str, n: int) -> list[dict[str, Any]]:
    return [{"id": str(uuid.uuid4()), "ticket_id": ticket, "content": f"bench message {i}"} for i in range(n)]


def _timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_insert(env: BenchEnv) -> list[Figure]:
    user = env.users.customer.id
    token = env.stack.mint(sub=user)
    claims = json.dumps(session_claims(env.stack.db_url, user))
    sql = "insert into public.messages (id, ticket_id, content) values (%(id)s, %(ticket_id)s, %(content)s)"
    with rest_client(env, token) as client, psycopg.connect(env.stack.db_url) as conn:
        table = client.table("messages")

        def rest_bulk() -> None:
            rows = _rows(_new_ticket(env), BULK_ROWS)
            for i in range(0, BULK_ROWS, BATCH):
                table.insert(rows[i : i + BATCH], returning=ReturnMethod.minimal).execute()

        def raw_bulk() -> None:
            rows = _rows(_new_ticket(env), BULK_ROWS)
            for i in range(0, BULK_ROWS, BATCH):
                with conn.transaction():
                    _as_user(conn, claims)
                    with conn.cursor() as cur:
                        cur.executemany(sql, rows[i : i + BATCH])

        def raw_bulk_set() -> None:
            rows = _rows(_new_ticket(env), BULK_ROWS)
            for i in range(0, BULK_ROWS, BATCH):
                batch = rows[i : i + BATCH]
                with conn.transaction():
                    _as_user(conn, claims)
                    conn.execute(
                        UNNEST_SQL,
                        ([r["id"] for r in batch], [r["ticket_id"] for r in batch], [r["content"] for r in batch]),
                    )

        def rest_single() -> None:
            for row in _rows(_new_ticket(env), SINGLE_ROWS):
                table.insert(row, returning=ReturnMethod.minimal).execute()

        def raw_single() -> None:
            for row in _rows(_new_ticket(env), SINGLE_ROWS):
                with conn.transaction():
                    _as_user(conn, claims)
                    conn.execute(sql, row)

        rest_bulk()  # warm-up: pools, schema cache, plans
        raw_bulk()
        raw_bulk_set()
        bulk = BULK_ROWS / _timed(rest_bulk)
        bulk_raw_many = BULK_ROWS / _timed(raw_bulk)
        bulk_raw = BULK_ROWS / _timed(raw_bulk_set)
        single = SINGLE_ROWS / _timed(rest_single)
        single_raw = SINGLE_ROWS / _timed(raw_single)
    return [
        figure(
            "rest_insert",
            bulk,
            "rows/s",
            f"raw psycopg unnest insert, {BATCH}/tx",
            bulk_raw,
            higher_is_better=True,
            mode=f"bulk, {BATCH} rows per request",
            rows=BULK_ROWS,
            executemany_rows_per_s=round(bulk_raw_many, 1),
        ),
        figure(
            "rest_insert_single",
            single,
            "rows/s",
            "raw psycopg, 1 row/tx",
            single_raw,
            higher_is_better=True,
            mode="one row per request",
            rows=SINGLE_ROWS,
        ),
    ]


def bench_select(env: BenchEnv, reader: str = "customer") -> list[Figure]:
    """A page of a thread read by the ticket's customer (``rest_select``) or by an agent (``rest_select_agent``:
    the staff path, whose role checks also ask for the token's live session, migration 20261213000100)."""
    user = env.users.customer.id
    claims = json.dumps(session_claims(env.stack.db_url, user))
    reading = env.users.agent.id if reader == "agent" else user
    read_claims = claims if reading == user else json.dumps(session_claims(env.stack.db_url, reading))
    ticket = _new_ticket(env)
    with psycopg.connect(env.stack.db_url) as conn:
        with conn.transaction():
            _as_user(conn, claims)
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into public.messages (id, ticket_id, content) values (%(id)s, %(ticket_id)s, %(content)s)",
                    _rows(ticket, 500),
                )
        query = "select * from public.messages where ticket_id = %s order by created_at desc, id limit %s"
        rest_ms: list[float] = []
        raw_ms: list[float] = []
        http_ms: list[float] = []
        token = env.stack.mint(sub=reading)
        url = (
            f"{env.stack.api_url}/rest/v1/messages?select=*&ticket_id=eq.{ticket}"
            f"&order=created_at.desc,id.asc&limit={PAGE}"
        )
        with (
            rest_client(env, token) as client,
            httpx.Client(headers={"apikey": env.stack.anon_key, "Authorization": f"Bearer {token}"}) as bare,
        ):

            def rest_page() -> None:
                rows = (
                    client.table("messages")
                    .select("*")
                    .eq("ticket_id", ticket)
                    .order("created_at", desc=True)
                    .order("id")
                    .limit(PAGE)
                    .execute()
                    .data
                )
                assert len(rows) == PAGE

            def raw_page() -> None:
                with conn.transaction(), conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                    _as_user(conn, read_claims)
                    rows = cur.execute(query, (ticket, PAGE)).fetchall()
                assert len(rows) == PAGE

            def http_page() -> None:  # the same request without supabase-py's own overhead
                assert len(bare.get(url).json()) == PAGE

            for _ in range(20):  # warm-up
                rest_page()
                raw_page()
                http_page()
            for _ in range(SELECT_ROUNDS):
                rest_ms.append(_timed(rest_page) * 1000)
                raw_ms.append(_timed(raw_page) * 1000)
                http_ms.append(_timed(http_page) * 1000)
    return [
        figure(
            "rest_select" if reader == "customer" else f"rest_select_{reader}",
            median(rest_ms),
            "ms",
            "raw psycopg, same query and role",
            median(raw_ms),
            higher_is_better=False,
            stat="p50",
            rounds=SELECT_ROUNDS,
            page=PAGE,
            bare_httpx_ms=round(median(http_ms), 3),
        )
    ]


BENCHES: dict[str, Callable[[BenchEnv], list[Figure]]] = {
    "rest_insert": bench_insert,
    "rest_select": bench_select,
    "rest_select_agent": lambda env: bench_select(env, "agent"),
}
