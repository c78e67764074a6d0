"""SyncEngine: the one object the UI and the CLI talk to (contract in sync/README.md).

It keeps the session (``Account``, sync/account.py), the loop (``SyncLoop``, sync/loop.py: token → push →
pull, backoff) and the status (``StatusBoard``, sync/status.py: ``SyncStatus`` and the events). While a
user is signed in it holds their ``SignedIn`` parts (sync/signed_in.py): the ``Cache`` (the UI's reads),
the ``LocalCommands`` (what the user changes), ``AttachmentFiles``, the ``Pusher`` (outbox → server), the
``Puller`` (server → cache by cursor) and the ``LiveApplier`` (realtime → cache); ``Presence`` (viewing,
typing), ``Workspace`` and ``TwoFactor`` live as long as the engine. All talk to the server only through
the ``Remote`` port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import platformdirs

from sync import events, mfa
from sync.account import Account
from sync.attachment_files import DEFAULT_CACHE_BYTES
from sync.avatar_store import Avatars
from sync.cache import Cache
from sync.canned_files import CannedFiles
from sync.clock import Clock
from sync.errors import AuthError
from sync.loop import SyncLoop
from sync.models import LocalUser, RemoteConfig, SyncStatus, as_role
from sync.presence import Presence
from sync.remote import Remote, SupabaseRemote, Tokens
from sync.session import SessionStore, StoredSession, default_session_store
from sync.signed_in import LocalWrites, Part, SignedIn
from sync.status import StatusBoard
from sync.workspace import Workspace

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    env = os.environ.get("SUPPORTCHAT_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("supportchat", appauthor=False))


class SyncEngine:
    """The offline-first sync engine for one signed-in user at a time."""

    # the signed-in user's parts (``parts``), each AuthError(refused) when nobody is signed in
    cache = Part(lambda p: p.cache)  # the UI's reads
    commands = Part(lambda p: p.commands)  # send, create, update, retry, discard, drafts
    attachments = Part(lambda p: p.attachments)  # attachment files: download on demand, LRU-kept
    history = Part(lambda p: p.history)  # edits, deletes and revisions of messages
    avatars = Part(lambda p: p.avatars)  # everyone's pictures on this device (``file``), one's own (``set``)
    canned_files = Part(lambda p: p.canned_files)  # the files canned replies carry (sync/canned_files.py)
    partial = Part(lambda p: p.partial)  # the cached scope (``days``), tickets and search beyond it

    def __init__(
        self, config: RemoteConfig, data_dir: Path, remote: Remote, sessions: SessionStore, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.remote = remote
        self.account = Account(remote, sessions, clock or Clock())  # tests move time on: account.clock
        self.user: LocalUser | None = None
        self._parts: SignedIn | None = None
        self.attachment_cache_bytes = DEFAULT_CACHE_BYTES  # downloaded attachment files kept, LRU beyond
        self.board = StatusBoard()
        self.events = self.board.events
        self.presence = Presence(remote, self.board.emit, lambda: self._parts.cache if self._parts else None)
        self.events.tap(self.presence.hint)  # a ticket or role that came back: a refused ticket channel joined again
        # knobs: poll_interval, retry_*
        self.loop = SyncLoop(self.account, self.board, lambda: self._parts, after_pull=self._follow_role)
        self.two_factor = mfa.TwoFactor(remote, self.account.current_session, self._adopt)
        self.workspace = Workspace(LocalWrites(lambda: self.parts, self._after_write, self.board.emit))

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
        user = await engine.account.restore()
        if user is not None:
            engine.user = user
            await engine._open_cache(user)
        engine.loop.count()
        return engine

    def cache_path(self, user_id: str) -> Path:
        return self.data_dir / "cache" / f"{user_id}.sqlite3"

    @property
    def parts(self) -> SignedIn:
        """The signed-in user's parts (sync/signed_in.py); AuthError(refused) when nobody is signed in."""
        if self._parts is None or self.user is None:
            raise AuthError("not signed in", refused=True)
        return self._parts

    @property
    def status(self) -> SyncStatus:
        return self.board.current

    @property
    def session(self) -> StoredSession | None:
        """The saved session in use (tokens and user), None when signed out."""
        return self.account.session

    async def set_attachment_cache_bytes(self, limit: int) -> None:
        """Bound the downloaded attachment files (bytes), for this user now (evicting beyond it) and later ones."""
        if limit < 0:
            raise ValueError("the attachment cache size cannot be negative")
        self.attachment_cache_bytes = limit
        if self._parts is not None:
            await self._parts.attachments.set_cache_bytes(limit)

    async def _open_cache(self, user: LocalUser) -> None:
        cache = await asyncio.to_thread(Cache.open, self.cache_path(user.id), user.id, user.role)
        self._take(cache, user)

    def _take(self, cache: Cache, user: LocalUser) -> None:
        """The signed-in parts on an open cache."""
        self._parts = parts = SignedIn.on(
            cache,
            user,
            self.remote,
            self.account,
            self.board.emit,
            on_write=self._after_write,
            want_pull=lambda: self.wake(pull=True),
            wall=self.account.clock.wall,
            on_live=lambda live: self.board.set(live=live),
            on_reach=self.loop.reach,
        )
        parts.attachments.cache_bytes = self.attachment_cache_bytes
        self.presence.reset(user)
        if parts.cache.rebuilt_reason:
            self.events.emit(events.CacheRebuilt(parts.cache.rebuilt_reason, parts.cache.kept_unsent), replay=True)
            self.loop.pull_wanted = True

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
        self.board.set(state="connecting", last_error=None)
        if self.loop.ended:
            # the loop stopped at needs-sign-in: the same user is back, carry on with the kept outbox
            await self.parts.live.stop()
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
            shutil.rmtree(CannedFiles.folder_of(path), ignore_errors=True)
            # its attachment files (queued, downloaded, thumbnails, staged): nothing of the account stays behind
            shutil.rmtree(path.with_name(path.name + ".files"), ignore_errors=True)
        await self.account.forget()
        self.user = None
        self.board.set(state="offline", pending=0, failed=0, last_synced_at=None, last_error=None)

    async def start(self) -> None:
        """Begin the push/pull loop and realtime (background tasks on the running loop)."""
        parts = self.parts
        if self.loop.start():
            await parts.live.start()

    async def stop(self) -> None:
        await self.loop.stop()
        if self._parts is not None:
            await self._parts.live.stop()

    async def close(self) -> None:
        await self.stop()
        await self.remote.close()
        self._close_cache()

    # --- the loop (sync/loop.py) --------------------------------------------------------------------

    def wake(self, pull: bool = False) -> None:
        """Run a sync round now (thread-safe)."""
        self.loop.wake(pull)

    async def sync_once(self, pull: bool = True) -> bool:
        """One round: fresh token, push, pull. Raises the sync error tree. Returns whether it pulled.
        A pull still owed (asked for by realtime, or a pull that failed) is done even with ``pull=False``."""
        return await self.loop.sync_once(pull)

    async def push(self) -> int:
        """Flush the outbox now (no pull); returns how many entries the server acknowledged."""
        return await self.loop.push()

    async def pull(self) -> int:
        """Catch up from the server now (no push); returns the number of rows applied."""
        return await self.loop.pull()

    # --- session and events -------------------------------------------------------------------------

    async def _adopt(self, tokens: Tokens) -> None:
        """A verified code's tokens (``two_factor``); at aal2 a project that requires two-step sign-in shows
        staff its rows: pull."""
        await self.account.adopt(tokens)
        if self._parts is not None:  # rows hidden below aal2 are below the horizons asked at aal1
            self._parts.puller.forget_horizons()
        self.wake(pull=True)

    async def _follow_role(self, parts: SignedIn) -> bool:
        """After a pull: if the server now gives the user another role than the one the cache was opened for (an
        admin promoted or demoted them), the cache is rebuilt for it and the parts opened anew; returns whether it
        did. The old file is deleted, not moved aside, and with it the downloaded attachments (and, for a customer,
        the canned replies' files): a demoted agent's device keeps none of what staff see. A promoted customer's
        cursors, which stopped at a customer's rows, start over. Kept: the unsent outbox, the drafts and the
        device's settings (``files.Salvage``); a demotion to customer keeps only the work on their own tickets, no
        internal note, and says how many entries it dropped. Runs under the loop's round and push locks, so
        nothing writes the cache meanwhile."""
        role = parts.cache.own_role()
        if role is None or as_role(role) == parts.user.role or self._parts is not parts:
            return False
        # the session first: staff rights need a live one (migration 20261213000100), and an invitation's acceptance
        # elsewhere ends every other session of the account. A refused refresh (AuthError(refused): needs-sign-in)
        # leaves the cache as it is, instead of a cache rebuilt for the new role that the ended session cannot fill
        await self.account.refresh()
        user = dataclasses.replace(parts.user, role=as_role(role))
        log.info("the server gives this user the role %s (was %s): the cache is rebuilt", user.role, parts.user.role)
        await parts.live.stop()
        # from here to the new parts without a pause of the event loop (a small file: the outbox and a schema),
        # so a page never finds the user without a cache, nor reads the closed one
        path = parts.cache.path
        self._close_cache()
        customer = None if user.is_staff else user.id
        kept, dropped = Cache.rebuild(path, f"the user's role changed to {user.role}", customer)
        if not user.is_staff:
            shutil.rmtree(CannedFiles.folder_of(path), ignore_errors=True)
        self.user = user
        self._take(Cache.open(path, user.id, user.role), user)
        self.parts.attachments.forget_unlisted()
        self.loop.pull_wanted = True  # from the start, as the new role
        self.events.emit(events.RoleChanged(user.role, kept, dropped))
        await self.account.save_user(user)
        await self.parts.live.start()
        self.wake(pull=True)
        return True

    async def access_token(self) -> str:
        """A current access token of the signed-in user, for account actions outside the data path."""
        return await self.account.access_token()

    def subscribe(self, callback: Callable[[events.Event], None]) -> Callable[[], None]:
        """Receive every event; returns the unsubscribe function (see EventHub)."""
        return self.events.subscribe(callback)

    def _after_write(self) -> None:
        """A local command wrote to the outbox: count it and push it now (sync/push_lane.py)."""
        self.loop.count()
        self.loop.push_soon()
