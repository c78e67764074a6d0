"""An attachment chip's Open and Save in the app's real native window (pywebview with Qt WebEngine under Xvfb,
issue 12): a fresh customer sends a PDF and a PNG through the real stack and Storage; the agent's app restores its saved
session, opens the ticket; Open hands the system opener (a fake ``xdg-open`` first on the app's PATH, which
records its argument) a copy named by the file's type with the same bytes; Save asks where with the window's
own save dialog (driven with xdotool: the path typed, Enter) and writes the same bytes there; so does the
lightbox's Save for a picture of the same message.

The page is driven with its own JavaScript through Qt WebEngine's DevTools endpoint
(``QTWEBENGINE_REMOTE_DEBUGGING``), the test's stand-in for pywebview's ``evaluate_js``, which lives in the
app's window process. Saves artifacts/screenshots/native-attachment-chip.png (the thread with the chip) to look
at; docs/screenshots/ keeps a reviewed copy.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from PIL import Image, ImageChops
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from localbase.postgres import free_port
from sync import RemoteConfig, SyncEngine
from tests.appproc import AppProcess
from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_native_app import xvfb  # noqa: F401 (the fixture)

pytestmark = pytest.mark.native

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # reviewed ones: docs/screenshots


COLOUR = (40, 90, 220)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), COLOUR).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + os.urandom(2000)
PNG = png()
T = TypeVar("T")


def until(check: Callable[[], T], what: str, app: AppProcess, timeout: float = 60) -> T:
    """Poll ``check`` until it gives something truthy (the app still alive), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert app.proc is not None and app.proc.poll() is None, f"the app died; see {app.log_path}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; see {app.log_path}"
        time.sleep(0.25)  # poll interval of the wait above


