"""SyncEngine: the one object the UI and the CLI talk to (contract in sync/README.md).

It keeps the session (sync/session.py), the loop and the status, and is composed of the signed-in
user's ``Cache`` (sync/cache/), a ``Pusher`` (outbox → server), a ``Puller`` (server → cache by
cursor), a ``LiveApplier`` (realtime → cache) and ``Presence`` (viewing, typing), all talking to the
server only through the ``Remote`` port (sync/remote.py). One background loop:

    wake (local write | realtime (re)subscribed | timer | retry backoff)
      → make sure the token is fresh (refresh when close to expiry or after a 401)
      → push the outbox → pull by cursor → publish SyncStatus

Errors steer the loop through the tree in sync/errors.py: RetryableError → state ``offline`` and
exponential backoff with jitter, cut short by a reconnect; AuthError → one refresh, then retry;
a refused refresh → ``needs-sign-in`` (the session and the outbox stay: the same user signing in
again continues where they were). Local commands and reads are synchronous on the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import logging
import mimetypes
import os
import random
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from sync import attachments, avatars, events, mfa, preferences, scope
from sync.applier import LiveApplier
from sync.cache import Cache
from sync.cache.db import CORE_TABLES as PHASES  # the initial sync's progress steps
from sync.decisions import TICKET_PRIORITIES, TICKET_STATUSES, backoff_delay, check_choice, check_content, check_subject
from sync.errors import AuthError, RetryableError, SyncError
from sync.events import EventHub
from sync.history import HistoryCommands
from sync.live import cancel_for_sure
from sync.models import (
    UNSET,
    LocalUser,
    Message,
    Priority,
    RemoteConfig,
    SearchHit,
    SyncStatus,
    Ticket,
    TicketStatus,
    Unset,
    as_role,
)
from sync.presence import Presence
from sync.pull import Puller
from sync.push import Pusher
from sync.remote import Remote, SupabaseRemote, Tokens
from sync.session import SessionStore, StoredSession, default_session_store
from sync.workspace import Workspace

log = logging.getLogger(__name__)

DEFAULT_ATTACHMENT_CACHE_BYTES = 256 * 1024 * 1024
T = TypeVar("T")

REFRESH_MARGIN = 60  # seconds before expiry at which the loop refreshes the access token


def default_data_dir() -> Path:
    env = os.environ.get("SUPPORTCHAT_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("supportchat", appauthor=False))


@dataclass(frozen=True)
class Clock:
    """Time and chance, injected so the loop's timing can be tested without waiting (tests/fakes.py)."""

    wall: Callable[[], float] = time.time  # token expiry is wall-clock seconds
    monotonic: Callable[[], float] = time.monotonic  # when the next periodic pull is due
    random: Callable[[], float] = random.random  # backoff jitter


