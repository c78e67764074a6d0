"""Realtime latency: insert-to-delivery of postgres_changes, with 1, 100 and 500 concurrent subscribers,
and the deliveries/s ceiling.

Each figure inserts messages at INSERT_RATE per second for LOAD_SECONDS through a separate thread (as the
agent, role + claims set like PostgREST does, one transaction per insert, sent as one script: one round trip,
like the baseline's one `pg_notify`; before 2026-11-29's third pass it took three), while raw websocket
subscribers (vsn 1.0.0 frames, as realtime-py sends them) listen on the same ticket: half as the
customer who owns it (filter `ticket_id=eq.`), half as the assigned agent (whole table). Every
subscriber has its own token (own session id), so the server runs one RLS check per subscriber and
insert; nothing is deduplicated. Latency = time the change arrives at a subscriber - time just before
the INSERT was sent; value is p50 in ms, with p99 and losses (expected deliveries that never came).
After its join each subscriber's socket is read by `bench.ws_listener.Listener` (frames split by hand: at 500
subscribers `websockets`' own connection cost the bench ~30 µs of CPU per frame, taken from the server it measures on
the same cores); `BENCH_WS_LISTENER=0` reads them through `websockets` as before 2026-12-02, for an A/B.

Baseline: raw LISTEN/NOTIFY on the same database in the same run, same rate, one listener per
subscriber: the floor for any change notification that PostgreSQL itself delivers. A bare `pg_notify` writes no
WAL, waits for no flush and runs no trigger, so the figure also carries `insert_notify_p50_ms` / `_p99_ms`: the
same listeners, notified from inside the bench's own insert transaction (the agent's insert, its triggers, its
durable commit): what PostgreSQL alone takes from this insert to a listener, the floor for this design.

`realtime_latency_500`: 500 subscribers at 40 inserts/s (the same 20,000 deliveries/s as 100 x 200); its
baseline listens on 150 connections (max_connections is 200).
`realtime_ceiling`: with 100 subscribers, the insert rate doubles from 25/s (2 s per step) until a step
loses a delivery or its p99 passes 1 s (or the writer cannot reach the rate); value = deliveries/s of the last
step that held, at the rate the writer achieved, beside the same search for raw LISTEN/NOTIFY with 100 listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.harness import BenchEnv, Figure, figure, percentile
from bench.ws_listener import Listener
from tests.conftest import User
from tests.stackproc import session_claims

INSERT_RATE = 200
LOAD_SECONDS = 3.0
GRACE_SECONDS = 2.0
_SEQ = re.compile(r'"content":"rt-bench (\d+)"')


def _writer(
    db_url: str,
    agent: User,
    ticket: str,
    sent: dict[int, float],
    *,
    rate: int,
    seconds: float,
    start: float | None = None,
    part: int = 0,
    parts: int = 1,
    notify: bool = False,
) -> None:
    """Insert `rate`/s for `seconds`; with `parts` > 1 this connection makes every `parts`-th insert from `part`.
    With `notify` each transaction also sends `pg_notify('rt_bench', seq)` (the insert-and-notify baseline)."""
    claims = json.dumps(session_claims(db_url, agent.id))  # a live session: staff rights need one (as GoTrue's tokens)
    # one round trip per insert, like the baseline's one `pg_notify`: role, claims, the insert and the commit go as
    # one simple-protocol script (a real insert as the agent, through the same RLS check and triggers)
    script = sql.SQL(
        "begin; select set_config('role', 'authenticated', true), set_config('request.jwt.claims', {claims}, true);"
        " insert into public.messages (ticket_id, content) values ({ticket}, {content});"
        + (" select pg_notify('rt_bench', {seq});" if notify else "")
        + " commit;"
    )
    count = int(rate * seconds)
    with psycopg.connect(db_url, autocommit=True) as conn:
        start = time.perf_counter() if start is None else start
        for seq in range(part, count, parts):
            target = start + seq / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            query = script.format(
                claims=sql.Literal(claims),
                ticket=sql.Literal(ticket),
                content=sql.Literal(f"rt-bench {seq}"),
                seq=sql.Literal(str(seq)),
            ).as_bytes(conn)
            sent[seq] = time.perf_counter()
            conn.execute(query)


def _notifier(
    db_url: str,
    sent: dict[int, float],
    rate: int,
    seconds: float,
    *,
    start: float | None = None,
    part: int = 0,
    parts: int = 1,
) -> None:
    count = int(rate * seconds)
    with psycopg.connect(db_url, autocommit=True) as conn:
        start = time.perf_counter() if start is None else start
        for seq in range(part, count, parts):
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[seq] = time.perf_counter()
            conn.execute("select pg_notify('rt_bench', %s)", (str(seq),))


async def _subscribe(env: BenchEnv, ticket: str, user: User, whole_table: bool) -> ClientConnection:
    stack = env.stack
    url = f"{stack.api_url.replace('http://', 'ws://')}/realtime/v1/websocket?vsn=1.0.0&apikey={stack.anon_key}"
    # no permessage-deflate: Supabase Realtime (Phoenix) does not compress, so its clients never get it
    # no keepalive: after the join the socket is read by a `Listener`, and websockets' pings would go unanswered
    ws = await connect(url, max_size=None, compression=None, ping_interval=None)
    binding: dict[str, Any] = {"event": "INSERT", "schema": "public", "table": "messages"}
    if not whole_table:
        binding["filter"] = f"ticket_id=eq.{ticket}"
    token = stack.mint(sub=user.id, session_id=str(uuid.uuid4()))
    await ws.send(
        json.dumps(
            {
                "topic": "realtime:bench",
                "event": "phx_join",
                "ref": "1",
                "join_ref": "1",
                "payload": {"config": {"postgres_changes": [binding]}, "access_token": token},
            }
        )
    )
    while True:  # the join reply, then the system message once the subscription is live
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["event"] == "phx_reply":
            assert frame["payload"]["status"] == "ok", frame
        if frame["event"] == "system":
            assert frame["payload"]["status"] == "ok", frame
            return ws


async def _receive(ws: ClientConnection, arrived: list[tuple[int, float]]) -> None:
    # a plain iteration (no timeout per message): the client must cost little, it shares the cores being measured
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            now = time.perf_counter()
            if isinstance(raw, str) and (m := _SEQ.search(raw)):
                arrived.append((int(m.group(1)), now))


_SEQ_BYTES = re.compile(rb'"content":"rt-bench (\d+)"')
LISTENER = os.environ.get("BENCH_WS_LISTENER", "1") == "1"  # see the module docstring


def _arrival(got: list[tuple[int, float]]) -> Any:
    def on_text(payload: bytes, arrived: float) -> None:
        if m := _SEQ_BYTES.search(payload):
            got.append((int(m.group(1)), arrived))

    return on_text


def _achieved_rate(sent: dict[int, float]) -> float:
    """Inserts (or notifications) per second the writer actually made: above some rate it cannot keep up."""
    if len(sent) < 2:
        return 0.0
    times = sorted(sent.values())
    return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0


def bench_ticket(env: BenchEnv, subject: str = "bench ticket") -> str:
    """A fresh ticket of the bench's customer, assigned to its agent."""
    users = env.users
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id::text",
            (users.customer.id, users.agent.id, subject),
        ).fetchone()
    assert row is not None
    return str(row[0])