class Page:
    """The window's page over the DevTools protocol: ``run`` evaluates JavaScript in it and returns the value."""

    def __init__(self, port: int, app_url: str) -> None:
        self.port, self.app_url, self.ids = port, app_url, itertools.count(1)

    def _socket_url(self) -> str | None:
        try:
            targets = httpx.get(f"http://127.0.0.1:{self.port}/json", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        pages = [t for t in targets if t.get("type") == "page" and str(t.get("url", "")).startswith(self.app_url)]
        return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

    def run(self, script: str) -> Any:
        """The script's value; None while the page is not reachable (the callers wait for a condition)."""
        url = self._socket_url()
        if url is None:
            return None
        try:
            with connect(url, max_size=None, open_timeout=10) as socket:
                call = next(self.ids)
                params = {"expression": script, "returnByValue": True}
                socket.send(json.dumps({"id": call, "method": "Runtime.evaluate", "params": params}))
                while True:
                    answer = json.loads(socket.recv(timeout=20))
                    if answer.get("id") == call:
                        return answer.get("result", {}).get("result", {}).get("value")
        except (OSError, TimeoutError, WebSocketException):
            return None

    def click(self, selector: str) -> bool:
        """Click the element (False while it is not there yet)."""
        found = self.run(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        return bool(found)


def xdotool(display: str, *args: str) -> str:
    """Its output ("" when it failed or hung: the callers wait for a condition and try again)."""
    try:
        done = subprocess.run(
            ["xdotool", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
            env={**os.environ, "DISPLAY": display},
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout


def save_dialogs(display: str) -> list[str]:
    """The window ids of pywebview's save dialog ("Save file") on the screen."""
    return xdotool(display, "search", "--onlyvisible", "--name", "^Save file$").split()


def thumbnail_painted(display: str, shot: Path) -> bool:
    """Take a screenshot into ``shot``; True when it shows the thumbnail (most of its 240x150 pixels in the
    picture's colour): the window paints a moment after the page has loaded the image."""
    subprocess.run(["import", "-window", "root", str(shot)], check=True, env={**os.environ, "DISPLAY": display})
    with Image.open(shot) as image:
        screen = image.convert("RGB")
    off = ImageChops.difference(screen, Image.new("RGB", screen.size, COLOUR))
    red, green, blue = off.split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return sum(worst.histogram()[:16]) > 240 * 150 // 2


def save_as(display: str, path: Path, expected: bytes) -> bool:
    """Answer the save dialog with ``path`` (typed, then Enter); True once the file holds ``expected``. XTEST keys
    go to the focused window, and without a window manager the dialog is focused by hand; keys sent before the
    dialog takes them are lost: then it is still open, and the next call types again."""
    dialogs = save_dialogs(display)
    if dialogs:
        xdotool(display, "windowfocus", "--sync", dialogs[0])
        xdotool(display, "key", "ctrl+a")
        xdotool(display, "type", "--delay", "20", str(path))
        xdotool(display, "key", "Return")
        deadline = time.monotonic() + 10
        while save_dialogs(display) and time.monotonic() < deadline:
            time.sleep(0.25)  # poll interval: the dialog closes once it took the path
    return path.exists() and path.read_bytes() == expected


async def _send_pdf(stack: StackProcess, customer: User, ticket_id: str, folder: Path) -> None:
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), folder / "customer")
    try:
        await engine.sign_in(customer.email, customer.password)
        await engine.sync_once()
        (folder / "Invoice 1042.pdf").write_bytes(PDF)
        (folder / "screen.png").write_bytes(PNG)
        files = [folder / "Invoice 1042.pdf", folder / "screen.png"]
        engine.commands.send_message(ticket_id, "the invoice", files=files)
        await engine.sync_once()
        assert engine.status.pending == 0
    finally:
        await engine.close()


async def _save_session(stack: StackProcess, agent: User, data: Path) -> None:
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir=data)
    await engine.sign_in(agent.email, agent.password)
    await engine.close()


def test_open_and_save_an_attachment_in_the_native_window(
    xvfb: str,
    stack: StackProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is needed: apt-get install -y xdotool (.ci/run installs it)")
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id::text",
            (customer.id, agent.id, "Native: the invoice"),
        ).fetchone()
    assert row is not None
    ticket_id = str(row[0])
    asyncio.run(_send_pdf(stack, customer, ticket_id, tmp_path))
    data = tmp_path / "native-data"
    monkeypatch.setenv("SUPPORTCHAT_SESSION_STORE", "file")
    asyncio.run(_save_session(stack, agent, data))

    # the system opener: a fake xdg-open that records what it was asked to open
    bin_dir, opened = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    (bin_dir / "xdg-open").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{opened}'\n")
    (bin_dir / "xdg-open").chmod(0o755)
    debug_port = free_port()
    app = AppProcess(
        data,
        stack.api_url,
        stack.anon_key,
        web=False,
        extra_env={
            "DISPLAY": xvfb,
            "PYWEBVIEW_GUI": "qt",
            "QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox",
            "QTWEBENGINE_REMOTE_DEBUGGING": f"127.0.0.1:{debug_port}",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        },
    )
    page = Page(debug_port, app.url)
    app.start(timeout=90)
    try:
        row_selector = f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]'
        chip_text = (
            "(() => { const c = document.querySelector('[data-testid=attachment-chip]');"
            " return c ? c.innerText : ''; })()"
        )

        def open_ticket() -> str:
            """The chip's text once the thread shows it; until then, click the ticket while it is not selected
            (a click before the page's socket is up is lost)."""
            text = page.run(chip_text)
            if not text and not page.run(f"!!document.querySelector({json.dumps(row_selector + '.sc-selected')})"):
                page.click(row_selector)
            return str(text or "")

        chip = until(open_ticket, "the ticket's thread with the attachment chip", app, timeout=90)
        assert "Invoice 1042.pdf" in chip

        # Open: the system's application gets a copy named by its type, with the file's bytes
        assert page.click("[data-testid=attachment-chip] [data-testid=open-file]")
        recorded = until(lambda: opened.read_text().strip() if opened.exists() else "", "the system opener", app)
        target = Path(recorded.splitlines()[0])
        assert target.suffix == ".pdf"
        assert target.is_relative_to(data)
        assert target.read_bytes() == PDF

        thumb_width = (
            "(() => { const i = document.querySelector('[data-testid=attachment-thumb] img');"
            " return i && i.complete ? i.naturalWidth : 0; })()"
        )
        until(lambda: page.run(thumb_width), "the picture's thumbnail", app)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "native-attachment-chip.png"
        until(lambda: thumbnail_painted(xvfb, shot), "the window to paint the thumbnail", app)

        # Save: the window asks where (its save dialog), the file lands there with the same bytes
        saved = tmp_path / "saved" / "invoice copy.pdf"
        saved.parent.mkdir()
        assert page.click("[data-testid=attachment-chip] [data-testid=save-file]")
        until(lambda: save_dialogs(xvfb), "the save dialog", app)

        until(lambda: save_as(xvfb, saved, PDF), f"{saved} with the file's bytes", app)

        # the lightbox's Save does the same for a picture
        picture = tmp_path / "saved" / "screen.png"
        assert page.click("[data-testid=attachment-thumb]")
        until(lambda: page.click("[data-testid=lightbox-save]"), "the lightbox's Save", app)
        until(lambda: save_dialogs(xvfb), "the save dialog over the lightbox", app)
        until(lambda: save_as(xvfb, picture, PNG), f"{picture} with the picture's bytes", app)
    finally:
        app.stop()
    assert app.proc is None
