"""The local cache (sync/cache/: ``Cache`` and its file) and the session store: permissions,
migrations, corruption recovery (also end to end through the engine), outbox coalescing, drafts,
FTS5 search. Only ``Cache``'s verbs are used; the file is inspected with a connection of the test's own.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from sync import RemoteConfig, SyncEngine, events
from sync.cache import SCHEMA_VERSION as VERSION
from sync.cache import Cache
from sync.models import LocalUser
from sync.session import FileSessionStore, KeyringSessionStore, StoredSession, default_session_store
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, server_messages


def _open(path: Path, me: str | None = None) -> Cache:
    return Cache.open(path, me or str(uuid.uuid4()), "customer")


def _ticket(cache: Cache, subject: str = "Subject") -> str:
    tid = str(uuid.uuid4())
    cache.queue_ticket(
        {
            "id": tid,
            "customer_id": cache.me,
            "assignee_id": None,
            "subject": subject,
            "status": "open",
            "priority": "normal",
        },
        None,
    )
    return tid


def _message(cache: Cache, tid: str, content: str) -> str:
    mid = str(uuid.uuid4())
    cache.queue_message({"id": mid, "ticket_id": tid, "sender_id": cache.me, "content": content, "is_internal": 0})
    return mid


def _pragma(path: Path, name: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"pragma {name}").fetchone()[0]
    finally:
        conn.close()


def test_cache_file_is_private_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "data" / "cache" / "u.sqlite3"
    cache = _open(path)
    try:
        assert cache.rebuilt_reason is None
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        _message(cache, _ticket(cache), "hello")
        for extra in ("-wal", "-shm"):
            side = path.with_name(path.name + extra)
            assert not side.exists() or side.stat().st_mode & 0o777 == 0o600
        assert _pragma(path, "journal_mode") == "wal"
        assert Cache.inspect(path).version == VERSION
    finally:
        cache.close()


def test_reopen_keeps_data_and_drafts(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = _open(path)
    tid = _ticket(cache)
    cache.save_draft(tid, "half-written reply")
    cache.close()
    again = _open(path, cache.me)
    try:
        assert again.rebuilt_reason is None
        assert again.draft(tid) == "half-written reply"
        again.save_draft(tid, "")
        assert again.draft(tid) == ""
    finally:
        again.close()


def test_a_cache_from_a_newer_version_is_rebuilt_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    _open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"pragma user_version = {VERSION + 5}")
    conn.close()
    cache = _open(path)
    try:
        assert cache.rebuilt_reason and "newer" in cache.rebuilt_reason
        assert _pragma(path, "user_version") == VERSION
    finally:
        cache.close()


def _corrupt_index(path: Path, index: str) -> None:
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # closed cleanly: everything is in the main file
    conn = sqlite3.connect(path)
    page_size = conn.execute("pragma page_size").fetchone()[0]
    root = conn.execute("select rootpage from sqlite_master where name = ?", (index,)).fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\x0d" + b"\xff" * 64)  # a leaf header with impossible cell counts and offsets


async def test_corrupt_cache_is_moved_aside_and_unsent_rows_are_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = _open(path)
    tid = _ticket(cache, "Kept ticket")
    mids = [_message(cache, tid, f"unsent {i}") for i in range(3)]
    cache.save_draft(tid, "draft survives")
    cache.close()
    _corrupt_index(path, "messages_thread")
    rebuilt = _open(path, cache.me)
    try:
        assert rebuilt.rebuilt_reason and "damaged" in rebuilt.rebuilt_reason
        assert rebuilt.kept_unsent == 4  # the ticket creation and three messages
        assert list(tmp_path.glob("c.sqlite3.corrupt-*"))
        assert _pragma(path, "quick_check") == "ok"
        assert [m.id for m in rebuilt.thread(tid)] == mids
        assert [e.entity_id for e in await rebuilt.queued(10)] == [tid, *mids]
        assert rebuilt.draft(tid) == "draft survives"
        assert rebuilt.search("unsent")  # the FTS index was rebuilt too
    finally:
        rebuilt.close()


async def test_outbox_coalesces_read_markers_and_ticket_updates(tmp_path: Path) -> None:
    cache = _open(tmp_path / "c.sqlite3")
    try:
        tid = str(uuid.uuid4())
        server_row = {
            "id": tid,
            "customer_id": cache.me,
            "assignee_id": None,
            "subject": "s",
            "status": "open",
            "priority": "normal",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "last_message_at": "2026-01-01T00:00:00Z",
        }
        await cache.apply_server_ticket(server_row)
        cache.queue_read(tid, "2026-01-01T00:00:01.000000+00:00")
        cache.queue_read(tid, "2026-01-01T00:00:02.000000+00:00")
        cache.queue_ticket_update(tid, {"status": "pending"})
        cache.queue_ticket_update(tid, {"status": "resolved", "priority": "high"})
        entries = await cache.queued(10)
        assert [e.kind for e in entries] == ["read", "ticket_update"]
        assert entries[0].payload["last_read_at"].startswith("2026-01-01T00:00:02")
        # the merge base stays what the user first saw; the wanted values are the latest
        assert entries[1].payload["base"] == {"status": "open", "priority": "normal"}
        assert entries[1].payload["wanted"] == {"status": "resolved", "priority": "high"}
        # a pulled row keeps the unsent local change on top
        await cache.apply_server_ticket({**server_row, "subject": "renamed"})
        ticket = cache.ticket(tid)
        assert ticket is not None
        assert (ticket.subject, ticket.status, ticket.priority) == ("renamed", "resolved", "high")
    finally:
        cache.close()


def test_search_treats_fts_syntax_as_text(tmp_path: Path) -> None:
    cache = _open(tmp_path / "c.sqlite3")
    try:
        tid = _ticket(cache, "Invoice VAT number")
        _message(cache, tid, 'it said "NOT OR AND" in red')
        assert {h.ticket_id for h in cache.search('NOT OR "')} == {tid}
        assert cache.search("vat")[0].message_id is None
        assert cache.search("   ") == []
    finally:
        cache.close()


def test_session_file_is_private_and_round_trips(tmp_path: Path) -> None:
    store = default_session_store(tmp_path, "http://127.0.0.1:1")
    assert isinstance(store, FileSessionStore)  # no keyring backend on a headless machine
    session = StoredSession("a.b.c", "refresh", 123, LocalUser("id", "e@x", "agent", "E"))
    store.save(session)
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.load() == session
    store.path.write_text("{not json")
    assert store.load() is None
    store.clear()
    store.clear()
    assert store.load() is None


async def test_engine_tells_the_user_and_rebuilds_a_corrupt_cache_from_the_server(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    tid = seed_ticket(
        stack.db_url, users.customer, users.agent, "Corruption", messages=[(users.customer, "from the server")]
    )
    config = RemoteConfig(stack.api_url, stack.anon_key)
    engine = await SyncEngine.open(config, tmp_path)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.sync_once()
    unsent = engine.commands.send_message(tid, "written before the disk went bad")
    path = engine.cache_path(users.agent.id)
    await engine.close()
    _corrupt_index(path, "messages_thread")

    engine = await SyncEngine.open(config, tmp_path)
    try:
        seen: list[events.Event] = []
        engine.subscribe(seen.append)
        rebuilt = [e for e in seen if isinstance(e, events.CacheRebuilt)]
        assert rebuilt and rebuilt[0].kept_unsent == 1 and "damaged" in rebuilt[0].reason
        assert engine.user is not None and engine.status.pending == 1
        await engine.sync_once()
        assert [m.content for m in engine.cache.thread(tid)] == ["from the server", "written before the disk went bad"]
        assert len(server_messages(stack.db_url, [unsent.id])) == 1
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(json.dumps(engine.status.pending)) == 0
    finally:
        await engine.close()


async def test_sign_out_also_deletes_the_corrupt_copies_of_the_cache(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """Regression: a corrupt cache moved aside (`<cache>.corrupt-<time>`, with the user's messages in it)
    outlived sign-out, which promises to delete that user's cache."""
    config = RemoteConfig(stack.api_url, stack.anon_key)
    engine = await SyncEngine.open(config, tmp_path)
    await engine.sign_in(users.customer.email, users.customer.password)
    await engine.sync_once()
    path = engine.cache_path(users.customer.id)
    await engine.close()
    _corrupt_index(path, "messages_thread")
    engine = await SyncEngine.open(config, tmp_path)
    try:
        assert list(path.parent.glob(path.name + ".corrupt-*"))
        await engine.sign_out()
        assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == []
    finally:
        await engine.close()


def _memory_keyring() -> KeyringBackend:
    """A real keyring backend (keyring's own base class) that keeps secrets in memory. Defined at
    call time: keyring registers every backend subclass, and one created at import would become
    the default backend of the whole test process."""

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.secrets: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.secrets.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.secrets[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if (service, username) not in self.secrets:
                raise PasswordDeleteError(username)
            del self.secrets[(service, username)]

    return MemoryKeyring()


def test_session_goes_to_the_keyring_when_one_is_available(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    backend: Any = _memory_keyring()
    keyring.set_keyring(backend)
    try:
        store = default_session_store(tmp_path, "http://127.0.0.1:1")
        assert isinstance(store, KeyringSessionStore)
        session = StoredSession("a.b.c", "refresh", 123, LocalUser("id", "e@x", "customer", "E"))
        store.save(session)
        assert store.load() == session
        assert not list(tmp_path.iterdir())  # nothing on disk
        assert any("refresh" in v for v in backend.secrets.values())
        store.clear()
        store.clear()
        assert store.load() is None
    finally:
        keyring.set_keyring(previous)
