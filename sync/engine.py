"""SyncEngine: the one object the UI and the CLI talk to (see /work/notes/SYNC_API.md).

It owns the signed-in user's cache (sync/store.py), the session (sync/session.py) and the
``Remote`` port (sync/remote.py), and runs one background loop:

    wake (local write | realtime (re)subscribed | timer | retry backoff)
      → make sure the token is fresh (refresh when close to expiry or after a 401)
      → push the outbox (sync/push.py)
      → pull by cursor (sync/pull.py)
      → publish SyncStatus

Errors steer the loop through the tree in sync/errors.py: RetryableError → state ``offline`` and
exponential backoff with jitter, cut short by a reconnect; AuthError → one refresh, then retry;
a refused refresh → ``needs-sign-in`` (the session and the outbox stay: the same user signing in
again continues where they were). Reads and writes of the API are synchronous on the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from sync import events, local
from sync.decisions import (
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    backoff_delay,
    check_choice,
    check_content,
    check_subject,
)
from sync.engine_live import LiveMixin
from sync.engine_reads import ReadsMixin
from sync.errors import AuthError, RetryableError, SyncError
from sync.live import cancel_for_sure
from sync.models import UNSET, LocalUser, Message, RemoteConfig, SyncStatus, Ticket, Unset
from sync.pull import ORDER as PHASES
from sync.pull import Puller
from sync.push import Pusher
from sync.remote import Remote, SupabaseRemote, Tokens
from sync.session import SessionStore, StoredSession, default_session_store
from sync.store import Store, open_store

log = logging.getLogger(__name__)

REFRESH_MARGIN = 60  # seconds before expiry at which the loop refreshes the access token


def default_data_dir() -> Path:
    env = os.environ.get("SUPPORTCHAT_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("supportchat", appauthor=False))


class SyncEngine(ReadsMixin, LiveMixin):
    """The offline-first sync engine for one signed-in user at a time."""

    poll_interval: float = 60.0     # periodic catch-up pull, even with realtime up
    max_batch: int = 500
    retry_base: float = 0.5         # backoff after a retryable failure: base·2^attempt, capped, jittered
    retry_cap: float = 30.0

    def __init__(self, config: RemoteConfig, data_dir: Path, remote: Remote, sessions: SessionStore) -> None:
        self.config = config
        self.data_dir = data_dir
        self.remote = remote
        self.sessions = sessions
        self.user: LocalUser | None = None
        self.status = SyncStatus("offline", 0, 0, None, None)
        self._session: StoredSession | None = None
        self._store: Store | None = None
        self._subscribers: list[Callable[[events.Event], None]] = []
        self._replay: list[events.Event] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pull_wanted = True
        self._attempt = 0
        self._round_lock = asyncio.Lock()
        self._presence: dict[str, tuple[str, ...]] = {}
        self._typing_sent: dict[str, float] = {}

    # --- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    async def open(cls, config: RemoteConfig, data_dir: Path | None = None, *, remote: Remote | None = None,
                   sessions: SessionStore | None = None, timeout: float = 20.0) -> SyncEngine:
        """Open the engine; restores a saved session (and that user's cache) with no network."""
        data_dir = data_dir or default_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(data_dir, 0o700)
        engine = cls(config, data_dir, remote or SupabaseRemote(config, timeout=timeout),
                     sessions or default_session_store(data_dir, config.url))
        engine._loop = asyncio.get_running_loop()
        stored = await asyncio.to_thread(engine.sessions.load)
        if stored is not None:
            engine._session = stored
            engine.user = stored.user
            await engine._open_cache(stored.user)
            await engine.remote.use_token(stored.access_token)
        engine._refresh_counts()
        return engine

    def cache_path(self, user_id: str) -> Path:
        return self.data_dir / "cache" / f"{user_id}.sqlite3"

    async def _open_cache(self, user: LocalUser) -> None:
        opened = await asyncio.to_thread(open_store, self.cache_path(user.id))
        self._store = opened.store
        await self._store.awrite(lambda c: local.set_meta(c, "user_id", user.id))
        if opened.rebuilt_reason:
            event = events.CacheRebuilt(opened.rebuilt_reason, opened.kept_unsent)
            self._replay.append(event)
            self._emit(event)
            self._pull_wanted = True

    async def sign_in(self, email: str, password: str) -> LocalUser:
        """Sign in with email and password; raises AuthError with a plain message."""
        if not email or not password:
            raise AuthError("enter your email and password", refused=True)
        try:
            tokens = await self.remote.sign_in(email.strip(), password)
        except AuthError as exc:
            raise AuthError("wrong email or password" if exc.status in (400, 401, None) else exc.message,
                            code=exc.code, status=exc.status, refused=True) from exc
        except RetryableError as exc:
            raise AuthError(f"cannot reach the server to sign in ({exc.message})", code=exc.code) from exc
        profile = await self.remote.profile(tokens.user_id) or {}
        user = LocalUser(tokens.user_id, tokens.email or email, str(profile.get("role") or "customer"),
                         str(profile.get("display_name") or email.split("@", maxsplit=1)[0]))
        if self.user is not None and self.user.id != user.id:
            await self.stop()
            self._close_store()
        self.user = user
        await self._save_session(tokens, user)
        if self._store is None:
            await self._open_cache(user)
        self._set_status(state="connecting", last_error=None)
        if self._task is not None and self._task.done():
            # the loop stopped at needs-sign-in: the same user is back, carry on with the kept outbox
            self._task = None
            await self._stop_live()
            await self.start()
        return user

    async def _save_session(self, tokens: Tokens, user: LocalUser) -> None:
        self._session = StoredSession(tokens.access_token, tokens.refresh_token, tokens.expires_at, user)
        await asyncio.to_thread(self.sessions.save, self._session)

    async def sign_out(self) -> None:
        """Stop sync, delete this user's cache and session; works offline."""
        user = self.user
        await self.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.remote.sign_out(), timeout=3)
        self._close_store()
        if user is not None:
            path = self.cache_path(user.id)
            # the cache with its WAL files, and any damaged copy of it that was moved aside
            doomed = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]
            doomed += path.parent.glob(glob.escape(path.name) + ".corrupt-*")
            for file in doomed:
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
        await asyncio.to_thread(self.sessions.clear)
        self._session = None
        self.user = None
        self._set_status(state="offline", pending=0, failed=0, last_synced_at=None, last_error=None)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def start(self) -> None:
        """Begin the push/pull loop and realtime (background tasks on the running loop)."""
        if self.user is None or self._store is None:
            raise AuthError("sign in first", refused=True)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._pull_wanted = True
            self._set_status(state="connecting")
            self._task = asyncio.create_task(self._run(), name="sync-engine")
            await self._start_live()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_for_sure(task)
        await self._stop_live()

    async def close(self) -> None:
        await self.stop()
        await self.remote.close()
        self._close_store()

    # --- the loop -------------------------------------------------------------------------------------

    def wake(self, pull: bool = False) -> None:
        """Run a sync round now (thread-safe)."""
        if pull:
            self._pull_wanted = True
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        next_pull = 0.0
        while True:
            self._wake.clear()
            delay = self.poll_interval
            try:
                pulled = await self.sync_once(pull=self._pull_wanted or time.monotonic() >= next_pull)
                if pulled:
                    next_pull = time.monotonic() + self.poll_interval
                self._attempt = 0
            except asyncio.CancelledError:
                raise
            except AuthError as exc:
                if exc.refused:
                    self._set_status(state="needs-sign-in", last_error=exc.reason(), syncing=False)
                    return  # the outbox and session stay; sign_in() for the same user resumes
                delay = self._backoff(exc)
            except SyncError as exc:
                delay = self._backoff(exc)
            except Exception as exc:  # a bug must not kill sync for good: report, back off, retry
                log.exception("sync round failed")
                delay = self._backoff(RetryableError(f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _backoff(self, exc: SyncError) -> float:
        delay = backoff_delay(self._attempt, random.random, base=self.retry_base, cap=self.retry_cap)
        self._attempt += 1
        self._set_status(state="offline", last_error=exc.reason(), syncing=False, progress=None)
        log.info("sync offline (%s); retry in %.1fs", exc, delay)
        return delay

    async def sync_once(self, pull: bool = True) -> bool:
        """One round: fresh token, push, pull. Raises the sync error tree. Returns whether it pulled."""
        store, user = self._store, self.user
        if store is None or user is None:
            raise AuthError("sign in first", refused=True)
        async with self._round_lock:
            self._set_status(syncing=True)
            try:
                await self._ensure_token()
                result = await self._with_refresh(Pusher(store, self.remote, self._emit, self.max_batch).push)
                self._refresh_counts()
                if result.sent:
                    # the server has our changes: that is a sync, whatever the pull below does
                    self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
                if pull or result.sent or self._pull_wanted:
                    self._pull_wanted = False  # a wake(pull=True) during this pull asks for another one
                    initial = local.get_meta(store.reader, "initial_sync_done") is None
                    emit = self._emit
                    if initial:
                        self._set_status(progress=0.0)
                        emit = self._emit_with_progress
                    try:
                        await self._with_refresh(Puller(store, self.remote, emit, user.id).pull)
                    except BaseException:
                        # still wanted: the next round (after backoff) retries it instead of leaving the
                        # cache and "last synced" behind until the periodic pull
                        self._pull_wanted = True
                        raise
                    if initial:
                        await store.awrite(lambda c: local.set_meta(c, "initial_sync_done", local.now_ts()))
                    self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None,
                                     progress=None)
                    return True
                self._set_status(state="online", last_error=None)
                return False
            finally:
                self._refresh_counts()
                self._set_status(syncing=False)

    async def push(self) -> int:
        """Flush the outbox now (no pull); returns how many entries the server acknowledged."""
        store = self._store
        if store is None or self.user is None:
            raise AuthError("sign in first", refused=True)
        async with self._round_lock:
            try:
                await self._ensure_token()
                result = await self._with_refresh(Pusher(store, self.remote, self._emit, self.max_batch).push)
                if result.sent:
                    self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
            finally:
                self._refresh_counts()
        return int(result.sent)

    async def pull(self) -> int:
        """Catch up from the server now (no push); returns the number of rows applied."""
        store, user = self._store, self.user
        if store is None or user is None:
            raise AuthError("sign in first", refused=True)
        async with self._round_lock:
            await self._ensure_token()
            result = await self._with_refresh(Puller(store, self.remote, self._emit, user.id).pull)
            self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
        return int(result.rows)

    async def access_token(self) -> str:
        """A current access token of the signed-in user, for account actions outside the data path."""
        await self._ensure_token()
        if self._session is None:
            raise AuthError("sign in first", refused=True)
        return self._session.access_token

    async def _with_refresh(self, fn: Callable[[], Any]) -> Any:
        try:
            return await fn()
        except AuthError as exc:
            if exc.refused:
                raise
            await self._refresh()
            return await fn()

    async def _ensure_token(self) -> None:
        if self._session is not None and self._session.expires_at - REFRESH_MARGIN <= time.time():
            await self._refresh()

    async def _refresh(self) -> None:
        session, user = self._session, self.user
        if session is None or user is None:
            raise AuthError("no saved session: sign in", refused=True)
        # another process of the same user (the app and `supportchat sync`) may have refreshed
        # already; refresh tokens rotate, so reusing our old one would be refused: adopt theirs
        stored = await asyncio.to_thread(self.sessions.load)
        if (stored is not None and stored.user.id == user.id and stored.refresh_token != session.refresh_token
                and stored.expires_at > session.expires_at):
            self._session = session = stored
            await self.remote.use_token(stored.access_token)
            if stored.expires_at - REFRESH_MARGIN > time.time():
                return
        tokens = await self.remote.refresh(session.refresh_token)  # AuthError(refused) or RetryableError
        await self._save_session(tokens, user)

    # --- status and events --------------------------------------------------------------------------

    def _refresh_counts(self) -> None:
        if self._store is None:
            return
        pending, failed = local.counts(self._store.reader)
        self._set_status(pending=pending, failed=failed)

    def _set_status(self, **changes: Any) -> None:
        new = replace(self.status, **changes)
        if new != self.status:
            self.status = new
            self._emit(events.StatusChanged(new))

    def subscribe(self, callback: Callable[[events.Event], None]) -> Callable[[], None]:
        """Receive every event; returns the unsubscribe function. A CacheRebuilt that happened
        before anyone listened is replayed to the first subscriber."""
        self._subscribers.append(callback)
        replay, self._replay = self._replay, []
        for event in replay:
            self._deliver(callback, event)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit_with_progress(self, event: events.Event) -> None:
        """During the initial sync, SyncProgress also moves ``status.progress`` (by table: the server
        does not say how many rows are coming, so the fraction is per phase, not per row)."""
        if isinstance(event, events.SyncProgress) and event.phase in PHASES:
            finished = 1 if event.total is not None else 0
            self._set_status(progress=(PHASES.index(event.phase) + finished) / len(PHASES))
        self._emit(event)

    def _emit(self, event: events.Event) -> None:
        for callback in list(self._subscribers):
            self._deliver(callback, event)

    @staticmethod
    def _deliver(callback: Callable[[events.Event], None], event: events.Event) -> None:
        try:
            callback(event)
        except Exception:
            log.exception("event subscriber failed on %s", type(event).__name__)

    # --- writes: one local transaction each, then a wake-up for the loop ---------------------------

    def _writer(self) -> tuple[Store, LocalUser]:
        if self._store is None or self.user is None:
            raise AuthError("not signed in", refused=True)
        return self._store, self.user

    def _after_write(self) -> None:
        self._refresh_counts()
        self.wake()

    def save_draft(self, ticket_id: str, text: str) -> None:
        store, _ = self._writer()
        store.write(lambda c: local.save_draft(c, ticket_id, text))

    def send_message(self, ticket_id: str, content: str, internal: bool = False) -> Message:
        store, user = self._writer()
        check_content(content)
        if internal and not user.is_staff:
            raise ValueError("only agents can write internal notes")
        row: dict[str, Any] = {"id": str(uuid.uuid4()), "ticket_id": ticket_id, "sender_id": user.id,
                               "content": content, "is_internal": 1 if internal else 0, "created_at": local.now_ts()}

        def write(conn: Any) -> None:
            if conn.execute("select 1 from tickets where id = ?", (ticket_id,)).fetchone() is None:
                raise ValueError(f"no such ticket in the cache: {ticket_id}")
            local.queue_message(conn, row)
            local.save_draft(conn, ticket_id, "")

        store.write(write)
        self._after_write()
        self._emit(events.MessagesChanged(ticket_id, frozenset({row["id"]}), False))
        msg = self.message(str(row["id"]))
        assert msg is not None
        return msg

    def create_ticket(self, subject: str, first_message: str, priority: str = "normal") -> Ticket:
        store, user = self._writer()
        subject = check_subject(subject)
        check_content(first_message)
        check_choice(priority, TICKET_PRIORITIES, "priority")
        now = local.now_ts()
        ticket_id = str(uuid.uuid4())
        ticket_row = {"id": ticket_id, "customer_id": user.id, "assignee_id": None, "subject": subject,
                      "status": "open", "priority": priority, "created_at": now}
        message_row = {"id": str(uuid.uuid4()), "ticket_id": ticket_id, "sender_id": user.id,
                       "content": first_message, "is_internal": 0, "created_at": now}
        def write(conn: Any) -> None:
            local.queue_ticket(conn, ticket_row)
            local.queue_message(conn, message_row)

        store.write(write)
        self._after_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = self.ticket(ticket_id)
        assert ticket is not None
        return ticket

    def update_ticket(self, ticket_id: str, *, status: str | None = None, priority: str | None = None,
                      assignee_id: str | Unset | None = UNSET) -> Ticket:
        store, _ = self._writer()
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = check_choice(status, TICKET_STATUSES, "status")
        if priority is not None:
            changes["priority"] = check_choice(priority, TICKET_PRIORITIES, "priority")
        if assignee_id is not UNSET:
            changes["assignee_id"] = assignee_id
        if changes:
            try:
                store.write(lambda c: local.queue_ticket_update(c, ticket_id, changes))
            except KeyError:
                raise ValueError(f"no such ticket in the cache: {ticket_id}") from None
            self._after_write()
            self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = self.ticket(ticket_id)
        if ticket is None:
            raise ValueError(f"no such ticket in the cache: {ticket_id}")
        return ticket

    def take(self, ticket_id: str) -> Ticket:
        _, user = self._writer()
        return self.update_ticket(ticket_id, assignee_id=user.id)

    def release(self, ticket_id: str) -> Ticket:
        return self.update_ticket(ticket_id, assignee_id=None)

    def mark_read(self, ticket_id: str) -> None:
        store, user = self._writer()
        store.write(lambda c: local.queue_read(c, ticket_id, user.id, local.now_ts()))
        self._after_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))

    def retry(self, message_id: str) -> None:
        store, _ = self._writer()
        if not store.write(lambda c: local.retry_message(c, message_id)):
            raise ValueError("only a failed message can be retried")
        self._after_write()
        msg = self.message(message_id)
        if msg is not None:
            self._emit(events.MessagesChanged(msg.ticket_id, frozenset({message_id}), False))

    def discard(self, message_id: str) -> None:
        store, _ = self._writer()
        msg = self.message(message_id)
        if not store.write(lambda c: local.discard_message(c, message_id)):
            raise ValueError("only a pending or failed message can be discarded")
        self._after_write()
        if msg is not None:
            self._emit(events.MessagesChanged(msg.ticket_id, frozenset({message_id}), False))
