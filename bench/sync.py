"""Sync engine benchmarks (sync/): the outbox flush, the initial pull, realtime to cache.

outbox_flush       10,000 messages queued offline, flushed by the engine (upsert batches of 500,
                   ignore-duplicates, return=minimal) — messages/s. Baseline: the seed's loop, one
                   supabase-py insert per message (measured on 300 messages, same client stack).
initial_pull       50,000 messages over 500 tickets pulled into an empty cache by the engine
                   (sync_* RPC pages of 1000, next page prefetched while the writer thread applies
                   the current one; FTS5 index maintained) — messages/s. Baseline: raw psycopg
                   (superuser, one query) → sqlite3 executemany of the same rows, no HTTP, no RLS.
realtime_to_cache  from the start of a server-side insert (superuser psycopg) until the message is in the
                   engine's cache (MessagesChanged event), p50 ms with p99 as an extra field. Baseline:
                   raw LISTEN/NOTIFY from the start of the same insert (notify in the inserting
                   transaction) to a psycopg listener on the same machine.
offline_shown      seconds from the network going dead (tests/faultproxy.py stalls every byte, as a Wi-Fi whose
                   upstream died) until the engine's status says offline, median of OFFLINE_ROUNDS, the engine with
                   the app's 20 s request timeout and idle (no write, periodic pull an hour away). Baseline: that
                   timeout, the least a failed request takes to say it. Extra: the probe's pings per minute on an
                   idle, online socket, and the request count the proxy saw meanwhile (the probe makes none).

Bench data is seeded with SQL as the superuser (session_replication_role=replica, cursors stamped
like the triggers would), as localbase/demo.py does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

from bench.harness import BenchEnv, Figure, figure, median, percentile
from sync import RemoteConfig, SyncEngine, events
from tests.conftest import User, create_user
from tests.faultproxy import FaultProxy

FLUSH_MESSAGES = 10_000
NAIVE_MESSAGES = 300
PULL_TICKETS = 500
PULL_MESSAGES = 50_000
REALTIME_ROUNDS = 60
OFFLINE_ROUNDS = 3
OFFLINE_WAIT = 150.0  # seconds a round waits for "offline" before it gives up (main took ~70)
IDLE_WINDOW = 30.0  # seconds of an idle, online engine over which pings and requests are counted
APP_TIMEOUT = 20.0  # the app's request timeout (SupabaseRemote's default)


def _seed_tickets(db_url: str, customer: User, assignee: User, count: int) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "insert into public.tickets (customer_id, assignee_id, subject)"
            " select %s, %s, 'bench ' || g from generate_series(1, %s) g returning id",
            (customer.id, assignee.id, count),
        ).fetchall()
    return [str(r[0]) for r in rows]


async def _engine(env: BenchEnv, user: User, name: str) -> SyncEngine:
    engine = await SyncEngine.open(
        RemoteConfig(env.stack.api_url, env.stack.anon_key), env.tmp / f"sync-{name}-{uuid.uuid4().hex[:6]}", timeout=60
    )
    await engine.sign_in(user.email, user.password)
    return engine


async def _outbox_flush(env: BenchEnv) -> list[Figure]:
    agent = create_user(env.stack.db_url, "agent")
    tickets = _seed_tickets(env.stack.db_url, env.users.customer, agent, 20)
    engine = await _engine(env, agent, "flush")
    try:
        await engine.sync_once()
        for i in range(FLUSH_MESSAGES):
            engine.commands.send_message(tickets[i % len(tickets)], f"queued offline #{i}")
        assert engine.status.pending == FLUSH_MESSAGES
        started = time.perf_counter()
        sent = await engine.push()
        flush_s = time.perf_counter() - started
        assert sent == FLUSH_MESSAGES and engine.status.pending == 0

        # the seed's way: one insert request per message, through the same client stack
        client: Any = await engine.remote.client()  # type: ignore[attr-defined]
        started = time.perf_counter()
        for i in range(NAIVE_MESSAGES):
            await (
                client.table("messages")
                .insert(
                    {
                        "id": str(uuid.uuid4()),
                        "ticket_id": tickets[i % len(tickets)],
                        "sender_id": agent.id,
                        "content": f"naive #{i}",
                    }
                )
                .execute()
            )
        naive_s = time.perf_counter() - started
    finally:
        await engine.close()
    with psycopg.connect(env.stack.db_url) as conn:
        count = conn.execute(
            "select count(*) from messages where sender_id = %s and content like 'queued offline #%%'", (agent.id,)
        ).fetchone()
    assert count == (FLUSH_MESSAGES,)
    rate, naive_rate = FLUSH_MESSAGES / flush_s, NAIVE_MESSAGES / naive_s
    return [
        figure(
            "outbox_flush",
            rate,
            "msg/s",
            "one insert request per message",
            naive_rate,
            higher_is_better=True,
            messages=FLUSH_MESSAGES,
            seconds=round(flush_s, 3),
            naive_sample=NAIVE_MESSAGES,
            goal=">= 20x and >= 5,000 msg/s",
        )
    ]


def _seed_messages(db_url: str, tickets: list[str], customer: User, agent: User, total: int) -> None:
    per = total // len(tickets)
    with psycopg.connect(db_url) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")  # triggers off; we stamp what they would
        conn.execute(
            "insert into public.messages"
            " (ticket_id, sender_id, content, is_internal, created_at, change_xid, change_id)"
            " select t.id, case when g %% 2 = 0 then %s::uuid else %s::uuid end,"
            "  'message ' || g || ' about ' || left(t.id::text, 8) || ': the quick brown fox jumps over the lazy dog',"
            "  g %% 17 = 0, now() - make_interval(secs => %s - g),"
            "  pg_current_xact_id()::text::bigint, nextval('private.change_seq')"
            " from unnest(%s::uuid[]) as t(id), generate_series(1, %s) g",
            (customer.id, agent.id, per, tickets, per),
        )
        conn.execute(
            "update public.tickets set last_message_at = now(),"
            " change_xid = pg_current_xact_id()::text::bigint, change_id = nextval('private.change_seq')"
            " where id = any(%s::uuid[])",
            (tickets,),
        )


async def _initial_pull(env: BenchEnv) -> list[Figure]:
    agent = create_user(env.stack.db_url, "agent")
    tickets = _seed_tickets(env.stack.db_url, env.users.customer2, agent, PULL_TICKETS)
    _seed_messages(env.stack.db_url, tickets, env.users.customer2, agent, PULL_MESSAGES)
    engine = await _engine(env, agent, "pull")
    try:
        started = time.perf_counter()
        await engine.sync_once()
        pull_s = time.perf_counter() - started
        cached = engine.cache.count("messages")
        assert cached == PULL_MESSAGES, cached
    finally:
        await engine.close()

    # baseline: raw psycopg → sqlite3, the same rows, no HTTP, no RLS, no FTS
    path: Path = env.tmp / f"raw-{uuid.uuid4().hex[:6]}.sqlite3"
    started = time.perf_counter()
    with psycopg.connect(env.stack.db_url) as pg:
        rows = pg.execute(
            "select id::text, ticket_id::text, sender_id::text, content, is_internal,"
            " created_at::text, edited_at::text, deleted_at::text from public.messages"
            " where ticket_id = any(%s::uuid[])",
            (tickets,),
        ).fetchall()
    lite = sqlite3.connect(path)
    lite.execute("pragma journal_mode = wal")
    lite.execute(
        "create table messages (id text primary key, ticket_id text, sender_id text, content text,"
        " is_internal integer, created_at text, edited_at text, deleted_at text)"
    )
    with lite:
        lite.executemany("insert into messages values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    lite.close()
    raw_s = time.perf_counter() - started
    return [
        figure(
            "initial_pull",
            PULL_MESSAGES / pull_s,
            "msg/s",
            "raw psycopg → sqlite3 (no HTTP/RLS/FTS)",
            PULL_MESSAGES / raw_s,
            higher_is_better=True,
            messages=PULL_MESSAGES,
            tickets=PULL_TICKETS,
            seconds=round(pull_s, 3),
            goal="≥ 20,000 msg/s",
        )
    ]


async def _realtime_to_cache(env: BenchEnv) -> list[Figure]:
    agent = create_user(env.stack.db_url, "agent")
    ticket = _seed_tickets(env.stack.db_url, env.users.customer, agent, 1)[0]
    engine = await _engine(env, agent, "live")
    arrived: dict[str, float] = {}

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.MessagesChanged):
            now = time.perf_counter()
            for mid in event.message_ids:
                arrived.setdefault(mid, now)

    engine.subscribe(on_event)
    engine.loop.poll_interval = 3600
    samples: list[float] = []
    try:
        await engine.start()
        deadline = time.monotonic() + 30
        while not (
            engine.remote.live.subscribed
            and engine.status.state == "online"  # type: ignore[attr-defined]
            and not engine.loop.pull_pending
            and not engine.status.syncing
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("realtime did not subscribe")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        async with await psycopg.AsyncConnection.connect(env.stack.db_url, autocommit=True) as conn:
            for i in range(REALTIME_ROUNDS):
                mid = str(uuid.uuid4())
                committed = time.perf_counter()  # both sides are timed from the start of the insert
                await conn.execute(
                    "insert into public.messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
                    (mid, ticket, env.users.customer.id, f"live {i}"),
                )
                while mid not in arrived:
                    if time.perf_counter() - committed > 10:
                        raise RuntimeError("a realtime change never reached the cache")
                    await asyncio.sleep(0.0005)
                samples.append((arrived[mid] - committed) * 1000)
                await asyncio.sleep(0.02)
        checks = engine.parts.live.catch_up.checks  # realtime catch-up pulls asked for meanwhile (sync/catchup.py)
    finally:
        await engine.close()

    # baseline: raw LISTEN/NOTIFY, notify sent by the inserting transaction
    base: list[float] = []
    async with (
        await psycopg.AsyncConnection.connect(env.stack.db_url, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(env.stack.db_url, autocommit=True) as writer,
    ):
        await listener.execute("listen bench_sync")
        heard: asyncio.Queue[float] = asyncio.Queue()

        async def listen() -> None:
            async for _ in listener.notifies():
                heard.put_nowait(time.perf_counter())

        reader = asyncio.create_task(listen())
        try:
            for i in range(REALTIME_ROUNDS):
                committed = time.perf_counter()
                async with writer.transaction():
                    await writer.execute(
                        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                        (ticket, env.users.customer.id, f"notify {i}"),
                    )
                    await writer.execute("select pg_notify('bench_sync', %s)", (str(i),))
                got = await asyncio.wait_for(heard.get(), 10)
                base.append((max(got, committed) - committed) * 1000)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    return [
        figure(
            "realtime_to_cache",
            median(samples),
            "ms",
            "raw LISTEN/NOTIFY, insert → notification",
            median(base),
            higher_is_better=False,
            p99_ms=round(percentile(samples, 99), 3),
            rounds=REALTIME_ROUNDS,
            baseline_p99_ms=round(percentile(base, 99), 3),
            catch_up_pulls=checks,
        )
    ]


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``predicate`` held (polled every 50 ms); RuntimeError naming ``what`` after ``timeout``."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def _offline_shown(env: BenchEnv) -> list[Figure]:
    agent = create_user(env.stack.db_url, "agent")
    _seed_tickets(env.stack.db_url, env.users.customer, agent, 1)
    url = urlparse(env.stack.api_url)
    proxy = FaultProxy(url.hostname or "127.0.0.1", url.port or 80).start()
    engine = await SyncEngine.open(
        RemoteConfig(proxy.url, env.stack.anon_key),
        env.tmp / f"sync-offline-{uuid.uuid4().hex[:6]}",
        timeout=APP_TIMEOUT,
    )
    await engine.sign_in(agent.email, agent.password)
    engine.loop.poll_interval = 3600
    link: Any = engine.remote.live
    samples: list[float] = []
    try:
        await engine.start()

        def online() -> bool:
            return bool(link.subscribed) and engine.status.state == "online" and not engine.status.syncing

        await _until(online, 60, "online")
        await asyncio.sleep(1.0)
        probes, requests = getattr(link, "probes", 0), proxy.requests
        await asyncio.sleep(IDLE_WINDOW)
        pings = (getattr(link, "probes", 0) - probes) * 60 / IDLE_WINDOW
        idle_requests = (proxy.requests - requests) * 60 / IDLE_WINDOW
        for _ in range(OFFLINE_ROUNDS):
            proxy.set_mode("stall")
            samples.append(await _until(lambda: engine.status.state == "offline", OFFLINE_WAIT, "offline"))
            proxy.set_mode("pass")
            proxy.cut()  # the stalled connections, as the OS ends them after an outage
            await _until(online, 90, "online again")
            await asyncio.sleep(2.0)
    finally:
        await engine.close()
        proxy.stop()
    return [
        figure(
            "offline_shown",
            median(samples),
            "s",
            f"a stalled request's timeout ({APP_TIMEOUT:.0f} s)",
            APP_TIMEOUT,
            higher_is_better=False,
            rounds=[round(x, 1) for x in samples],
            idle_pings_per_min=round(pings, 1),
            idle_requests_per_min=round(idle_requests, 1),
        )
    ]


def outbox_flush(env: BenchEnv) -> list[Figure]:
    return asyncio.run(_outbox_flush(env))


def initial_pull(env: BenchEnv) -> list[Figure]:
    return asyncio.run(_initial_pull(env))


def realtime_to_cache(env: BenchEnv) -> list[Figure]:
    return asyncio.run(_realtime_to_cache(env))


def offline_shown(env: BenchEnv) -> list[Figure]:
    return asyncio.run(_offline_shown(env))


BENCHES = {
    "outbox_flush": outbox_flush,
    "initial_pull": initial_pull,
    "realtime_to_cache": realtime_to_cache,
    "offline_shown": offline_shown,
}