async def _insert(
    env: BenchEnv, ticket: str, sent: dict[int, float], *, rate: int, seconds: float, writers: int, notify: bool = False
) -> None:
    """The agent's inserts into `ticket` at `rate`/s for `seconds` over `writers` connections sharing one schedule."""
    start = time.perf_counter() + 0.05  # the writer connections connect first
    await asyncio.gather(
        *(
            asyncio.to_thread(
                _writer,
                env.stack.db_url,
                env.users.agent,
                ticket,
                sent,
                rate=rate,
                seconds=seconds,
                start=start,
                part=k,
                parts=writers,
                notify=notify,
            )
            for k in range(writers)
        )
    )


async def _realtime_run(
    env: BenchEnv,
    subscribers: int,
    rate: int = INSERT_RATE,
    seconds: float = LOAD_SECONDS,
    *,
    achieved: list[float] | None = None,
    writers: int = 1,
) -> tuple[list[float], int]:
    users = env.users
    ticket = bench_ticket(env)
    sockets = []
    for i in range(subscribers):
        as_customer = i % 2 == 0
        sockets.append(
            await _subscribe(env, ticket, users.customer if as_customer else users.agent, whole_table=not as_customer)
        )
    arrivals: list[list[tuple[int, float]]] = [[] for _ in sockets]
    sent: dict[int, float] = {}
    if LISTENER:
        listeners = [Listener.take(ws, _arrival(got)) for ws, got in zip(sockets, arrivals, strict=True)]
        await _insert(env, ticket, sent, rate=rate, seconds=seconds, writers=writers)
        await asyncio.sleep(GRACE_SECONDS)
        await asyncio.gather(*(listener.close() for listener in listeners))
    else:
        readers = [asyncio.create_task(_receive(ws, got)) for ws, got in zip(sockets, arrivals, strict=True)]
        await _insert(env, ticket, sent, rate=rate, seconds=seconds, writers=writers)
        await asyncio.sleep(GRACE_SECONDS)
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.gather(*readers)
    latencies = [(t - sent[seq]) * 1000 for got in arrivals for seq, t in got if seq in sent]
    if achieved is not None:
        achieved.append(_achieved_rate(sent))
    expected = len(sent) * subscribers
    return latencies, expected - len(latencies)


