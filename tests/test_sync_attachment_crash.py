"""Crash safety of the attachment queue: a client process killed with SIGKILL at 20 points while it
flushes 45 replies of three files each, restarted each time, loses nothing and duplicates nothing — every
reply reaches the server exactly once with exactly its three files and their rows, no object is left
without its row — and its cache file stays intact. The child is the real engine against the real stack
(tests/test_sync_crash.py's harness)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from sync import RemoteConfig, SyncEngine
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_crash import _child, _quick_check
from tests.test_sync_support import seed_ticket, sql

REPLIES = 45  # enough work that 20 kills land before the flush ends (30: it ended after 18, 2 runs in 8)
FILES = 3
KILLS = 20


@pytest.mark.slow
async def test_sigkill_while_replies_with_files_flush(stack: StackProcess, users: Users, tmp_path: Path) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Crash test with files")
    data_dir = tmp_path / "crashy-files"
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.sync_once()
    rng = random.Random(int(os.environ.get("SYNC_CRASH_SEED", "7")))
    ids = []
    for i in range(REPLIES):
        paths = []
        for j in range(FILES):
            path = tmp_path / f"r{i:02d}-{j}.png"
            path.write_bytes(os.urandom(rng.randint(1_000, 150_000)))
            paths.append(path)
        ids.append(engine.commands.send_message(tid, f"reply {i:02d}", files=paths).id)
    cache = engine.cache_path(users.agent.id)
    await engine.close()

    kills = 0
    progress: list[int] = []
    deadline = time.monotonic() + 300
    while kills < KILLS and time.monotonic() < deadline:
        child = _child(stack, data_dir)
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("start"), line
        if int(line.split()[1]) == 0:
            child.wait(30)
            break
        assert child.stdout.readline().startswith("flushing")
        time.sleep(rng.uniform(0.0, 0.15))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(30)
        child.stdout.close()
        assert _quick_check(cache) == "ok"
        progress.append(sql(stack.db_url, "select count(*) from storage.objects where name like %s", f"{tid}/%")[0][0])
    assert kills >= KILLS, f"only {kills} kills landed during the flush"
    assert len({p for p in progress if 0 < p < REPLIES * FILES}) >= KILLS // 3, progress

    child = _child(stack, data_dir)
    out, _ = child.communicate(timeout=180)
    assert child.returncode == 0 and "done 0" in out, out

    messages = sql(stack.db_url, "select content, count(*) from messages where ticket_id = %s group by content", tid)
    assert len(messages) == REPLIES and all(n == 1 for _, n in messages)  # none lost, none duplicated
    per_message = sql(
        stack.db_url,
        "select message_id::text, count(*) from public.attachments where ticket_id = %s group by message_id",
        tid,
    )
    assert sorted(per_message) == sorted((i, FILES) for i in ids)
    objects = {
        r[0]
        for r in sql(
            stack.db_url,
            "select name from storage.objects where bucket_id = 'attachments' and name like %s",
            f"{tid}/%",
        )
    }
    described = {
        r[0] for r in sql(stack.db_url, "select object_path from public.attachments where ticket_id = %s", tid)
    }
    # no object without its row, nor a row without its bytes
    assert objects == described and len(objects) == REPLIES * FILES
    conn = sqlite3.connect(cache)
    try:
        assert conn.execute("select count(*) from outbox").fetchone() == (0,)
        assert conn.execute(
            "select local_state, count(*) from attachments where ticket_id = ? group by local_state", (tid,)
        ).fetchall() == [("sent", REPLIES * FILES)]
    finally:
        conn.close()
