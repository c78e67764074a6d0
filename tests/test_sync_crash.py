"""Crash safety: a client process killed with SIGKILL at random points while flushing 1,000
queued messages, restarted each time, loses none and duplicates none, and its cache file stays
intact. The child is a real process running the real engine against the real stack.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync import RemoteConfig, SyncEngine
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, sql

MESSAGES = 1000
KILLS = 20

CHILD = """
import asyncio, sys
from pathlib import Path
from sync import RemoteConfig, SyncEngine, events

async def main() -> None:
    engine = await SyncEngine.open(RemoteConfig(sys.argv[1], sys.argv[2]), Path(sys.argv[3]))
    engine.parts.pusher.max_batch = 2  # many small requests: many distinct points to be killed at
    print("start", engine.status.pending, flush=True)
    said = []

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.MessagesChanged) and not said:
            said.append(1)
            print("flushing", flush=True)  # the first batch is acknowledged: we are mid-flush

    engine.subscribe(on_event)
    await engine.sync_once(pull=False)
    print("done", engine.status.pending, flush=True)
    await engine.close()

asyncio.run(main())
"""


def _child(stack: StackProcess, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, stack.api_url, stack.anon_key, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def _quick_check(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("pragma quick_check").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
async def test_sigkill_during_flush_loses_nothing_and_duplicates_nothing(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Crash test")
    data_dir = tmp_path / "crashy"
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.sync_once()
    ids = [engine.commands.send_message(tid, f"crash-{i:04d}").id for i in range(MESSAGES)]
    assert engine.status.pending == MESSAGES
    cache = engine.cache_path(users.agent.id)
    await engine.close()

    rng = random.Random(int(os.environ.get("SYNC_CRASH_SEED", "4")))
    kills = 0
    progress: list[int] = []
    deadline = time.monotonic() + 600  # a bound on the loop only: each child costs a Python start, slow under load
    while kills < KILLS and time.monotonic() < deadline:
        child = _child(stack, data_dir)
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("start"), line
        if int(line.split()[1]) == 0:
            child.wait(30)
            break
        assert child.stdout.readline().startswith("flushing")
        time.sleep(rng.uniform(0.0, 0.08))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(30)
        child.stdout.close()
        assert _quick_check(cache) == "ok"
        progress.append(sql(stack.db_url, "select count(*) from messages where ticket_id = %s", tid)[0][0])
    assert kills >= KILLS, f"only {kills} kills landed during the flush"
    # the kills landed at many different points of the flush, not all before or after it
    assert len({p for p in progress if 0 < p < MESSAGES}) >= KILLS // 2, progress

    child = _child(stack, data_dir)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and "done 0" in out, out

    rows = sql(stack.db_url, "select content, count(*) from messages where ticket_id = %s group by content", tid)
    assert len(rows) == MESSAGES  # none lost
    assert all(count == 1 for _, count in rows)  # none duplicated
    assert sql(stack.db_url, "select count(*) from messages where id = any(%s)", ids) == [(MESSAGES,)]
    conn = sqlite3.connect(cache)
    try:
        assert conn.execute("select count(*) from outbox").fetchone() == (0,)
        assert conn.execute(
            "select local_state, count(*) from messages where ticket_id = ? group by local_state", (tid,)
        ).fetchall() == [("sent", MESSAGES)]
    finally:
        conn.close()