async def _notify_run(
    env: BenchEnv,
    listeners: int,
    rate: int = INSERT_RATE,
    seconds: float = LOAD_SECONDS,
    *,
    achieved: list[float] | None = None,
    writers: int = 1,
    insert: bool = False,
) -> tuple[list[float], int]:
    """Raw LISTEN/NOTIFY: `pg_notify` alone, or with `insert` inside the bench's own insert transaction (the same
    insert as the agent, its triggers and its commit, then the notification PostgreSQL delivers at that commit)."""
    conns = []
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(listeners)]
    for _ in range(listeners):
        conn = await psycopg.AsyncConnection.connect(env.stack.db_url, autocommit=True)
        await conn.execute("listen rt_bench")
        conns.append(conn)

    async def listen(conn: psycopg.AsyncConnection[Any], got: list[tuple[int, float]]) -> None:
        async for note in conn.notifies(timeout=seconds + GRACE_SECONDS + 1):
            got.append((int(note.payload), time.perf_counter()))

    tasks = [asyncio.create_task(listen(c, got)) for c, got in zip(conns, arrivals, strict=True)]
    sent: dict[int, float] = {}
    if insert:
        await _insert(env, bench_ticket(env), sent, rate=rate, seconds=seconds, writers=writers, notify=True)
    else:
        start = time.perf_counter() + 0.05
        await asyncio.gather(
            *(
                asyncio.to_thread(_notifier, env.stack.db_url, sent, rate, seconds, start=start, part=k, parts=writers)
                for k in range(writers)
            )
        )
    await asyncio.gather(*tasks)
    for conn in conns:
        await conn.close()
    latencies = [(t - sent[seq]) * 1000 for got in arrivals for seq, t in got if seq in sent]
    if achieved is not None:
        achieved.append(_achieved_rate(sent))
    return latencies, len(sent) * listeners - len(latencies)