@dataclass
class _Parts:
    """What exists while a user is signed in: their cache and the workers on it."""

    cache: Cache
    pusher: Pusher
    puller: Puller
    live: LiveApplier
    presence: Presence
    history: HistoryCommands


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
        self.sessions = sessions
        self.clock = clock or Clock()
        self._max_batch = 500
        self.attachment_cache_bytes = DEFAULT_ATTACHMENT_CACHE_BYTES  # downloaded files kept, LRU beyond
        self.user: LocalUser | None = None
        self.status = SyncStatus("offline", 0, 0, None, None)
        self._session: StoredSession | None = None
        self._parts: _Parts | None = None
        self._avatar_files: avatars.AvatarFiles | None = None
        self.events = EventHub()
        self._emit = self.events.emit
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pull_wanted = True
        self._attempt = 0
        self._round_lock = asyncio.Lock()
        self._pending: mfa.PendingSignIn | None = None  # a password-only sign-in waiting for its code
        self.two_factor = mfa.TwoFactor(self.remote, self._current_session, self._adopt_tokens)
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

    @property
    def cache(self) -> Cache:
        """The signed-in user's cache; AuthError(refused) when nobody is signed in."""
        return self._signed_in().cache

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
        return self._session

    @property
    def pull_pending(self) -> bool:
        """Whether a pull is owed: asked for by realtime or a wake, or a pull that failed."""
        return self._pull_wanted

    @property
    def live_applied(self) -> int:
        """Rows applied from realtime so far (for tests and the benchmark)."""
        return self._parts.live.applied if self._parts is not None else 0

    def _signed_in(self) -> _Parts:
        if self._parts is None or self.user is None:
            raise AuthError("not signed in", refused=True)
        return self._parts

    async def _open_cache(self, user: LocalUser) -> None:
        cache = await asyncio.to_thread(Cache.open, self.cache_path(user.id), user.id, user.role)
        scope.apply_default(cache)  # a new cache takes SUPPORTCHAT_SYNC_SCOPE_DAYS, if set (partial sync)
        puller = Puller(cache, self.remote)
        self._parts = _Parts(
            cache,
            Pusher(cache, self.remote, self._emit, self.max_batch),
            puller,
            LiveApplier(cache, self.remote, puller, self._emit, lambda: self.wake(pull=True)),
            Presence(self.remote, user, self._emit),
            HistoryCommands(cache, user, self._after_write, self._emit, discard=self.discard, wall=self.clock.wall),
        )
        if cache.rebuilt_reason:
            self.events.emit(events.CacheRebuilt(cache.rebuilt_reason, cache.kept_unsent), replay=True)
            self._pull_wanted = True

    def _close_cache(self) -> None:
        parts, self._parts = self._parts, None
        if parts is not None:
            parts.cache.close()

    async def sign_in(self, email: str, password: str) -> LocalUser:
        """Sign in with email and password; raises AuthError with a plain message, or ``CodeRequired``
        when the account has two-step sign-in (then ``sign_in_code``; nothing is saved until then)."""
        self._pending = None
        if not email or not password:
            raise AuthError("enter your email and password", refused=True)
        try:
            tokens = await self.remote.sign_in(email.strip(), password)
        except AuthError as exc:
            raise AuthError(
                "wrong email or password" if exc.status in (400, 401, None) else exc.message,
                code=exc.code,
                status=exc.status,
                refused=True,
            ) from exc
        except RetryableError as exc:
            raise AuthError(f"cannot reach the server to sign in ({exc.message})", code=exc.code) from exc
        if tokens.factor_id is not None:
            self._pending = mfa.PendingSignIn(tokens, email)
            raise mfa.CodeRequired()
        return await self._signed_in_as(tokens, email)

    @property
    def code_pending(self) -> bool:
        """A password was right and its code is still due (``sign_in_code``)."""
        return self._pending is not None

    async def sign_in_code(self, code: str) -> LocalUser:
        """The second step: a current code from the authenticator app turns the pending sign-in into an
        aal2 session. A wrong code leaves the step pending (try again); AuthError says why."""
        pending = self._pending
        if pending is None:
            raise AuthError("sign in with your email and password first", refused=True)
        tokens = pending.tokens
        assert tokens.factor_id is not None
        digits = mfa.clean_code(code)
        try:
            verified = await self.remote.mfa_verify(tokens.access_token, tokens.refresh_token, tokens.factor_id, digits)
        except AuthError as exc:
            raise mfa.code_refused(exc) from exc
        except RetryableError as exc:
            raise AuthError(f"cannot reach the server to check the code ({exc.message})", code=exc.code) from exc
        self._pending = None
        return await self._signed_in_as(verified, pending.email)

    async def _signed_in_as(self, tokens: Tokens, email: str) -> LocalUser:
        profile = await self.remote.profile(tokens.user_id) or {}
        user = LocalUser(
            tokens.user_id,
            tokens.email or email,
            as_role(profile.get("role")),
            str(profile.get("display_name") or email.split("@", maxsplit=1)[0]),
        )
        if self.user is not None and self.user.id != user.id:
            await self.stop()
            self._close_cache()
        self.user = user
        await self._save_session(tokens, user)
        if self._parts is None:
            await self._open_cache(user)
        self._set_status(state="connecting", last_error=None)
        if self._task is not None and self._task.done():
            # the loop stopped at needs-sign-in: the same user is back, carry on with the kept outbox
            self._task = None
            await self._signed_in().live.stop()
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
        self._close_cache()
        if user is not None:
            path = self.cache_path(user.id)
            # the cache with its WAL files, and any damaged copy of it that was moved aside
            doomed = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]
            doomed += path.parent.glob(glob.escape(path.name) + ".corrupt-*")
            for file in doomed:
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
            shutil.rmtree(path.with_name(path.name + ".avatars"), ignore_errors=True)  # others' pictures too
        await asyncio.to_thread(self.sessions.clear)
        self._session = None
        self._pending = None
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
                await self._ensure_token()
                sent = await self._push(parts)
                if not (pull or sent or self._pull_wanted):
                    self._set_status(state="online", last_error=None)
                    return False
                self._pull_wanted = False  # a wake(pull=True) during this pull asks for another one
                initial = not parts.cache.initial_sync_done()
                if initial:
                    self._set_status(progress=0.0)
                try:
                    await self._with_refresh(
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
                await self._refresh_avatars()
                return True
            finally:
                self._refresh_counts()
                self._set_status(syncing=False)

    async def _push(self, parts: _Parts) -> int:
        result = await self._with_refresh(parts.pusher.push)
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
                await self._ensure_token()
                return await self._push(parts)
            finally:
                self._refresh_counts()

    # --- partial sync: the cached scope, and what lies outside it on demand (sync/scope.py) ------------

    def sync_scope_days(self) -> int | None:
        """None: everything is cached; N: open/pending tickets plus those active in the last N days."""
        return self._signed_in().cache.sync_scope_days()

    def set_sync_scope(self, days: int | None) -> None:
        self._signed_in().cache.set_sync_scope_days(scope.check_days(days), scope.SCOPED_TABLES)
        self.wake(pull=True)

    async def fetch_ticket(self, ticket_id: str) -> bool:
        """Cache a ticket and its thread that the partial sync left on the server (False: not visible)."""
        parts = self._signed_in()
        await self._ensure_token()
        return await self._with_refresh(
            lambda: scope.fetch_ticket(parts.cache, self.remote, parts.puller, ticket_id, self._emit)
        )

    async def search_server(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search on the server (RLS applies), for what a partial cache does not hold."""
        self._signed_in()
        await self._ensure_token()
        return await self._with_refresh(lambda: scope.search(self.remote, query, limit))

    async def pull(self) -> int:
        """Catch up from the server now (no push); returns the number of rows applied."""
        parts = self._signed_in()
        async with self._round_lock:
            await self._ensure_token()
            result = await self._with_refresh(lambda: parts.puller.pull(self._emit))
            self._set_status(state="online", last_synced_at=datetime.now(UTC), last_error=None)
        return result.rows

    async def access_token(self) -> str:
        """A current access token of the signed-in user, for account actions outside the data path."""
        await self._ensure_token()
        if self._session is None:
            raise AuthError("sign in first", refused=True)
        return self._session.access_token

    async def _current_session(self) -> StoredSession:
        await self._ensure_token()
        if self._session is None:
            raise AuthError("sign in first", refused=True)
        return self._session

    async def _adopt_tokens(self, tokens: Tokens) -> None:
        """New tokens of the signed-in user's session (a verified code): the old refresh token is spent."""
        if self.user is None or tokens.user_id != self.user.id:
            raise AuthError("the server answered for another user", refused=True)
        await self._save_session(tokens, self.user)
        self.wake(pull=True)  # at aal2 a project that requires two-step sign-in shows staff its rows

    async def _with_refresh(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except AuthError as exc:
            if exc.refused:
                raise
            await self._refresh()
            return await fn()

    async def _ensure_token(self) -> None:
        if self._session is not None and self._session.expires_at - REFRESH_MARGIN <= self.clock.wall():
            await self._refresh()

    async def _refresh(self) -> None:
        session, user = self._session, self.user
        if session is None or user is None:
            raise AuthError("no saved session: sign in", refused=True)
        # another process of the same user (the app and `supportchat sync`) may have refreshed
        # already; refresh tokens rotate, so reusing our old one would be refused: adopt theirs
        stored = await asyncio.to_thread(self.sessions.load)
        if (
            stored is not None
            and stored.user.id == user.id
            and stored.refresh_token != session.refresh_token
            and stored.expires_at >= session.expires_at
        ):  # refreshed within the same second counts
            self._session = session = stored
            await self.remote.use_token(stored.access_token)
            if stored.expires_at - REFRESH_MARGIN > self.clock.wall():
                return
        tokens = await self.remote.refresh(session.refresh_token)  # AuthError(refused) or RetryableError
        await self._save_session(tokens, user)

    # --- presence and typing (best-effort; sync/presence.py) ------------------------------------------

    async def watch_ticket(self, ticket_id: str) -> None:
        """Join this ticket's presence (others see you viewing it) and hear typing."""
        await self._signed_in().presence.watch(ticket_id)

    async def watch_inbox(self) -> None:
        """Staff: hear who views which ticket (InboxViewersChanged events; ``inbox_viewers`` reads them)."""
        if self._user().is_staff:
            await self._signed_in().presence.watch_inbox()

    def inbox_viewers(self, ticket_id: str) -> tuple[str, ...]:
        """Names of the other staff viewing a ticket now (empty when not heard of, or offline)."""
        return self._parts.presence.inbox.names(ticket_id) if self._parts is not None else ()

    async def unwatch_ticket(self, ticket_id: str) -> None:
        if self._parts is not None:
            await self._parts.presence.unwatch(ticket_id)

    async def send_typing(self, ticket_id: str) -> None:
        """Call on every keystroke: one signal per ticket every 2 s goes out."""
        await self._signed_in().presence.send_typing(ticket_id)

    def stop_typing(self, ticket_id: str) -> None:
        """On send, blur or a pause: no more typing signals until the next keystroke."""
        if self._parts is not None:
            self._parts.presence.stop_typing(ticket_id)

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

    def _after_write(self) -> None:
        self._refresh_counts()
        self.wake()

    # --- local commands: validated, one cache transaction each, then a wake-up for the loop ----------

    def save_draft(self, ticket_id: str, text: str) -> None:
        self.cache.save_draft(ticket_id, text)

    async def asave_draft(self, ticket_id: str, text: str) -> None:
        """Save a draft without blocking the event loop (the composer's debounced save)."""
        await self.cache.asave_draft(ticket_id, text)

    def send_message(self, ticket_id: str, content: str, internal: bool = False, files: Sequence[Path] = ()) -> Message:
        """Queue a message (shown at once as pending) and clear the ticket's draft, in one transaction.

        With ``files``, each is checked against the attachments bucket's limits first (a refused file
        raises ValueError with the reason and nothing is queued), copied into the cache's files folder,
        and queued with the message: uploads first, then the message, then the attachment rows."""
        cache, user = self.cache, self._user()
        check_content(content)
        if internal and not user.is_staff:
            raise ValueError("only agents can write internal notes")
        message_id = str(uuid.uuid4())
        row = {
            "id": message_id,
            "ticket_id": ticket_id,
            "sender_id": user.id,
            "content": content,
            "is_internal": 1 if internal else 0,
        }
        if files:
            records = self._stage_files(ticket_id, message_id, files)
            try:
                cache.queue_message_with_files(row, records)
            except BaseException:
                for record in records:
                    Path(str(record["local_path"])).unlink(missing_ok=True)
                raise
        else:
            cache.queue_message(row)
        self._after_write()
        self._emit(events.MessagesChanged(ticket_id, frozenset({message_id}), False))
        message = cache.message(message_id)
        assert message is not None
        return message

    def _stage_files(self, ticket_id: str, message_id: str, files: Sequence[Path]) -> list[dict[str, Any]]:
        """Check every file, then copy each into the cache's files folder (hashing it on the way)."""
        checked = []
        for path in files:
            size = path.stat().st_size
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            reason = attachments.refusal(path.name, size, mime)
            if reason is not None:
                raise ValueError(f"{path.name}: {reason}")
            checked.append((path, size, mime))
        folder = self.cache.files_dir
        folder.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
        for path, size, mime in checked:
            attachment_id = str(uuid.uuid4())
            local = folder / attachment_id
            digest = hashlib.sha256()
            with path.open("rb") as src, local.open("wb") as dst:
                while chunk := src.read(1024 * 1024):
                    digest.update(chunk)
                    dst.write(chunk)
            records.append(
                {
                    "id": attachment_id,
                    "message_id": message_id,
                    "ticket_id": ticket_id,
                    "uploader_id": self._user().id,
                    "name": path.name,
                    "mime": mime,
                    "size": size,
                    "sha256": digest.hexdigest(),
                    "local_path": str(local),
                    "object_path": attachments.object_key(ticket_id, message_id, path.name),
                }
            )
        return records

    def create_ticket(self, subject: str, first_message: str, priority: str = "normal") -> Ticket:
        cache, user = self.cache, self._user()
        subject = check_subject(subject)
        check_content(first_message)
        check_choice(priority, TICKET_PRIORITIES, "priority")
        ticket_id = str(uuid.uuid4())
        cache.queue_ticket(
            {
                "id": ticket_id,
                "customer_id": user.id,
                "assignee_id": None,
                "subject": subject,
                "status": "open",
                "priority": priority,
            },
            {
                "id": str(uuid.uuid4()),
                "ticket_id": ticket_id,
                "sender_id": user.id,
                "content": first_message,
                "is_internal": 0,
            },
        )
        self._after_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = cache.ticket(ticket_id)
        assert ticket is not None
        return ticket

    def update_ticket(
        self,
        ticket_id: str,
        *,
        status: TicketStatus | str | None = None,
        priority: Priority | str | None = None,
        assignee_id: str | Unset | None = UNSET,
    ) -> Ticket:
        cache = self.cache
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = check_choice(status, TICKET_STATUSES, "status")
        if priority is not None:
            changes["priority"] = check_choice(priority, TICKET_PRIORITIES, "priority")
        if assignee_id is not UNSET:
            changes["assignee_id"] = assignee_id
        if changes:
            cache.queue_ticket_update(ticket_id, changes)
            self._after_write()
            self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = cache.ticket(ticket_id)
        if ticket is None:
            raise ValueError(f"no such ticket in the cache: {ticket_id}")
        return ticket

    def take(self, ticket_id: str) -> Ticket:
        """Take an unassigned ticket: the server decides who was first (sync/collision.py); the loser gets a
        Notice ``ticket_taken`` naming the winner."""
        return self.update_ticket(ticket_id, assignee_id=self._user().id)

    def release(self, ticket_id: str) -> Ticket:
        return self.update_ticket(ticket_id, assignee_id=None)

    def mark_read(self, ticket_id: str) -> None:
        self.cache.queue_read(ticket_id)
        self._after_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))

    @property
    def avatars(self) -> avatars.AvatarFiles:
        """This user's downloaded pictures, beside the cache file (they show offline)."""
        root = self.cache.path.with_name(self.cache.path.name + ".avatars")
        if self._avatar_files is None or self._avatar_files.root != root:
            self._avatar_files = avatars.AvatarFiles(root)
        return self._avatar_files

    def avatar_file(self, user_id: str) -> Path | None:
        """The local copy of a user's current picture, or None (show initials)."""
        return self.avatars.path(user_id, self.cache.avatar_url(user_id))

    async def set_avatar(self, path: Path | None) -> None:
        """Set this user's picture (None removes it); online only. ValueError for a picture the bucket would
        refuse (size, type), the sync error tree when the server cannot be reached or refuses."""
        user, files = self._user(), self.avatars
        await self._ensure_token()
        async with files.lock:
            uploaded = None if path is None else await files.upload(self.remote, user.id, path, self._with_refresh)
            url = None if uploaded is None else avatars.url_of(uploaded[0])
            row = await self._with_refresh(lambda: self.remote.update_profile(user.id, {"avatar_url": url}))
            if row is not None:
                await self.cache.apply_live({"profiles": [row]})
            if uploaded is not None:
                await asyncio.to_thread(files.keep, uploaded[0], uploaded[1].data)
        self._emit(events.AvatarsChanged(frozenset({user.id})))

    async def _refresh_avatars(self) -> None:
        arrived = await self.avatars.refresh(self.cache.avatar_urls, self.remote)
        if arrived:
            self._emit(events.AvatarsChanged(frozenset(arrived)))

    def notification_preferences(self) -> preferences.Preferences:
        """This user's email notification preferences as this device knows them (a queued choice first)."""
        return self.cache.preferences()

    def set_notification_preferences(self, email: str, unread_after_minutes: int | None = None) -> None:
        """Queue a new choice (offline-first); a bad value raises ValueError and queues nothing."""
        self._user()
        self.cache.queue_preferences(preferences.checked(email, unread_after_minutes))
        self._after_write()

    def retry(self, message_id: str) -> None:
        cache = self.cache
        if not cache.retry_message(message_id):
            raise ValueError("only a failed message can be retried")
        self._after_write()
        message = cache.message(message_id)
        if message is not None:
            self._emit(events.MessagesChanged(message.ticket_id, frozenset({message_id}), False))

    async def attachment_file(self, attachment_id: str) -> Path:
        """The attachment's file on disk, downloaded now if it is not there (raises the sync error tree
        when that fails: offline, refused, gone). Downloaded files beyond ``attachment_cache_bytes`` are
        evicted least recently used first; files still to upload are never evicted."""
        cache = self.cache
        row = cache.attachment(attachment_id)
        if row is None:
            raise KeyError(attachment_id)
        now = time.time()
        local = Path(row["local_path"]) if row["local_path"] else None
        if local is None or not local.exists():
            local = cache.files_dir / attachment_id
            local.parent.mkdir(parents=True, exist_ok=True)
            await self.remote.download_file(attachments.BUCKET, str(row["object_path"]), local)
        await cache.set_attachment_file(attachment_id, local, now)
        held = [
            attachments.CachedFile(i, size, used, pinned or i == attachment_id)
            for i, size, used, pinned in cache.cached_attachment_files()
        ]
        evict = attachments.plan_eviction(held, self.attachment_cache_bytes)
        if evict:
            for victim in evict:
                (cache.files_dir / victim).unlink(missing_ok=True)
            await cache.forget_attachment_files(evict)
        return local

    def discard(self, message_id: str) -> None:
        cache = self.cache
        message = cache.message(message_id)
        staged = [a["local_path"] for a in cache.attachments(message_id) if a["local_path"]]
        if not cache.discard_message(message_id):
            raise ValueError("only a pending or failed message can be discarded")
        for local in staged:  # the queued copies of its files go with it
            Path(local).unlink(missing_ok=True)
        self._after_write()
        if message is not None:
            self._emit(events.MessagesChanged(message.ticket_id, frozenset({message_id}), False))

    def signed_in_user(self) -> LocalUser:
        return self._user()

    def local_write_done(self, changes: Sequence[events.Event]) -> None:
        """A local command queued work (sync/workspace.py): refresh the counts, wake the loop, tell the UI."""
        self._after_write()
        for event in changes:
            self._emit(event)

    @property
    def history(self) -> HistoryCommands:
        """Edits, deletes and revisions of messages (sync/history.py)."""
        return self._signed_in().history

    def _user(self) -> LocalUser:
        user = self.user
        if user is None or self._parts is None:
            raise AuthError("not signed in", refused=True)
        return user
