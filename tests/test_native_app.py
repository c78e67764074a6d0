"""The app in its native window (pywebview with Qt WebEngine) under Xvfb: `supportchat` starts, restores
the saved session and the window shows the inbox; saves artifacts/native-inbox.png to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sync import RemoteConfig, SyncEngine
from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess

pytestmark = pytest.mark.native

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DISPLAY = ":99"


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed: apt-get install -y xvfb imagemagick (see the test module docstring)")
    proc = None
    if not Path(f"/tmp/.X11-unix/X{DISPLAY[1:]}").exists():
        proc = subprocess.Popen(
            ["Xvfb", DISPLAY, "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{DISPLAY[1:]}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.1)
    try:
        yield DISPLAY
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


def window_titles(display: str) -> list[str]:
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DISPLAY": display},
    ).stdout
    return re.findall(r'^\s+0x[0-9a-f]+ "([^"]*)": \(', out, flags=re.M)


async def test_native_window_shows_the_inbox(
    xvfb: str, stack: StackProcess, users: Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "native-data"
    monkeypatch.setenv("SUPPORTCHAT_SESSION_STORE", "file")
    # sign in once, as yesterday's session the app will restore
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir=data)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.close()
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (users.customer.id, users.agent.id, "Window test: unread question"),
        ).fetchone()
        assert row is not None
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)",
            (row[0], users.customer.id, "Is anyone there?"),
        )

    app = AppProcess(
        data,
        stack.api_url,
        stack.anon_key,
        web=False,
        extra_env={"DISPLAY": xvfb, "PYWEBVIEW_GUI": "qt", "QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox"},
    )
    app.start(timeout=90)
    try:
        # the inbox sets the window title to "(unread) SupportChat"; the sign-in page would be "Sign in · ..."
        deadline = time.monotonic() + 60
        while not any(re.fullmatch(r"\(\d+\) SupportChat", t) for t in window_titles(xvfb)):
            assert app.proc is not None and app.proc.poll() is None, f"the app died; see {app.log_path}"
            assert time.monotonic() < deadline, f"no inbox window; windows: {window_titles(xvfb)}"
            time.sleep(0.5)
        # the title is set as the page loads; wait until the window has painted the inbox (an unpainted
        # screen compresses to almost nothing) rather than sleeping for a guessed time
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "native-inbox.png"
        deadline = time.monotonic() + 60
        while True:
            subprocess.run(["import", "-window", "root", str(shot)], check=True, env={**os.environ, "DISPLAY": xvfb})
            if shot.stat().st_size > 10_000:
                break
            assert time.monotonic() < deadline, "the window never painted the inbox"
            time.sleep(0.5)  # poll interval of the wait above
        assert not [t for t in window_titles(xvfb) if t.startswith("Sign in")]
    finally:
        app.stop()
    assert app.proc is None
