"""What a message delete costs a cache afterwards: the scrub that makes the deleted text unrecoverable from the
file (``Cache.scrub``: sync/cache/history.py rewrites the FTS5 search index, then the WAL is checkpointed).

delete_scrub  one message's text dropped (the update the tombstone makes, through the cache's FTS triggers),
              then ``Cache.scrub`` timed, on a cache of 100,000 messages against the same on a cache of
              10,000 (the baseline). Ratio = time at 10k / time at 100k: about 1 when a delete's scrub costs
              the same whatever the cache holds, about 0.1 when it is proportional to the cache (as with
              FTS5's 'optimize', which rewrites the whole index). Median of ROUNDS deletes per cache.
              Local only: the caches are filled with SQL straight into the file (random words from a small
              vocabulary, one big index segment as after an initial sync), no server involved.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
import uuid
from pathlib import Path

from bench.harness import BenchEnv, Figure, figure
from sync.cache import Cache

SIZES = (10_000, 100_000)
ROUNDS = 5
_WORDS = [f"w{i:04d}" for i in range(3000)] + ["refund", "invoice", "password", "login", "crash", "thanks"]


def _fill(path: Path, messages: int) -> list[str]:
    """A cache file (schema from ``Cache.open``) holding ``messages`` messages over tickets of 20; returns ids."""
    Cache.open(path, "00000000-0000-4000-8000-000000000001", "agent").close()
    rnd = random.Random(messages)
    ids = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(messages)]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("begin")
        for t in range(0, messages, 20):
            tid = f"t{t:08d}"
            conn.execute(
                "insert into tickets (id, customer_id, subject, status, priority, created_at, updated_at,"
                " last_message_at) values (?, 'c', 'subject', 'open', 'normal', '2026-01-01', '2026-01-01',"
                " '2026-01-01')",
                (tid,),
            )
            conn.executemany(
                "insert into messages (id, ticket_id, sender_id, content, created_at) values (?, ?, 's', ?, ?)",
                [
                    (ids[i], tid, " ".join(rnd.choices(_WORDS, k=12)), f"2026-01-01T00:{i % 60:02d}:00")
                    for i in range(t, min(t + 20, messages))
                ],
            )
        conn.execute("insert into messages_fts (messages_fts) values ('rebuild')")
        conn.execute("commit")
        conn.execute("insert into messages_fts (messages_fts) values ('optimize')")
        conn.execute("pragma wal_checkpoint(truncate)")
    finally:
        conn.close()
    return ids


async def _scrub_times(path: Path, ids: list[str]) -> list[float]:
    cache = await asyncio.to_thread(Cache.open, path, "00000000-0000-4000-8000-000000000001", "agent")
    times: list[float] = []
    try:
        for round_ in range(ROUNDS):
            victim = ids[(round_ + 1) * len(ids) // (ROUNDS + 1)]
            conn = sqlite3.connect(path, isolation_level=None)
            try:  # what a tombstone does to the row (sync/cache/history.py drop_text), the FTS entry by trigger
                conn.execute("update messages set content = '', deleted_at = '2026-01-02' where id = ?", (victim,))
            finally:
                conn.close()
            started = time.perf_counter()
            await cache.scrub()
            times.append(time.perf_counter() - started)
    finally:
        cache.close()
    return times


def _delete_scrub(env: BenchEnv) -> list[Figure]:
    medians: dict[int, float] = {}
    runs: dict[int, list[float]] = {}
    for size in SIZES:
        path = env.tmp / f"scrub-{size}.db"
        ids = _fill(path, size)
        runs[size] = asyncio.run(_scrub_times(path, ids))
        medians[size] = statistics.median(runs[size])
    small, large = SIZES
    return [
        figure(
            "delete_scrub",
            medians[large],
            "s",
            f"same scrub, {small:,}-message cache",
            medians[small],
            higher_is_better=False,
            messages=large,
            baseline_messages=small,
            goal="ratio ~1 (independent of the cache size)",
            runs_s={str(k): [round(x, 4) for x in v] for k, v in runs.items()},
        )
    ]


BENCHES = {"delete_scrub": _delete_scrub}
