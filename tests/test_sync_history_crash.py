"""Crash safety of edits and deletes (issue 13): a client killed with SIGKILL at random points while it flushes
queued edits (two chained edits per message) and deletes, restarted each time, applies every edit exactly once
— each message ends with its last text and exactly one revision per edit — and every delete, and its cache
file stays intact. The child is a real process running the real engine against the real stack, as in
tests/test_sync_crash.py.
"""

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

EDITED = 50
DELETED = 20
KILLS = 10


@pytest.mark.slow
async def test_sigkill_while_edits_and_deletes_flush_applies_each_exactly_once(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Crash test: edits")
    data_dir = tmp_path / "crashy"
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.sync_once()
    edited = [engine.commands.send_message(tid, f"edit-{i:03d} v1").id for i in range(EDITED)]
    deleted = [engine.commands.send_message(tid, f"delete-{i:03d}").id for i in range(DELETED)]
    await engine.sync_once()
    for i, mid in enumerate(edited):
        engine.history.edit_message(mid, f"edit-{i:03d} v2")
    for i, mid in enumerate(edited):
        engine.history.edit_message(mid, f"edit-{i:03d} v3")
    for mid in deleted:
        engine.history.delete_message(mid)
    assert engine.status.pending == 2 * EDITED + DELETED
    cache = engine.cache_path(users.agent.id)
    await engine.close()

    rng = random.Random(int(os.environ.get("SYNC_CRASH_SEED", "7")))
    kills = 0
    progress: list[int] = []
    deadline = time.monotonic() + 240
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
        progress.append(sql(stack.db_url, "select count(*) from message_revisions where ticket_id = %s", tid)[0][0])
    assert kills >= KILLS, f"only {kills} kills landed during the flush"
    assert len({p for p in progress if 0 < p < 2 * EDITED}) >= KILLS // 2, progress

    child = _child(stack, data_dir)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and "done 0" in out, out

    rows = dict(sql(stack.db_url, "select id::text, content from messages where ticket_id = %s", tid))
    assert {rows[mid] for mid in deleted} == {""}
    assert [rows[mid] for mid in edited] == [f"edit-{i:03d} v3" for i in range(EDITED)]
    revisions = sql(
        stack.db_url,
        "select message_id::text, content from message_revisions where ticket_id = %s order by message_id, replaced_at",
        tid,
    )
    by_message: dict[str, list[str]] = {}
    for message_id, content in revisions:
        by_message.setdefault(message_id, []).append(content)
    # each edit applied once: one revision per edit, in order, none for a message deleted
    assert by_message == {mid: [f"edit-{i:03d} v1", f"edit-{i:03d} v2"] for i, mid in enumerate(edited)}
    conn = sqlite3.connect(cache)
    try:
        assert conn.execute("select count(*) from outbox").fetchone() == (0,)
        local = dict(conn.execute("select id, content from messages where ticket_id = ?", (tid,)).fetchall())
        assert local == rows
    finally:
        conn.close()
