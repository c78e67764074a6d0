"""Session slots (`supportchat_app.backend`) as the attacker review asked: can the window's slot — its signed-in
session and cache — pass to a `supportchat open` tab in another browser while the window's socket is down and
reconnecting? It could: a page whose socket dropped counted as no page at all until NiceGUI deleted it, so the
newcomer's first page load took slot 0. Pure slot logic: the pages are NiceGUI-shaped stand-ins (socket state,
deletion, connect handlers) and the engine a stand-in that records its data dir.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sync
from supportchat_app import backend as app_backend

_ids = itertools.count()


class Page:
    """What the backend reads of a NiceGUI client: its id, whether its socket is up, whether it was deleted."""

    def __init__(self) -> None:
        self.id = f"page-{next(_ids)}"
        self.has_socket_connection = False
        self.is_deleted = False
        self._on_connect: list[Callable[[], Any]] = []

    def on_connect(self, handler: Callable[[], Any]) -> None:
        self._on_connect.append(handler)

    def connect(self) -> None:
        self.has_socket_connection = True
        for handler in self._on_connect:
            handler()

    def drop_socket(self) -> None:  # the network blinked, the laptop slept: NiceGUI waits RECONNECT_TIMEOUT
        self.has_socket_connection = False


class Engine:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.user = None

    @classmethod
    async def open(cls, remote: object, *, data_dir: Path) -> Engine:
        return cls(data_dir)

    async def set_attachment_cache_bytes(self, size: int) -> None:
        pass

    def subscribe(self, callback: object) -> Callable[[], None]:
        return lambda: None


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> app_backend.Backend:
    monkeypatch.setattr(sync, "SyncEngine", Engine)
    found = app_backend.Backend(tmp_path)
    found.remote = object()  # type: ignore[assignment]  # the stand-in engine never reads it
    found.phase = "ready"
    found._ready.set()
    return found


async def data_dir_of(backend: app_backend.Backend, browser: str, page: Page) -> Path:
    workspace = await backend.workspace(browser, page)  # type: ignore[arg-type]
    assert workspace is not None
    return Path(workspace.engine.data_dir)


async def test_a_newcomer_does_not_take_the_slot_of_a_window_that_is_reconnecting(
    backend: app_backend.Backend, tmp_path: Path
) -> None:
    window = Page()
    assert await data_dir_of(backend, "window", window) == tmp_path, "the window has the saved session"
    window.connect()
    window.drop_socket()
    opened = await data_dir_of(backend, "supportchat-open-tab", Page())
    assert opened != tmp_path, "the tab opened while the window reconnects gets a slot of its own"
    window.connect()  # back on its socket: its next page load is still on its own slot
    assert await data_dir_of(backend, "window", Page()) == tmp_path


async def test_pages_that_never_connected_or_were_deleted_hold_no_slot(
    backend: app_backend.Backend, tmp_path: Path
) -> None:
    assert await data_dir_of(backend, "health-check", Page()) == tmp_path  # never opens a socket
    window = Page()
    assert await data_dir_of(backend, "window", window) == tmp_path, "a request without a socket keeps nothing"
    window.connect()
    window.drop_socket()
    window.is_deleted = True  # NiceGUI gave up on it after RECONNECT_TIMEOUT: the window is gone
    assert await data_dir_of(backend, "restarted-window", Page()) == tmp_path


async def test_a_window_that_reloads_keeps_only_its_live_pages(backend: app_backend.Backend) -> None:
    """Before, a browser's gone pages left its list only when another browser claimed a slot: a window reloaded a
    thousand times held a thousand deleted pages (attacker's review, thirteenth session)."""
    for _ in range(50):
        page = Page()
        await data_dir_of(backend, "window", page)
        page.connect()
        page.is_deleted = True  # the reload's navigation: NiceGUI deletes the page left
    last = Page()
    await data_dir_of(backend, "window", last)
    assert backend.clients["window"] == [last]
    assert backend.connected == set()
