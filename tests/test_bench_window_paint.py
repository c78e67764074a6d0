"""bench/window_paint.py and bench/desk.py's `desktop_paints`: the inbox's first paint measured in the desktop app's
own window (pywebview's Qt WebEngine view under Xvfb), by the same criterion as the `inbox_5k` figure; on a desk of
30 known tickets."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import psycopg
import pytest

from bench.desk import desktop_paints, presync, seed_desk
from bench.window_paint import desktop_env
from tests.conftest import Users, create_user
from tests.stackproc import StackProcess

pytestmark = pytest.mark.native

TICKETS = 30


async def test_desktop_window_reports_the_rows_paint(
    stack: StackProcess, users: Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed: apt-get install -y xvfb (see .ci/run)")
    agent = create_user(stack.db_url, "agent")
    seed_desk(stack.db_url, users.customer, agent, tickets=TICKETS)
    with psycopg.connect(stack.db_url) as conn:
        desk = {str(r[0]) for r in conn.execute("select id from tickets where assignee_id = %s", (agent.id,))}
    assert len(desk) == TICKETS
    data = tmp_path / "desktop-data"
    monkeypatch.setenv("SUPPORTCHAT_SESSION_STORE", "file")
    await presync(stack.api_url, stack.anon_key, data, agent, tickets=TICKETS)

    got = desktop_paints(data, stack.api_url, stack.anon_key, runs=2)

    assert len(got.paints) == 2 and all(0 < t < 120_000 for t in got.paints)
    # the rows painted are 20 of the desk's tickets (and the live list's own: desktop_paints checks that)
    assert all(len(rows) == 20 and set(rows) <= desk for rows in got.rows)
    # the engine's own paint timing answered
    assert all(f is not None and f > 0 for f in got.fcps), (got.fcps, got.phases, got.paints)
    # Navigation Timing answered too, and the live list was seen in a frame of every load
    assert all(0 < end and 0 < loaded for end, loaded in got.phases)
    assert all(m > 0 for m in got.mounts)
    assert got.cpu_ms_per_paint > 0


def test_desktop_env_is_the_qt_window_with_a_devtools_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTWEBENGINE_CHROMIUM_FLAGS", "--lang=de")
    env = desktop_env(":91", 9555)
    assert env["PYWEBVIEW_GUI"] == "qt" and env["DISPLAY"] == ":91"
    assert env["QTWEBENGINE_REMOTE_DEBUGGING"] == "127.0.0.1:9555"
    flags = env["QTWEBENGINE_CHROMIUM_FLAGS"].split()
    assert flags[0] == "--lang=de"
    assert ("--no-sandbox" in flags) == (os.geteuid() == 0)
    assert not [f for f in flags if re.match(r"--(disable-gpu|enable-gpu)", f)]
