"""SyncEngine: the one object the UI and the CLI talk to (contract in sync/README.md).

It keeps the session (``Account``, sync/account.py), the loop and the status. While a user is signed
in it holds their ``SignedIn`` parts (sync/signed_in.py): the ``Cache`` (the UI's reads), the
``LocalCommands`` (what the user changes), ``AttachmentFiles``, the ``Pusher`` (outbox → server), the
``Puller`` (server → cache by cursor) and the ``LiveApplier`` (realtime → cache); ``Presence`` (viewing,
typing) lives as long as the engine. All talk to the server only through the ``Remote`` port.
One background loop:

    wake (local write | realtime (re)subscribed | timer | retry backoff)
      → make sure the token is fresh (refresh when close to expiry or after a 401)
      → push the outbox → pull by cursor → publish SyncStatus

Errors steer the loop through the tree in sync/errors.py: RetryableError → state ``offline`` and
exponential backoff with jitter, cut short by a reconnect; AuthError → one refresh, then retry;
a refused refresh → ``needs-sign-in`` (the session and the outbox stay: the same user signing in
again continues where they were).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from sync import events, mfa
from sync.account import Account
from sync.attachment_files import DEFAULT_CACHE_BYTES, AttachmentFiles
from sync.avatar_store import Avatars
from sync.cache import Cache
from sync.cache.db import CORE_TABLES as PHASES  # the initial sync's progress steps
from sync.clock import Clock
from sync.commands import LocalCommands
from sync.decisions import backoff_delay
from sync.errors import AuthError, RetryableError, SyncError
from sync.events import EventHub
from sync.history import HistoryCommands
from sync.live import cancel_for_sure
from sync.models import LocalUser, RemoteConfig, SyncStatus
from sync.partial import PartialSync
from sync.presence import Presence
from sync.remote import Remote, SupabaseRemote, Tokens
from sync.session import SessionStore, StoredSession, default_session_store
from sync.signed_in import SignedIn
from sync.workspace import Workspace

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    env = os.environ.get("SUPPORTCHAT_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("supportchat", appauthor=False))


class SyncEngine:
    """The offline-first sync engine for one signed-in user at a time."""

    poll_interval: float = 60.0  # periodic catch-up pull, even with realtime up
    retry_base: float = 0.5  # backoff after a retryable failure: base·2^attempt, capped, jittered
    retry_cap: float = 30.0

    def __init__(
        self, config: RemoteConfig, data_dir: Path, remote: Remote, sessions: SessionStore, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.remote = remote
        self.account = Account(remote, sessions, clock or Clock())
        self._max_batch = 500
        self.user: LocalUser | None = None
        self.status = SyncStatus("offline", 0, 0, None, None)
        self._parts: SignedIn | None = None
        self.attachment_cache_bytes = DEFAULT_CACHE_BYTES  # downloaded attachment files kept, LRU beyond
        self.events = EventHub()
        self._emit = self.events.emit
        self.presence = Presence(remote, self._emit)
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pull_wanted = True
        self._attempt = 0
        self._round_lock = asyncio.Lock()
        self.two_factor = mfa.TwoFactor(remote, self.account.current_session, self._adopt)
        self.workspace = Workspace(self)  # the agent workspace's verbs (sync/workspace.py)

    # --- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        config: RemoteConfig,
        data_dir: Path | None = None,
        *,
        remote: Remote | None = None,
        sessions: SessionStore | None = None,
        timeout: float = 20.0,
        clock: Clock | None = None,
    ) -> SyncEngine:
        """Open the engine; restores a saved session (and that user's cache) with no network."""
        data_dir = data_dir or default_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(data_dir, 0o700)
        engine = cls(
            config,
            data_dir,
            remote or SupabaseRemote(config, timeout=timeout),
            sessions or default_session_store(data_dir, config.url),
            clock,
        )
        engine._loop = asyncio.get_running_loop()
        user = await engine.account.restore()
        if user is not None:
            engine.user = user
            await engine._open_cache(user)
        engine._refresh_counts()
        return engine

    def cache_path(self, user_id: str) -> Path:
        return self.data_dir / "cache" / f"{user_id}.sqlite3"

    @property
    def cache(self) -> Cache:
        """The signed-in user's cache, the UI's reads; AuthError(refused) when nobody is signed in."""
        return self._signed_in().cache

    @property
    def commands(self) -> LocalCommands:
        """The signed-in user's local commands (send, create, update, retry, discard, drafts)."""
        return self._signed_in().commands

    @property
    def attachments(self) -> AttachmentFiles:
        """The signed-in user's attachment files (download on demand, LRU-kept)."""
        return self._signed_in().attachments

    @property
    def clock(self) -> Clock:
        """Time and chance for the loop and the token's expiry (settable: tests move time on)."""
        return self.account.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.account.clock = value

    @property
    def history(self) -> HistoryCommands:
        """The signed-in user's edits, deletes and revisions of messages (sync/history.py)."""
        return self._signed_in().history

    @property
    def avatars(self) -> Avatars:
        """Everyone's pictures as this device has them (``file``), one's own set online (``set``)."""
        return self._signed_in().avatars

    @property
    def partial(self) -> PartialSync:
        """Partial sync: the cached scope (``days``, ``set_days``), tickets and search beyond it on demand."""
        return self._signed_in().partial

    @property
    def max_batch(self) -> int:
        """Outbox entries sent per request at most."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        self._max_batch = value
        if self._parts is not None:
            self._parts.pusher.max_batch = value

    @property
    def session(self) -> StoredSession | None:
        """The saved session in use (tokens and user), None when signed out."""
        return self.account.session

    @property
    def pull_pending(self) -> bool:
        """Whether a pull is owed: asked for by realtime or a wake, or a pull that failed."""
        return self._pull_wanted

    @property
    def live_applied(self) -> int:
        """Rows applied from realtime so far (for tests and the benchmark)."""
        return self._parts.live.applied if self._parts is not None else 0

    async def set_attachment_cache_bytes(self, limit: int) -> None:
        """Bound the downloaded attachment files (bytes), for this user now (evicting beyond it) and later ones."""
        if limit < 0:
            raise ValueError("the attachment cache size cannot be negative")
        self.attachment_cache_bytes = limit
        if self._parts is not None:
            await self._parts.attachments.set_cache_bytes(limit)

    def _signed_in(self) -> SignedIn:
        if self._parts is None or self.user is None:
            raise AuthError("not signed in", refused=True)
        return self._parts

    async def _open_cache(self, user: LocalUser) -> None:
        self._parts = parts = await SignedIn.open(
            self.cache_path(user.id),
            user,
            self.remote,
            self.account,
            self._emit,
            on_write=self._after_write,
            want_pull=lambda: self.wake(pull=True),
            max_batch=self.max_batch,
            wall=self.clock.wall,
        )
        parts.attachments.cache_bytes = self.attachment_cache_bytes
        self.presence.reset(user)
        if parts.cache.rebuilt_reason:
            self.events.emit(events.CacheRebuilt(parts.cache.rebuilt_reason, parts.cache.kept_unsent), replay=True)
            self._pull_wanted = True

    def _close_cache(self) -> None:
        parts, self._parts = self._parts, None
        self.presence.reset(None)
        if parts is not None:
            parts.close()

    async def sign_in(self, email: str, password: str) -> LocalUser:
        """Sign in with email and password; raises AuthError with a plain message, or ``CodeRequired``
        when the account has two-step sign-in (then ``sign_in_code``; nothing is saved until then)."""
        return await self._signed_in_as(*await self.account.authenticate(email, password))

    @property
    def code_pending(self) -> bool:
        """A password was right and its code is still due (``sign_in_code``)."""
        return self.account.pending is not None

    async def sign_in_code(self, code: str) -> LocalUser:
        """The second step: a current code from the authenticator app turns the pending sign-in into an
        aal2 session. A wrong code leaves the step pending (try again); AuthError says why."""
        return await self._signed_in_as(*await self.account.verify_code(code))

    async def _signed_in_as(self, tokens: Tokens, user: LocalUser) -> LocalUser:
        if self.user is not None and self.user.id != user.id:
            await self.stop()
            self._close_cache()
        self.user = user
        await self.account.save(tokens, user)
        if self._parts is None:
            await self._open_cache(user)
        self._set_status(state="connecting", last_error=None)
        if self._task is not None and self._task.done():
            # the loop stopped at needs-sign-in: the same user is back, carry on with the kept outbox
            self._task = None
            await self._signed_in().live.stop()
            await self.start()
        return user

    async def sign_out(self) -> None:
        """Stop sync, delete this user's cache and session; works offline."""
        user = self.user
        await self.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.remote.sign_out(), timeout=3)
        self._close_cache()
        if user is not None:
            path = self.cache_path(user.id)
            Cache.delete(path)
            shutil.rmtree(Avatars.folder(path), ignore_errors=True)  # others' pictures too
            # its attachment files (queued, downloaded, thumbnails, staged): nothing of the account stays behind
            shutil.rmtree(path.with_name(path.name + ".files"), ignore_errors=True)
        await self.account.forget()
        self.user = None
        self._set_status(state="offline", pending=0, failed=0, last_synced_at=None, last_error=None)

    async def start(self) -> None:
        """Begin the push/pull loop and realtime (background tasks on the running loop)."""
        parts = self._signed_in()
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._pull_wanted = True
            self._set_status(state="connecting")
            self._task = asyncio.create_task(self._run(), name="sync-engine")
            await parts.live.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_for_sure(task)
        if self._parts is not None:
            await self._parts.live.stop()

    async def close(self) -> None:
        await self.stop()
        await self.remote.close()
        self._close_cache()

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
                pulled = await self.sync_once(pull=self._pull_wanted or self.clock.monotonic() >= next_pull)
                if pulled:
                    next_pull = self.clock.monotonic() + self.poll_interval
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
        delay = backoff_delay(self._attempt, self.clock.random, base=self.retry_base, cap=self.retry_cap)
        self._attempt += 1
        self._set_status(state="offline", last_error=exc.reason(), syncing=False, progress=None)
        log.info("sync offline (%s); retry in %.1fs", exc, delay)
        return delay

    async def sync_once(self, pull: bool = True) -> bool:
        """One round: fresh token, push, pull. Raises the sync error tree. Returns whether it pulled.
        A pull still owed (asked for by realtime, or a pull that failed) is done even with ``pull=False``."""
        parts = self._signed_in()
        async with self._round_lock:
            self._set_status(syncing=True)
            try:
                await self.account.ensure_fresh()
                sent = await self._push(parts)
                if not (pull or sent or self._pull_wanted):
                    self._set_status(state="online", last_error=None)
                    return False
                self._pull_wanted = False  # a wake(pull=True) during this pull asks for another one
                initial = not parts.cache.initial_sync_done()
                if initial:
                    self._set_status(progress=0.0)
                try:
                    await self.account.with_refresh(
                        lambda: parts.puller.pull(self._emit_with_progress if initial else self._emit)
                    )
                except BaseException:
                    # still wanted: the next round (after backoff) retries it instead of leaving the
                    # cache and "last synced" behind until the periodic pull
                    self._pull_wanted = True
                    raise
                if initial:
                    await parts.cache.mark_initial_sync_done()
                self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None, progress=None)
                await parts.avatars.refresh()
                return True
            finally:
                self._refresh_counts()
                self._set_status(syncing=False)

    async def _push(self, parts: SignedIn) -> int:
        result = await self.account.with_refresh(parts.pusher.push)
        self._refresh_counts()
        if result.sent:
            # the server has our changes: that is a sync, whatever a pull after it does
            self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
        return result.sent

    async def push(self) -> int:
        """Flush the outbox now (no pull); returns how many entries the server acknowledged."""
        parts = self._signed_in()
        async with self._round_lock:
            try:
                await self.account.ensure_fresh()
                return await self._push(parts)
            finally:
                self._refresh_counts()

    async def pull(self) -> int:
        """Catch up from the server now (no push); returns the number of rows applied."""
        parts = self._signed_in()
        async with self._round_lock:
            await self.account.ensure_fresh()
            result = await self.account.with_refresh(lambda: parts.puller.pull(self._emit))
            self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
        return result.rows

    async def _adopt(self, tokens: Tokens) -> None:
        """A verified code's tokens (``two_factor``); at aal2 a project that requires two-step sign-in shows
        staff its rows: pull."""
        await self.account.adopt(tokens)
        self.wake(pull=True)

    async def access_token(self) -> str:
        """A current access token of the signed-in user, for account actions outside the data path."""
        return await self.account.access_token()

    # --- status and events --------------------------------------------------------------------------

    def _refresh_counts(self) -> None:
        if self._parts is not None:
            pending, failed = self._parts.cache.counts()
            self._set_status(pending=pending, failed=failed)

    def _set_status(self, **changes: Any) -> None:
        new = replace(self.status, **changes)
        if new != self.status:
            self.status = new
            self._emit(events.StatusChanged(new))

    def subscribe(self, callback: Callable[[events.Event], None]) -> Callable[[], None]:
        """Receive every event; returns the unsubscribe function (see EventHub)."""
        return self.events.subscribe(callback)

    def _emit_with_progress(self, event: events.Event) -> None:
        """During the initial sync, SyncProgress also moves ``status.progress`` (by table: the server
        does not say how many rows are coming, so the fraction is per phase, not per row)."""
        if isinstance(event, events.SyncProgress) and event.overall is not None:
            self._set_status(progress=event.overall)  # rows done of the server's count (sync/pull.py)
        elif isinstance(event, events.SyncProgress) and event.phase in PHASES:
            finished = 1 if event.total is not None else 0
            self._set_status(progress=(PHASES.index(event.phase) + finished) / len(PHASES))
        self._emit(event)

    def signed_in_user(self) -> LocalUser:
        """Who is signed in; AuthError(refused) when nobody is."""
        return self._signed_in().user

    def local_write_done(self, changes: Sequence[events.Event]) -> None:
        """A local command queued work (sync/workspace.py): refresh the counts, wake the loop, tell the UI."""
        self._after_write()
        for event in changes:
            self._emit(event)

    def _after_write(self) -> None:
        """A local command wrote to the outbox: count it and let the loop push it."""
        self._refresh_counts()
        self.wake()
