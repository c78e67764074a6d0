"""Process-wide wiring: the server the app talks to, and one sync engine per browser session.

A desktop window is one browser session, so it gets the first slot, whose cache and saved session
live in the data dir itself and are restored on the next start. Further sessions (a second browser
tab profile, or a second simulated user in the tests) get their own slot under `sessions/N`, so two
people can be signed in side by side without sharing a cache. A slot whose browser has no page
connected any more is handed to the next newcomer: a restarted window (new cookie) or a request that
never opened a socket (a health check) must not push the real window off the saved session. A page
whose socket dropped and that NiceGUI still keeps for its reconnect (`RECONNECT_TIMEOUT`) still holds
the slot: a newcomer in that window (a `supportchat open` tab in another browser while the window's
socket is down) would otherwise take the window's signed-in session and cache, and the window, back
on its socket, would be left on a page of a slot no longer its own.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nicegui import Client, Event

from supportchat_app import config
from supportchat_app.demostack import DemoStack, DemoStackError

if TYPE_CHECKING:  # sync (and supabase with it) loads when the first workspace opens, not at start
    from sync import LocalUser, RemoteConfig, SyncEngine, events

log = logging.getLogger(__name__)

Phase = Literal["starting", "ready", "error"]


class Workspace:
    """One engine, and its events as a ``nicegui.Event``: a page subscribes from its own context, its
    callbacks run in that page's context and are dropped when the page goes (no hand-kept listener list)."""

    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.events: Event[[events.Event]] = Event()
        self.started = False
        # a page may load while a sign-in is half done (user known, cache not yet open): it waits here
        self._lock = asyncio.Lock()
        self._unsubscribe = engine.subscribe(self.events.emit)

    async def ensure_started(self) -> None:
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        if self.engine.user is not None and not self.started:
            await self.engine.start()
            self.started = True

    async def sign_in(self, email: str, password: str) -> LocalUser:
        async with self._lock:
            user = await self.engine.sign_in(email, password)
            await self._start()
            return user

    async def sign_in_code(self, code: str) -> LocalUser:
        """The second step of a two-step sign-in (after ``sign_in`` raised ``CodeRequired``)."""
        async with self._lock:
            user = await self.engine.sign_in_code(code)
            await self._start()
            return user

    async def sign_out(self) -> None:
        async with self._lock:
            self.started = False
            await self.engine.sign_out()

    async def close(self) -> None:
        self._unsubscribe()
        try:
            if self.started:
                await self.engine.stop()
        finally:
            await self.engine.close()


class Backend:
    """Boots the connection (env, saved settings or the demo stack) and hands out workspaces."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.choice = config.server_choice(root)
        self.remote: RemoteConfig | None = None
        self.phase: Phase = "starting"
        self.error: str | None = None
        self.demo: DemoStack | None = None
        self.demo_info: dict[str, Any] = {}
        self.slots: dict[str, int] = {}
        self.clients: dict[str, list[Client]] = {}  # browser id -> its NiceGUI clients (pages)
        self.connected: set[str] = set()  # ids of those clients whose socket connected at least once
        self.workspaces: dict[int, Workspace] = {}
        self.phase_changed: Event[[]] = Event()  # boot pages wait on it
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def is_demo(self) -> bool:
        return self.choice.source == "demo"

    def _set_phase(self, phase: Phase, error: str | None = None) -> None:
        self.phase, self.error = phase, error
        if phase != "starting":
            self._ready.set()
        self.phase_changed.emit()

    async def boot(self) -> None:
        """Resolve the server; for the demo, start the embedded stack (takes a few seconds the first time)."""
        from sync import RemoteConfig

        self._ready.clear()
        self._set_phase("starting")
        url, key = self.choice.url, self.choice.anon_key
        if self.is_demo:
            self.demo = DemoStack(self.root / "demo-stack")
            try:
                self.demo_info = await self.demo.start()
            except DemoStackError as exc:
                self._set_phase("error", str(exc))
                return
            url, key = self.demo_info["api_url"], self.demo_info["anon_key"]
        try:
            self.remote = RemoteConfig(url=url, anon_key=key)
        except ValueError as exc:
            self._set_phase("error", f"{exc} Open Settings to fix the server address or key.")
            return
        self._set_phase("ready")

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def slot_dir(self, slot: int) -> Path:
        return self.root if slot == 0 else self.root / "sessions" / str(slot)

    def _live(self, browser_id: str) -> bool:
        """A page of this browser is connected, or was and NiceGUI still waits for it to reconnect."""
        clients = [c for c in self.clients.get(browser_id, []) if not c.is_deleted]
        self.clients[browser_id] = clients
        self.connected &= {c.id for clients in self.clients.values() for c in clients}
        return any(c.has_socket_connection or c.id in self.connected for c in clients)

    def _watch(self, browser_id: str, client: Client) -> None:
        # the browser's pages that are gone leave its list here (before, only another browser's claim pruned it:
        # a window that reloaded kept every page it had ever shown)
        kept = [c for c in self.clients.get(browser_id, []) if not c.is_deleted]
        self.connected -= {c.id for c in self.clients.get(browser_id, []) if c.is_deleted}
        self.clients[browser_id] = [*kept, client]
        if client.has_socket_connection:
            self.connected.add(client.id)
        else:
            client.on_connect(lambda: self.connected.add(client.id))

    def _claim(self, browser_id: str) -> int:
        slot = self.slots.get(browser_id)
        if slot is None:
            holders = {s: b for b, s in self.slots.items()}
            slot = next(n for n in range(len(holders) + 1) if n not in holders or not self._live(holders[n]))
            if slot in holders:
                del self.slots[holders[slot]]
            self.slots[browser_id] = slot
        return slot

    async def workspace(self, browser_id: str, client: Client | None = None) -> Workspace | None:
        """The workspace of this browser session (opened on first use); None while the server is unusable.
        `client` is the page asking, so the slot stays with this browser while one of its pages is open."""
        await self.wait_ready()
        if self.phase != "ready" or self.remote is None:
            return None
        remote = self.remote
        async with self._lock:
            slot = self._claim(browser_id)
            if client is not None:
                self._watch(browser_id, client)
            workspace = self.workspaces.get(slot)
            if workspace is None:
                from sync import SyncEngine

                engine = await SyncEngine.open(remote, data_dir=self.slot_dir(slot))
                await engine.set_attachment_cache_bytes(config.attachment_cache_mb(self.root) * 1024 * 1024)
                workspace = self.workspaces[slot] = Workspace(engine)
            await workspace.ensure_started()
            return workspace

    async def close_workspaces(self) -> None:
        workspaces, self.workspaces = list(self.workspaces.values()), {}
        for workspace in workspaces:
            try:
                await workspace.close()
            except Exception:
                log.exception("closing a workspace failed")

    async def switch(self, choice: config.ServerChoice) -> None:
        """Use another server: close every engine, stop the demo if it is no longer wanted, boot again."""
        await self.close_workspaces()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
            self.demo = None
        self.choice = choice
        await self.boot()

    async def shutdown(self) -> None:
        await self.close_workspaces()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
            self.demo = None


_current: Backend | None = None


def install(backend: Backend) -> None:
    global _current  # noqa: PLW0603 - one backend per app process, replaced when the app is rebuilt (tests)
    _current = backend


def current() -> Backend:
    if _current is None:
        raise RuntimeError("the app backend is not installed; start the app through supportchat_app.main")
    return _current