def _bench(name: str, subscribers: int, rate: int = INSERT_RATE) -> Any:
    def run(env: BenchEnv) -> list[Figure]:
        listeners = min(subscribers, MAX_LISTENERS)
        base, base_lost = asyncio.run(_notify_run(env, listeners, rate))
        floor, floor_lost = asyncio.run(_notify_run(env, listeners, rate, insert=True))
        lat, lost = asyncio.run(_realtime_run(env, subscribers, rate))
        return [
            figure(
                name,
                percentile(lat, 50),
                "ms p50",
                f"LISTEN/NOTIFY x{listeners} p50",
                percentile(base, 50),
                higher_is_better=False,
                p99_ms=round(percentile(lat, 99), 3),
                losses=lost,
                subscribers=subscribers,
                inserts_per_s=rate,
                deliveries=len(lat),
                baseline_p99_ms=round(percentile(base, 99), 3),
                baseline_losses=base_lost,
                # the same insert transaction with a pg_notify in it: what PostgreSQL itself takes from this insert
                # to a listener (the headline baseline's bare pg_notify writes no WAL and runs no trigger)
                insert_notify_p50_ms=round(percentile(floor, 50), 3),
                insert_notify_p99_ms=round(percentile(floor, 99), 3),
                insert_notify_losses=floor_lost,
            )
        ]

    return run


MAX_LISTENERS = 150  # PostgreSQL's max_connections is 200: the 500-subscriber baseline listens on 150
CEILING_SUBSCRIBERS = 100
CEILING_STEP_SECONDS = 2.0
CEILING_RATES = (25, 50, 100, 200, 400, 800, 1600)
CEILING_RATE_PER_WRITER = 100


def _ceiling(env: BenchEnv, run: Any) -> tuple[int, list[dict[str, Any]]]:
    """The highest deliveries/s (at the insert rate the writer achieved) of the doubling rates that lost nothing
    with p99 <= 1 s, and every step. A rate the writer cannot reach ends the search: past it only batches grow."""
    held, steps = 0, []
    for rate in CEILING_RATES:
        achieved: list[float] = []
        writers = max(1, -(-rate // CEILING_RATE_PER_WRITER))  # one connection cannot insert much over ~200/s
        lat, lost = asyncio.run(
            run(env, CEILING_SUBSCRIBERS, rate, CEILING_STEP_SECONDS, achieved=achieved, writers=writers)
        )
        p99 = percentile(lat, 99)
        made = achieved[0] if achieved else float(rate)
        steps.append(
            {
                "inserts_per_s": rate,
                "achieved_per_s": round(made, 1),
                "writers": writers,
                "p99_ms": round(p99, 1),
                "losses": lost,
            }
        )
        if lost or not p99 <= 1000:
            break
        held = round(min(rate, made) * CEILING_SUBSCRIBERS)
        if made < 0.9 * rate:
            break
    return held, steps


def _writer_bound(steps: list[dict[str, Any]]) -> bool:
    if not steps:
        return False
    last = steps[-1]
    held = not last["losses"] and last["p99_ms"] <= 1000
    return bool(held and last["achieved_per_s"] < 0.9 * last["inserts_per_s"])


def ceiling_bench(env: BenchEnv) -> list[Figure]:
    base, base_steps = _ceiling(env, _notify_run)
    value, steps = _ceiling(env, _realtime_run)
    return [
        figure(
            "realtime_ceiling",
            value,
            "deliveries/s",
            f"LISTEN/NOTIFY x{CEILING_SUBSCRIBERS} ceiling",
            base,
            higher_is_better=True,
            subscribers=CEILING_SUBSCRIBERS,
            # the last step ended because the one writer connection fell short of the rate: a lower bound
            writer_bound=_writer_bound(steps),
            baseline_writer_bound=_writer_bound(base_steps),
            steps=steps,
            baseline_steps=base_steps,
        )
    ]


BENCHES = {
    "realtime_latency_1": _bench("realtime_latency_1", 1),
    "realtime_latency_100": _bench("realtime_latency_100", 100),
    "realtime_latency_500": _bench("realtime_latency_500", 500, rate=40),
    "realtime_ceiling": ceiling_bench,
}
