"""Pages loaded in the desktop app's own window (pywebview's Qt WebEngine view) and measured from inside them.

The desktop app (`supportchat` without --web) shows its pages in a pywebview window; on Linux that is Qt WebEngine, a
Chromium of Qt's own (6.11: Chromium 140) with no tab strip and no toolbar. `desktop_app` starts the real app that
way under its own Xvfb, with Qt's switch for a DevTools endpoint (QTWEBENGINE_REMOTE_DEBUGGING, read by Qt WebEngine
when the window process starts; nothing else about the app changes), and hands back a `DevTools` connection to the
window's page: a script added to every new document before the page's own, a navigation waited for up to its load
event (as selenium's `get` does), and an expression evaluated in the page (a promise awaited).

Why hand-written: selenium's chromedriver attaches only to a Chrome whose version it knows, and Qt WebEngine's
DevTools gives the application's name where Chrome's version should be ("unrecognized Chrome version: <app>/"), so the
window cannot be driven through it; the four DevTools commands needed are JSON over the endpoint's WebSocket, sent
with `websockets`' own synchronous client.

Bench only, never the shipped app: while the bench runs, the endpoint on 127.0.0.1 lets any local user drive the
signed-in window (as any browser's remote debugging port would); the bench's desk is throwaway data.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from localbase.postgres import free_port
from tests.appproc import AppProcess
from tests.test_frozen import xvfb


class DevToolsError(RuntimeError):
    pass


class DevTools:
    """One page's DevTools connection (the first page target whose URL starts with `url_prefix`)."""

    def __init__(self, port: int, url_prefix: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        target: dict[str, Any] | None = None
        while target is None:
            with contextlib.suppress(httpx.HTTPError):
                pages = httpx.get(f"http://127.0.0.1:{port}/json", timeout=5).json()
                target = next((p for p in pages if p["type"] == "page" and p["url"].startswith(url_prefix)), None)
            if target is None:
                if time.monotonic() > deadline:
                    raise DevToolsError(f"no page at {url_prefix} in the window within {timeout:.0f} s")
                time.sleep(0.2)  # poll interval while the window opens its first page
        self.timeout = timeout
        self.socket: ClientConnection = connect(
            str(target["webSocketDebuggerUrl"]), max_size=None, open_timeout=timeout
        )
        self.ids = itertools.count(1)
        self.events: list[str] = []  # methods of the events received since the last navigation
        self.call("Page.enable")

    def _receive(self, deadline: float) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.socket.recv(timeout=max(0.0, deadline - time.monotonic())))
        if "method" in message:
            self.events.append(str(message["method"]))
        return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == call_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def add_script(self, source: str) -> None:
        """Run `source` in every document this page loads from now on, before the document's own scripts."""
        self.call("Page.addScriptToEvaluateOnNewDocument", source=source)

    def load(self, url: str) -> None:
        """Navigate and return after the new document's load event (what selenium's `get` waits for)."""
        self.events.clear()
        got = self.call("Page.navigate", url=url)
        if got.get("errorText"):
            raise DevToolsError(f"navigation to {url} failed: {got['errorText']}")
        deadline = time.monotonic() + self.timeout
        while "Page.loadEventFired" not in self.events:
            self._receive(deadline)

    def evaluate(self, expression: str) -> Any:
        """The value of `expression` in the page (a promise is awaited)."""
        got = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in got:
            raise DevToolsError(f"the page threw: {got['exceptionDetails']}")
        return got["result"].get("value")

    def close(self) -> None:
        self.socket.close()


def desktop_env(display: str, devtools_port: int) -> dict[str, str]:
    """The desktop app's environment in its window under `display`: the Qt backend (the app's on Linux), Qt
    WebEngine's DevTools endpoint, and as root Chromium's --no-sandbox (Chromium refuses to start sandboxed as
    root: what the app needs on this machine at all, nothing more)."""
    flags = [os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")]
    if os.geteuid() == 0 and "--no-sandbox" not in flags[0]:
        flags.append("--no-sandbox")
    return {
        "DISPLAY": display,
        "PYWEBVIEW_GUI": "qt",
        "QTWEBENGINE_REMOTE_DEBUGGING": f"127.0.0.1:{devtools_port}",
        "QTWEBENGINE_CHROMIUM_FLAGS": " ".join(f for f in flags if f),
    }


@contextlib.contextmanager
def desktop_app(
    data: Path, api_url: str, anon_key: str, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[AppProcess, DevTools]]:
    """The real app in its own window under a new Xvfb, and a DevTools connection to the page the window opened
    (its launch URL, redirected to the inbox); both stopped on exit."""
    devtools_port = free_port()
    with xvfb() as display:
        app = AppProcess(
            data, api_url, anon_key, web=False, extra_env={**desktop_env(display, devtools_port), **(extra_env or {})}
        )
        app.start(timeout=90)
        try:
            window = DevTools(devtools_port, app.url, timeout=90)
            try:
                yield app, window
            finally:
                window.close()
        finally:
            app.stop()
